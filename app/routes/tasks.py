"""POST /api/v1/fill-mask and /api/v1/classify: what the encoder was trained to do."""

from fastapi import APIRouter, Request

from app import inference
from app.deps import (
    cache_key,
    encode_text,
    entry_of,
    require_kind,
    run_job,
    settings_of,
)
from app.errors import invalid
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
    "`include_attention` adds `attention: {encoder.self: [L][H][T][T]}`.",
    responses=INFERENCE_ERRORS,
)
async def fill_mask(body: FillMaskRequest, request: Request):
    entry = entry_of(request, body.model)
    require_kind(entry, ("encoder",), "fill-mask")
    enc = encode_text(entry, body.text, settings_of(request))
    mask_id = entry.tokens.mask_id
    if mask_id is None or mask_id not in enc.ids:
        raise invalid("text", "text has no [MASK] token to fill", "no_mask")

    def job() -> bytes:
        result = inference.fill_mask(entry, enc.ids, body.top_k, body.include_attention)
        return dumps({"model": entry.id, "tokens": enc.tokens, **result})

    return await run_job(request, "fill_mask", cache_key(body), job)


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    summary="Sentiment of a sentence (the encoder's [CLS] head)",
    description="The probability of each label (`positive`, `negative`, `neutral` for the "
    "shipped encoder), read from the [CLS] position, and how [CLS] attends to every token "
    "in the last layer, per head.",
    responses=INFERENCE_ERRORS,
)
async def classify(body: ClassifyRequest, request: Request):
    entry = entry_of(request, body.model)
    require_kind(entry, ("encoder",), "classify")
    if not entry.config.n_classes:
        raise invalid("model", f"{entry.id} has no classification head", "unsupported_task")
    enc = encode_text(entry, body.text, settings_of(request))

    def job() -> bytes:
        return dumps(
            {"model": entry.id, "tokens": enc.tokens, **inference.classify(entry, enc.ids)}
        )

    return await run_job(request, "classify", cache_key(body), job)
