"""Positions: GET /api/v1/models/{id}/positions and POST /api/v1/rope/relative."""

from fastapi import APIRouter, Path, Query, Request

from app import inference
from app.deps import (
    cache_key,
    encode_text,
    entry_of,
    run_job,
    settings_of,
)
from app.errors import invalid
from app.schemas import (
    INFERENCE_ERRORS,
    PositionsResponse,
    RopeRelativeRequest,
    RopeRelativeResponse,
)
from app.serialize import dumps

router = APIRouter(tags=["positions"])


@router.get(
    "/models/{model_id}/positions",
    response_model=PositionsResponse,
    summary="The positional encoding of a model",
    description="For `n` positions (1 … max_len, default 64 or max_len): the sinusoidal "
    "table (computed from the formula), the learned table, or for RoPE the rotation angle "
    "of each pair of dimensions at each position. With `text`, also `embedding`: each "
    "token's embedding, its positional vector and their sum — what the first layer reads "
    "(the encoder's for seq2seq; RoPE models add no vector, so `position` is null).",
    responses=INFERENCE_ERRORS,
)
async def positions(
    request: Request,
    model_id: str = Path(description="A model id", examples=["seq2seq-en-fr"]),
    n: int | None = Query(None, description="Number of positions (≤ max_len)."),
    text: str | None = Query(None, description="Optional sentence for the embedding panel."),
):
    entry = entry_of(request, model_id)
    max_len = entry.config.max_len
    n = min(64, max_len) if n is None else n
    if not 1 <= n <= max_len:
        raise invalid("n", f"n must be between 1 and max_len={max_len}; got {n}")
    enc = encode_text(entry, text, settings_of(request)) if text is not None else None

    def job() -> bytes:
        result = inference.positions(entry, n, enc.ids if enc else None)
        if enc is not None:
            result["embedding"]["tokens"] = enc.tokens
        return dumps({"model": entry.id, "positional": entry.config.positional, "n": n, **result})

    key = (model_id, n, text)
    return await run_job(request, "positions", key, job)


@router.post(
    "/rope/relative",
    response_model=RopeRelativeResponse,
    summary="Relative position, seen by one head",
    description="Take the query vector of token `query` and the key vector of token `key` "
    "(layer `layer`, head `head`) and place them at every pair of positions (m, n) below "
    "`max_position`: `scores[m][n] = q·k / √d_head`.\n\n"
    "* **RoPE** models (`method: rope`): the un-rotated q and k are rotated by m and n; the "
    "score depends only on m − n, so the matrix is **constant along its diagonals**.\n"
    "* **Sinusoidal / learned** models (`method: additive`): the two tokens' embeddings plus "
    "the positional vectors of m and n, projected by that layer's W_q / W_k. Absolute "
    "position leaks in, so diagonals are **not** constant — the contrast RoPE was made for. "
    "(Above layer 0 this is the layer's view of bare embeddings, not of the full residual "
    "stream.)",
    responses=INFERENCE_ERRORS,
)
async def rope_relative(body: RopeRelativeRequest, request: Request):
    settings = settings_of(request)
    entry = entry_of(request, body.model)
    cfg = entry.config
    enc = encode_text(entry, body.text, settings)
    depth = cfg.depth(cfg.stacks[0])
    if body.layer >= depth:
        raise invalid("layer", f"layer index {body.layer} is out of range: {depth} layers")
    if body.head >= cfg.n_heads:
        raise invalid("head", f"head index {body.head} is out of range: {cfg.n_heads} heads")
    for name in ("query", "key"):
        if getattr(body, name) >= len(enc.ids):
            raise invalid(name, f"{name} must be a token index below {len(enc.ids)}")
    if body.max_position > cfg.max_len:
        raise invalid("max_position", f"max_position must be ≤ max_len={cfg.max_len}")

    def job() -> bytes:
        result = inference.rope_relative(
            entry, enc.ids, body.layer, body.head, body.query, body.key, body.max_position
        )
        return dumps(
            {
                "model": entry.id,
                "positional": cfg.positional,
                "layer": body.layer,
                "head": body.head,
                "query": enc.tokens[body.query],
                "key": enc.tokens[body.key],
                "max_position": body.max_position,
                **result,
            }
        )

    return await run_job(request, "rope_relative", cache_key(body), job)
