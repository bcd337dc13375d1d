"""POST /api/v1/fill-mask and /api/v1/classify: what the encoder was trained to do."""

from fastapi import APIRouter

from app import inference
from app.deps import RunJob, cache_key
from app.inputs import InputsDep
from app.schemas import (
    INFERENCE_ERRORS,
    ClassifyRequest,
    ClassifyResponse,
    FillMaskRequest,
    FillMaskResponse,
)
from app.serialize import dumps

router = APIRouter(tags=["encoder tasks"])


@router.post(
    "/fill-mask",
    response_model=FillMaskResponse,
    response_model_exclude_none=True,
    summary="Guess the words hidden behind [MASK]",
    description="Write `[MASK]` (one or more) in the text; for each, the encoder's `top_k` "
    "most likely tokens with their probabilities (special tokens are never proposed). "
    "`include_attention` adds `attention: {encoder.self: [L][H][T][T]}`. `[MASK]` alone is "
    "a valid text (the encoder's guess at a one-word sentence).\n\n"
    "**Rules the schema cannot state** (422, `code` in brackets): an encoder model "
    "[`unsupported_task`]; at least one `[MASK]` in the text [`no_mask`]; at most "
    "`max_input_tokens` and the model's `max_len` tokens [`too_many_tokens`].",
    responses=INFERENCE_ERRORS,
)
async def fill_mask(body: FillMaskRequest, inputs: InputsDep, run: RunJob):
    inp = inputs.fill_mask(body)

    def job() -> bytes:
        return dumps(inference.fill_mask(inp, body.top_k, body.include_attention))

    return await run("fill_mask", cache_key(body), job)


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    summary="Sentiment of a sentence (the encoder's [CLS] head)",
    description="The probability of each label (`positive`, `negative`, `neutral` for the "
    "shipped encoder), read from the [CLS] position, and how [CLS] attends to every token "
    "in the last layer, per head.\n\n"
    "**Rules the schema cannot state** (422, `code` in brackets): an encoder with a "
    "classification head [`unsupported_task`]; at most `max_input_tokens` and the model's "
    "`max_len` tokens [`too_many_tokens`].",
    responses=INFERENCE_ERRORS,
)
async def classify(body: ClassifyRequest, inputs: InputsDep, run: RunJob):
    inp = inputs.classification(body)
    return await run("classify", cache_key(body), lambda: dumps(inference.classify(inp)))
