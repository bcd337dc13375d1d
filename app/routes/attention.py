"""POST /api/v1/attention: every head's attention (and more) for one input."""

from fastapi import APIRouter

from app import inference
from app.deps import RunJob, SettingsDep, TracesDep, cache_key
from app.inputs import InputsDep
from app.schemas import INFERENCE_ERRORS, AttentionRequest, AttentionResponse
from app.serialize import BINARY, dumps, dumps_binary

router = APIRouter(tags=["attention"])

DESCRIPTION = """
The attention weights of every head, per **site**: `encoder.self`, `decoder.self` and
`decoder.cross`, each shaped `[L][H][Tq][Tk]` (layers, heads, query tokens, key tokens);
every row sums to 1.

* **encoder**: `text` is the sentence (`[CLS] … [SEP]` added); site `encoder.self`.
* **decoder**: `text` is the prompt (BOS added); site `decoder.self` (causal: the upper
  triangle is 0).
* **seq2seq**: `text` is the source; `target` is teacher-forced into the decoder (`<s>`
  prepended). Without a target the model's own greedy translation is used, and returned in
  `tokens.target`. Sites `encoder.self`, `decoder.self`, `decoder.cross`.

`layers` / `heads` select a subset (indices are checked: 422 naming the field). `include`
adds `scores` (scaled QKᵀ before the mask and softmax; masked cells null), `masks`,
`qkv`, `rope` and `hidden`. `format: f16` returns each tensor as base64 half floats, 4×
smaller than JSON before gzip. Identical requests are answered from a cache.
"""


@router.post(
    "/attention",
    response_model=AttentionResponse,
    response_model_exclude_none=True,
    summary="Attention weights of every layer and head",
    description=DESCRIPTION,
    responses={
        200: {"content": {BINARY: {"schema": {"type": "string", "format": "binary"}}}},
        **INFERENCE_ERRORS,
    },
)
async def attention(
    body: AttentionRequest,
    inputs: InputsDep,
    settings: SettingsDep,
    traces: TracesDep,
    run: RunJob,
):
    inp = inputs.attention(body)
    binary = body.format == "binary"

    def job() -> bytes:
        answer = inference.attention(
            inp, body.include, body.format, settings.max_new_tokens, body.pool, traces
        )
        return dumps_binary(answer) if binary else dumps(answer)

    media_type = BINARY if binary else "application/json"
    return await run("attention", cache_key(body), job, media_type)
