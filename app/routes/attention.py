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

**Rules the schema cannot state** (422, `code` in brackets): exactly one of `text` and
`token_ids` [`exclusive_fields`], at most one of `target` and `target_ids`; `target` and
`target_ids` for seq2seq models only [`unsupported_field`]; each layer below the model's
layers, each head below its heads, each token id below its `vocab_size` [`out_of_range`]; at
most `max_input_tokens` and the model's `max_len` tokens [`too_many_tokens`]; text the
tokenizer keeps nothing of [`empty_text`]. Special tokens typed in the text (`[CLS]`,
`[MASK]`) are text like any other.
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
            inp, body.include, body.format, settings.max_new_tokens, body.pool, traces, body.weights
        )
        return dumps_binary(answer) if binary else dumps(answer)

    media_type = BINARY if binary else "application/json"
    return await run("attention", cache_key(body), job, media_type)
