"""Positions: GET /api/v1/models/{id}/positions and POST /api/v1/rope/relative."""

from fastapi import APIRouter, Path, Query

from app import inference
from app.config import Settings
from app.deps import RunJob
from app.inputs import Inputs, InputsDep
from app.routes.jobs import documented, engine_post
from app.schemas import (
    INFERENCE_ERRORS,
    TEXT_SCHEMA,
    PositionsResponse,
    RopeRelativeRequest,
    RopeRelativeResponse,
)
from app.serialize import dumps

router = APIRouter(tags=["positions"])


@documented(
    router.get, "/models/{model_id}/positions", PositionsResponse, responses=INFERENCE_ERRORS
)
async def positions(
    inputs: InputsDep,
    run: RunJob,
    model_id: str = Path(description="A model id", examples=["seq2seq-en-fr"]),
    n: int | None = Query(None, ge=1, description="Number of positions (≤ the model's max_len)."),
    text: str | None = Query(
        None,
        min_length=1,
        description="Optional sentence for the embedding panel.",
        json_schema_extra=TEXT_SCHEMA,
    ),
):
    """The positional encoding of a model

    For `n` positions (1 … max_len, default 64 or max_len): the sinusoidal table (computed from
    the formula), the learned table, or for RoPE the rotation angle of each pair of dimensions
    at each position. With `text`, also `embedding`: each token's embedding, its positional
    vector and their sum — what the first layer reads (the encoder's for seq2seq; RoPE models
    add no vector, so `position` is null).

    **Rules the schema cannot state** (422, `code` in brackets): `n` at most the model's
    `max_len` [`out_of_range`]; `text` within its token limits [`too_many_tokens`].
    """
    entry, n, source = inputs.positions(model_id, n, text)
    job = lambda: dumps(inference.positions(entry, n, source))  # noqa: E731
    return await run("positions", (model_id, n, text), job)


@engine_post(router, "/rope/relative", RopeRelativeResponse, job="rope_relative")
def rope_relative(inputs: Inputs, body: RopeRelativeRequest, settings: Settings):
    """Relative position, seen by one head

    Take the query vector of token `query` and the key vector of token `key` (layer `layer`,
    head `head`) and place them at every pair of positions (m, n) below `max_position`:
    `scores[m][n] = q·k / √d_head`.

    * **RoPE** models (`method: rope`): the un-rotated q and k are rotated by m and n; the score
      depends only on m − n, so the matrix is **constant along its diagonals**.
    * **Sinusoidal / learned** models (`method: additive`): the two tokens' embeddings plus the
      positional vectors of m and n, projected by that layer's W_q / W_k. Absolute position
      leaks in, so diagonals are **not** constant — the contrast RoPE was made for. (Above layer
      0 this is the layer's view of bare embeddings, not of the full residual stream.)

    **Rules the schema cannot state** (422, `code` in brackets): `layer` below the layers of the
    model's first stack, `head` below its heads, `query` and `key` below the number of tokens of
    `text`, `max_position` at most the model's `max_len` [`out_of_range`].
    """
    inp = inputs.rope_relative(body)
    return lambda: inference.rope_relative(inp, body.query, body.key, body.max_position)
