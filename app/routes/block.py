"""POST /api/v1/block: inside one transformer block (Add & Norm, the FFN, the stream)."""

from fastapi import APIRouter

from app import inference
from app.deps import RunJob, SettingsDep, cache_key
from app.inputs import InputsDep
from app.schemas import INFERENCE_ERRORS, BlockRequest, BlockResponse
from app.serialize import BINARY, dumps, dumps_binary

router = APIRouter(tags=["block"])

DESCRIPTION = """
One block of a transformer's stack (`stack`, `layer`) for one sentence, from the hook points
of one forward pass:

* `order`: the block's steps as they ran — where its norms sit (post-norm: attention, add,
  norm; pre-norm: norm, attention, add), the stack's embedding norm before block 0 and final
  norm after the last;
* `normalization`: per norm, the stream it reads, the normalised vectors (mean 0 / variance 1,
  or RMS 1), its output, the learnt gain and bias, and each token's mean, std and RMS at each
  of the three;
* `ffn`: the hidden units before and after the non-linearity (and SwiGLU's gate), the share of
  units it shuts per token, what the FFN adds to the stream;
* `residual`: the L2 norm of each token's stream after every sublayer of the stack, and of what
  each sublayer added;
* `comparison`: LayerNorm, RMSNorm and BatchNorm applied to the same activations; BatchNorm's
  statistics pool the tokens of the `batch` sentences, so only they change with it.

For a seq2seq model, `stack: decoder` reads `target` when given, else the model's own greedy
translation (returned in `tokens.target`); each `batch` sentence is then read over its own
greedy translation.

**Rules the schema cannot state** (422, `code` in brackets): a transformer (recurrent models
have no blocks) [`unsupported_task`]; a `stack` the model has [`no_such_stack`]; `layer` below
that stack's depth, token ids below the `vocab_size` [`out_of_range`]; exactly one of `text`
and `token_ids` [`exclusive_fields`]; `target` and `target_ids` for seq2seq models only
[`unsupported_field`]; the text and each `batch` sentence within `max_input_tokens` and the
model's `max_len` [`too_many_tokens`], each keeping some token [`empty_text`].
"""


@router.post(
    "/block",
    response_model=BlockResponse,
    response_model_exclude_none=True,
    summary="Inside one block: Add & Norm, the FFN, the residual stream",
    description=DESCRIPTION,
    responses={
        200: {"content": {BINARY: {"schema": {"type": "string", "format": "binary"}}}},
        **INFERENCE_ERRORS,
    },
)
async def block(body: BlockRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob):
    b = inputs.block(body)
    binary = body.format == "binary"

    def job() -> bytes:
        answer = inference.block(b, body.format, settings.max_new_tokens)
        return dumps_binary(answer) if binary else dumps(answer)

    return await run("block", cache_key(body), job, BINARY if binary else "application/json")
