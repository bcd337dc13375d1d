"""Request and response schemas (pydantic). Named "schemas" so "models" means networks.

Requests forbid unknown fields and are strict about types: ``"seed": "7"`` or ``1.5`` is a
422 naming ``seed``, not a silent conversion (``7.0`` is 7, an integer in JSON Schema); NaN
and ±Infinity are refused for every float.
Every bound a field has on its own is in the schema (so in ``/docs`` and the OpenAPI
document); bounds that are server settings are marked with ``server_limit`` and filled in
from the settings when the document is built (app/docs.py). What depends on the model is
checked in app/inputs.py (its ``RULES``). Responses are written as bytes by the routes
(orjson); the response models here document their shape in ``/docs``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# ---------------------------------------------------------------------------- building blocks
#: The OpenAPI keyword under which a field names the settings that bound it (see server_limit).
LIMIT_KEY = "x-server-limit"


def server_limit(**keywords: str) -> dict:
    """JSON Schema keywords whose value is a server setting, e.g. ``maxLength="max_text_chars"``:
    the document shows this server's limit, which app/inputs.py enforces."""
    return {LIMIT_KEY: keywords}


#: Not empty, no NUL, at least one character that is not whitespace (app/inputs.py checks it).
TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
TEXT_SCHEMA = {"pattern": TEXT_PATTERN, **server_limit(maxLength="max_text_chars")}


def _integral(value: Any) -> Any:
    """JSON Schema's integer is any number without a fractional part: 3.0 and 3e0 are 3.
    Strings and booleans stay refused (the strict int after this)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Int = Annotated[int, Field(strict=True), BeforeValidator(_integral)]
Index = Annotated[int, Field(strict=True, ge=0), BeforeValidator(_integral)]
#: At most 2**53 - 1: every JSON parser (JavaScript's too) reads such an integer exactly.
Seed = Annotated[int, Field(strict=True, ge=0, le=2**53 - 1), BeforeValidator(_integral)]
TokenIds = Annotated[
    list[Index],
    Field(
        min_length=1, max_length=4096, json_schema_extra=server_limit(maxItems="max_input_tokens")
    ),
]
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
ModelId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        description="A model id, as listed by `GET /api/v1/models`.",
        examples=["encoder-mini"],
    ),
]
Text = Annotated[
    str,
    Field(
        min_length=1,
        description=(
            "The input sentence. Any Unicode text tokenizes (emoji, other scripts); it must "
            "not be empty or only whitespace, contain NUL (U+0000) or a lone surrogate, or be "
            "longer than the server's limits (`max_text_chars` characters, `max_input_tokens` "
            "tokens, and the model's `max_len`)."
        ),
        examples=["the black cat ate the mouse"],
        json_schema_extra=TEXT_SCHEMA,
    ),
]
Site = Literal["encoder.self", "decoder.self", "decoder.cross"]
Include = Literal["scores", "masks", "qkv", "rope", "hidden"]
TensorFormat = Literal["json", "f16"]

TENSOR_DOC = (
    "A float tensor. With `format=json`: nested lists, rounded to 4 decimals, masked cells "
    "`null`. With `format=f16`: `{dtype: 'float16', shape: [...], data: base64}` of the same "
    "values as little-endian half floats, row-major (masked cells NaN)."
)
Tensor = Annotated[Any, Field(description=TENSOR_DOC)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def examples(*items: dict) -> ConfigDict:
    """A request's config: unknown fields forbidden, and these examples shown in /docs."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(items)})


class Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str = Field(examples=["text is empty or only whitespace"])
    field: str | None = Field(None, examples=["text"])


class ErrorResponse(BaseModel):
    """Every error: unknown model 404, bad input 422 naming the field, oversized body 413,
    overload 503 (with `Retry-After`), timeout 504."""

    error: ErrorDetail


#: The error answers of an endpoint that reads a JSON body.
BODY_ERRORS: dict = {
    408: {"model": ErrorResponse, "description": "The body was not all in within the timeout"},
    413: {"model": ErrorResponse, "description": "The body is over the server's limit"},
    422: {"model": ErrorResponse, "description": "Bad input; `field` names it"},
}
#: The error answers of every endpoint that runs a model, as /docs lists them.
INFERENCE_ERRORS: dict = {
    **BODY_ERRORS,
    404: {"model": ErrorResponse, "description": "Unknown model"},
    503: {"model": ErrorResponse, "description": "Busy: retry after `Retry-After` s"},
    504: {"model": ErrorResponse, "description": "The model took longer than the timeout"},
}


# ---------------------------------------------------------------------------- models
class ModelInfo(BaseModel):
    id: str = Field(examples=["decoder-mini"])
    kind: Literal["encoder", "decoder", "seq2seq"]
    title: str
    description: str
    n_layers: int = Field(description="Encoder layers (encoder, seq2seq) or decoder layers.")
    n_decoder_layers: int | None = Field(None, description="seq2seq only.")
    n_heads: int
    d_model: int
    d_head: int
    d_ff: int
    positional: str = Field(description="sinusoidal | learned | rope | none")
    norm: str
    norm_position: str
    activation: str
    vocab_size: int
    max_len: int
    n_params: int
    tasks: list[str]
    labels: list[str] = Field(
        default_factory=list, description="Classes of the [CLS] head (encoder), if any."
    )


class ModelList(BaseModel):
    models: list[ModelInfo]


class ModelCard(ModelInfo):
    card: dict[str, Any] = Field(
        description="The checkpoint's card (training recipe, metrics) plus `parameters`: "
        "the parameter count of each component (embeddings, attention, ffn, norms, heads)."
    )


# ---------------------------------------------------------------------------- tokens
class TokenizeRequest(Request):
    model: ModelId
    text: Text

    model_config = examples({"model": "encoder-mini", "text": "i love machine learning"})


class Token(BaseModel):
    id: int
    text: str = Field(description="The slice of the input text, or the special token's name.")
    start: int | None = Field(description="Character offset of the token in the text.")
    end: int | None
    special: bool = Field(description="[CLS], [SEP], <s>, </s>, BOS/EOS ... (not [UNK]).")


class TokenizeResponse(BaseModel):
    model: str
    tokens: list[Token] = Field(
        description="Exactly the sequence the model reads: the encoder's [CLS] … [SEP], the "
        "decoder's BOS + text, the seq2seq source's text + </s>."
    )


# ---------------------------------------------------------------------------- attention
class AttentionRequest(Request):
    model: ModelId
    text: Text | None = None
    token_ids: TokenIds | None = Field(
        None,
        description="Instead of `text`: the exact ids to feed (nothing is added), each below "
        "the model's `vocab_size`. Useful to replay a generation token for token.",
    )
    target: Text | None = Field(
        None,
        description="seq2seq only: the target sentence to teacher-force (`<s>` is prepended). "
        "Omitted: the model's own greedy translation is used.",
        examples=["le chat noir a mangé la souris"],
    )
    target_ids: TokenIds | None = Field(
        None, description="seq2seq only: exact decoder input ids, `<s>` included."
    )
    layers: list[Index] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Layer indices to return, each below the model's number of layers "
        "(default: all).",
    )
    heads: list[Index] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Head indices to return, each below the model's heads (default: all).",
    )
    include: list[Include] = Field(
        default_factory=list,
        description="Extras: `scores` (pre-softmax, masked cells null), `masks` ([Tq][Tk] of "
        "0/1 per site), `qkv` (per site q/k/v [L][H][T][d_head], plus rot_q/rot_k for RoPE; "
        "each head's output z [L][H][Tq][d_head]; the module's input x [L][Tq][d_model], "
        "after the norm in pre-norm models; its output after concat · W_O, out [L][Tq][d_model]), "
        "`rope` ({base, d_head, angles [T][d_head/2]}; null without RoPE), `hidden` (L2 norm of "
        "the residual stream per layer and position: resid_pre, resid_mid, resid_post).",
    )
    format: TensorFormat = Field("json", description="`json` nested lists or compact `f16`.")

    model_config = examples(
        {"model": "encoder-mini", "text": "the cat sat on the mat"},
        {
            "model": "seq2seq-en-fr",
            "text": "the black cat ate the mouse",
            "layers": [0],
            "heads": [0, 1],
            "include": ["masks"],
            "format": "f16",
        },
    )


class AttentionTokens(BaseModel):
    source: list[Token] = Field(description="The encoder's input, or a decoder's prompt.")
    target: list[Token] | None = Field(None, description="seq2seq: the decoder's input.")


class AttentionResponse(Response):
    model: str
    kind: str
    format: TensorFormat
    n_layers: int
    n_heads: int
    layers: list[int] = Field(description="The layer indices returned, in order.")
    heads: list[int] = Field(description="The head indices returned, in order.")
    tokens: AttentionTokens
    attention: dict[Site, Tensor] = Field(
        description="Per site, [L][H][Tq][Tk] attention weights (each row sums to 1)."
    )
    scores: dict[Site, Tensor] | None = None
    masks: dict[Site, list[list[int]]] | None = None
    qkv: dict[Site, dict[str, Tensor]] | None = None
    rope: dict[str, Any] | None = None
    hidden: dict[str, dict[str, Tensor]] | None = None


# ---------------------------------------------------------------------------- generation
class GenerateRequest(Request):
    model: ModelId
    text: Text
    max_new_tokens: Int = Field(
        32,
        ge=1,
        description="1 … the server's `max_new_tokens`; the default is 32, or that limit if it "
        "is lower.",
        json_schema_extra=server_limit(maximum="max_new_tokens"),
    )
    strategy: Literal["greedy", "sample"] = "greedy"
    temperature: Float = Field(
        1.0,
        gt=0,
        description="> 0, finite. sample only. As it goes to 0 sampling becomes greedy "
        "decoding (any positive value works, 1e-300 included).",
    )
    top_k: Int = Field(0, ge=0, description="Keep the k most likely tokens (0: all). sample only.")
    top_p: Float = Field(
        1.0,
        gt=0,
        le=1,
        description="Nucleus mass in (0, 1]. sample only. The most likely token is always kept.",
    )
    seed: Seed | None = Field(
        None, description="Same seed, same output. Sampling without a seed is random each time."
    )
    n_top: Int = Field(5, ge=1, le=20, description="Candidates reported per step.")

    model_config = examples(
        {"model": "seq2seq-en-fr", "text": "the black cat ate the mouse"},
        {
            "model": "decoder-mini",
            "text": "the cat",
            "max_new_tokens": 12,
            "strategy": "sample",
            "temperature": 0.8,
            "top_k": 20,
            "top_p": 0.95,
            "seed": 7,
        },
    )


class TokenRef(BaseModel):
    id: int
    text: str


class Candidate(TokenRef):
    prob: float


class StepInfo(BaseModel):
    step: int
    token: TokenRef
    prob: float = Field(description="Probability of the chosen token.")
    top: list[Candidate]
    attention: dict[Site, Any] = Field(
        description="The attention row of the query that chose this token, per head: "
        "`decoder.self` [L][H][t] over the prompt + tokens so far, `decoder.cross` [L][H][S] "
        "over the source (seq2seq)."
    )


class GenerateOutput(BaseModel):
    text: str = Field(description="The generated continuation / translation (no specials).")
    tokens: list[TokenRef]


class GenerateResponse(BaseModel):
    model: str
    kind: str
    prompt: list[Token] = Field(
        description="The decoder's prompt (decoder) or the source sentence (seq2seq)."
    )
    steps: list[StepInfo]
    output: GenerateOutput
    stop_reason: Literal["eos", "max_new_tokens", "max_len"]


# ---------------------------------------------------------------------------- encoder tasks
class FillMaskRequest(Request):
    model: ModelId
    text: Text = Field(examples=["the black [MASK] ate the mouse"])
    top_k: Int = Field(5, ge=1, le=50, description="Predictions per [MASK].")
    include_attention: Annotated[bool, Field(strict=True)] = Field(
        False, description="Also return `attention: {encoder.self: [L][H][T][T]}`."
    )


class Prediction(BaseModel):
    id: int
    token: str
    prob: float


class MaskPredictions(BaseModel):
    index: int = Field(description="Position of the [MASK] in `tokens`.")
    predictions: list[Prediction]


class FillMaskResponse(Response):
    model: str
    tokens: list[Token]
    masks: list[MaskPredictions]


class ClassifyRequest(Request):
    model: ModelId
    text: Text = Field(examples=["the movie was not good"])


class LabelProb(BaseModel):
    label: str
    prob: float


class ClassifyResponse(BaseModel):
    model: str
    tokens: list[Token]
    label: str = Field(description="The most likely label.")
    labels: list[LabelProb] = Field(description="Every label, in the model's order.")
    cls_attention: dict[str, Any] = Field(
        description="`{layer, heads: [H][T]}`: how [CLS] attends in the last layer."
    )


# ---------------------------------------------------------------------------- positions
class PositionsResponse(Response):
    model: str
    positional: str
    n: int
    table: list[list[float]] | None = Field(
        None, description="sinusoidal / learned: the [n][d_model] vectors added to embeddings."
    )
    rope: dict[str, Any] | None = Field(
        None, description="RoPE: `{base, d_head, frequencies [d_head/2], angles [n][d_head/2]}`."
    )
    embedding: dict[str, Any] | None = Field(
        None,
        description="With `text`: `{tokens, token [T][d], position [T][d] | null, sum [T][d]}`: "
        "what the first layer reads, token embedding + positional vector.",
    )


class RopeRelativeRequest(Request):
    model: ModelId
    text: Text = Field(examples=["the cat sat on the mat"])
    layer: Int = Field(0, ge=0)
    head: Int = Field(0, ge=0)
    query: Int = Field(1, ge=0, description="Token index whose query vector is used.")
    key: Int = Field(1, ge=0, description="Token index whose key vector is used.")
    max_position: Int = Field(32, ge=1, description="Positions 0 … max_position−1 (≤ max_len).")


class RopeRelativeResponse(BaseModel):
    model: str
    positional: str
    method: Literal["rope", "additive"]
    layer: int
    head: int
    query: Token
    key: Token
    max_position: int
    scores: list[list[float]] = Field(
        description="[m][n]: the query vector placed at position m · the key vector at n, / √d."
    )
