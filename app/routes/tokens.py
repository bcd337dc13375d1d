"""POST /api/v1/tokenize: the tokens a model reads, with their place in the text."""

from fastapi import APIRouter

from app.inputs import InputsDep
from app.routes.jobs import documented
from app.schemas import BODY_ERRORS, ErrorResponse, TokenizeRequest, TokenizeResponse

router = APIRouter(tags=["tokens"])


@documented(
    router.post,
    "/tokenize",
    TokenizeResponse,
    responses={**BODY_ERRORS, 404: {"model": ErrorResponse, "description": "Unknown model"}},
)
async def tokenize(body: TokenizeRequest, inputs: InputsDep) -> TokenizeResponse:
    """Split text into the model's tokens

    The exact sequence the model reads, special tokens included: `[CLS] … [SEP]` for the
    encoder, BOS + text for a decoder, text + `</s>` for a seq2seq source. Each token carries
    its id, the slice of your text it covers (`start`, `end` are character offsets) and whether
    it is special.

    **Rules the schema cannot state** (422, `code` in brackets): at most `max_input_tokens` and
    the model's `max_len` tokens [`too_many_tokens`]; text the tokenizer keeps nothing of
    [`empty_text`].
    """
    entry = inputs.model(body.model)
    return TokenizeResponse(model=entry.id, tokens=inputs.text(entry, body.text).tokens)
