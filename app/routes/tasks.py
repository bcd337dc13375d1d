"""POST /api/v1/fill-mask and /api/v1/classify: what the encoder was trained to do."""

from fastapi import APIRouter

from app import inference
from app.config import Settings
from app.inputs import Inputs
from app.routes.jobs import engine_post
from app.schemas import ClassifyRequest, ClassifyResponse, FillMaskRequest, FillMaskResponse

router = APIRouter(tags=["encoder tasks"])


@engine_post(
    router,
    "/fill-mask",
    FillMaskResponse,
    job="fill_mask",
    response_model_exclude_none=True,
)
def fill_mask(inputs: Inputs, body: FillMaskRequest, settings: Settings):
    """Guess the words hidden behind [MASK]

    Write `[MASK]` (one or more) in the text; for each, the encoder's `top_k` most likely tokens
    with their probabilities (special tokens are never proposed). `include_attention` adds
    `attention: {encoder.self: [L][H][T][T]}`. `[MASK]` alone is a valid text (the encoder's
    guess at a one-word sentence).

    **Rules the schema cannot state** (422, `code` in brackets): an encoder model
    [`unsupported_task`]; at least one `[MASK]` in the text [`no_mask`]; at most
    `max_input_tokens` and the model's `max_len` tokens [`too_many_tokens`].
    """
    inp = inputs.fill_mask(body)
    return lambda: inference.fill_mask(inp, body.top_k, body.include_attention)


@engine_post(router, "/classify", ClassifyResponse, job="classify")
def classify(inputs: Inputs, body: ClassifyRequest, settings: Settings):
    """Sentiment of a sentence (the encoder's [CLS] head)

    The probability of each label (`positive`, `negative`, `neutral` for the shipped encoder),
    read from the [CLS] position, and how [CLS] attends to every token in the last layer, per
    head.

    **Rules the schema cannot state** (422, `code` in brackets): an encoder with a
    classification head [`unsupported_task`]; at most `max_input_tokens` and the model's
    `max_len` tokens [`too_many_tokens`].
    """
    inp = inputs.classification(body)
    return lambda: inference.classify(inp)
