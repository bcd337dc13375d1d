"""POST /api/v1/attention: every head's attention (and more) for one input."""

from fastapi import APIRouter, Request

from app import inference
from app.deps import (
    cache_key,
    check_index,
    encode_ids,
    encode_target,
    encode_text,
    entry_of,
    run_job,
    settings_of,
)
from app.errors import invalid
from app.schemas import INFERENCE_ERRORS, AttentionRequest, AttentionResponse
from app.serialize import dumps

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
    responses=INFERENCE_ERRORS,
)
async def attention(body: AttentionRequest, request: Request):
    settings = settings_of(request)
    entry = entry_of(request, body.model)
    cfg = entry.config

    if (body.text is None) == (body.token_ids is None):
        raise invalid("text", "give either text or token_ids (exactly one)")
    if body.text is not None:
        source = encode_text(entry, body.text, settings)
        source_ids, source_tokens = source.ids, source.tokens
    else:
        source_ids = encode_ids(entry, body.token_ids, settings, "token_ids")
        source_tokens = entry.tokens.ids_view(source_ids) if entry.tokenizer else None

    target_ids = target_tokens = None
    if cfg.kind != "seq2seq":
        for name in ("target", "target_ids"):
            if getattr(body, name) is not None:
                raise invalid(
                    name, f"only seq2seq models take a {name}; {entry.id} is a {cfg.kind}"
                )
    elif body.target is not None and body.target_ids is not None:
        raise invalid("target", "give either target or target_ids, not both")
    elif body.target is not None:
        enc = encode_target(entry, body.target, settings)
        target_ids, target_tokens = enc.ids, enc.tokens
    elif body.target_ids is not None:
        target_ids = encode_ids(entry, body.target_ids, settings, "target_ids")
        target_tokens = entry.tokens.ids_view(target_ids) if entry.tokenizer else None

    depth = inference.n_layers_max(entry)
    layers = check_index(body.layers, depth, "layers", "layer")
    heads = check_index(body.heads, cfg.n_heads, "heads", "head")
    include = frozenset(body.include)

    def job() -> bytes:
        nonlocal target_ids, target_tokens
        if cfg.kind == "seq2seq" and target_ids is None:
            target_ids = inference.greedy_target(entry, source_ids, settings.max_new_tokens)
            target_tokens = entry.tokens.ids_view(target_ids) if entry.tokenizer else None
        result = inference.attention(
            entry,
            inference.AttentionJob(source_ids, target_ids, layers, heads, include, body.format),
        )
        tokens = {"source": source_tokens}
        if target_ids is not None:
            tokens["target"] = target_tokens
        return dumps(
            {
                "model": entry.id,
                "kind": cfg.kind,
                "format": body.format,
                "n_layers": depth,
                "n_heads": cfg.n_heads,
                "layers": layers,
                "heads": heads,
                "tokens": tokens,
                **result,
            }
        )

    return await run_job(request, "attention", cache_key(body), job)
