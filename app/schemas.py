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
#: Blocks per axis of a pooled matrix or row.
Pool = Annotated[int, Field(strict=True, ge=2, le=256), BeforeValidator(_integral)]
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
Include = Literal["scores", "masks", "qkv", "rope", "hidden", "norms"]
TensorFormat = Literal["json", "f16"]
AttentionFormat = Literal["json", "f16", "binary"]

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
    architecture: Literal["transformer", "rnn"] = Field(
        "transformer",
        description="`rnn`: a recurrent encoder-decoder whose one attention is `decoder.cross` "
        "(1 layer, 1 head); it has no self-attention, positions, norms or residual blocks.",
    )
    cell: Literal["lstm", "gru", "tanh"] | None = Field(
        None, description="`rnn` only: the recurrent cell (`tanh` is the plain RNN)."
    )
    sites: dict[str, int] = Field(
        default_factory=dict,
        description="Attention site → its number of layers (`encoder.self`, `decoder.self`, "
        "`decoder.cross`).",
    )
    title: str
    description: str
    n_layers: int = Field(description="Encoder layers (encoder, seq2seq) or decoder layers.")
    n_decoder_layers: int | None = Field(None, description="seq2seq only.")
    n_heads: int
    n_kv_heads: int = Field(
        description="Key/value heads: n_heads, or fewer with grouped-query attention (each "
        "key/value head then serves n_heads / n_kv_heads query heads, e.g. SmolLM2's 9 and 3)."
    )
    d_model: int
    d_head: int
    d_ff: int
    positional: str = Field(description="sinusoidal | learned | rope | none")
    norm: str
    norm_position: str
    activation: str
    attn_only: bool = Field(
        False, description="The blocks have no FFN: attention only (the induction model)."
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="How the server runs its linear layers (ATTNVIZ_DTYPE): `bfloat16` "
        "multiplies W_Q, W_K, W_V, W_O, the FFN and the unembedding in bfloat16; attention, "
        "norms and the residual stream stay float32.",
    )
    vocab_size: int
    max_len: int
    n_params: int
    tasks: list[str]
    labels: list[str] = Field(
        default_factory=list, description="Classes of the [CLS] head (encoder), if any."
    )
    snapshots: int = Field(
        0,
        description="How many snapshots of its training run the model was saved with "
        "(GET /models/{id}/snapshots); 0: none.",
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


# ---------------------------------------------------------------------------- ablation
class Ablation(Request):
    """One head taken out of the forward pass, at its output before W_O (`hook_z`)."""

    site: Site
    layer: Int = Field(ge=0)
    head: Int = Field(ge=0)
    mode: Literal["zero", "mean"] = Field(
        "zero",
        description="`zero`: the head writes nothing; `mean`: its output at every position is "
        "its mean over the input's positions (it still adds its average, but no longer depends "
        "on where it looks).",
    )


ABLATE = Field(
    None,
    min_length=1,
    max_length=64,
    description="Heads to ablate in this forward pass (the answer also says what changed: "
    "against the same request without ablation).",
    examples=[[{"site": "decoder.self", "layer": 1, "head": 0, "mode": "zero"}]],
)


class AblationInfo(BaseModel):
    heads: list[Ablation] = Field(description="The heads ablated.")
    changed: dict[Site, list[list[float]]] | None = Field(
        None,
        description="/attention: per site [L][H] of the returned layers and heads, how far each "
        "head's attention moved: the total variation distance between its rows with and "
        "without the ablation, averaged over queries (0: unchanged, 1: disjoint).",
    )
    baseline: dict[str, Any] | None = Field(
        None,
        description="What the model says without the ablation, for comparison: /generate "
        "`{output, stop_reason}`, /classify `{label, labels}`, /fill-mask `{masks}`.",
    )


# ---------------------------------------------------------------------------- attention
class SequenceInput(Request):
    """One input sequence: `text` or `token_ids`, and for seq2seq optionally the target."""

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


class SequenceRequest(SequenceInput):
    """A sequence, and heads to ablate while reading it."""

    ablate: list[Ablation] | None = ABLATE


class AttentionRequest(SequenceRequest):
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
        "the residual stream per layer and position: resid_pre, resid_mid, resid_post), "
        "`norms` (per site [L][H][Tq][Tk] value-weighted norms ‖α_ij · f_h(x_j)‖, Kobayashi et "
        "al. 2020: how much each key's value vector actually moves, not only its weight).",
    )
    format: AttentionFormat = Field(
        "json",
        description="`json` nested lists, compact `f16` (base64 half floats in JSON), or "
        "`binary` (`application/octet-stream`: `ATNV`, a uint32 little-endian header length, "
        "the JSON header with each tensor as `{dtype, shape, offset, length}`, padding to 8 "
        "bytes, then the raw little-endian half floats; offsets count from the end of the "
        "padding).",
    )
    query_window: list[Index] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="`[start, stop)`: only these query rows of every matrix returned "
        "(attention, scores, norms, masks, and the per-query q / z / x / out), e.g. the rows a "
        "view shows of a long input; each site's rows are cut to its own length.",
    )
    weights: bool = Field(
        True,
        description="false: leave the attention weights out of the answer (e.g. to fetch only "
        "`qkv` of a long input).",
    )
    pool: Pool | None = Field(
        None,
        description="Reduce each returned attention (and `norms`) matrix to at most "
        "`pool`×`pool` blocks of neighbouring tokens: query blocks averaged, key blocks summed, "
        "so every row still sums to 1. `pool.edges` gives each axis's block edges (token "
        "indices). For thumbnails of long inputs; not with `scores`, `masks` or `qkv`.",
    )

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


class PoolInfo(BaseModel):
    size: int = Field(description="The `pool` asked for.")
    edges: dict[str, list[int]] = Field(
        description="Per sequence (`source`, `target`): block b covers tokens "
        "[edges[b], edges[b+1])."
    )


class AttentionResponse(Response):
    model: str
    kind: str
    format: AttentionFormat
    n_layers: int
    n_heads: int
    layers: list[int] = Field(description="The layer indices returned, in order.")
    heads: list[int] = Field(description="The head indices returned, in order.")
    tokens: AttentionTokens
    attention: dict[Site, Tensor] | None = Field(
        None,
        description="Per site, [L][H][Tq][Tk] attention weights (each row sums to 1); absent "
        "with `weights: false`.",
    )
    query_window: list[int] | None = None
    scores: dict[Site, Tensor] | None = None
    masks: dict[Site, list[list[int]]] | None = None
    qkv: dict[Site, dict[str, Tensor]] | None = None
    rope: dict[str, Any] | None = None
    hidden: dict[str, dict[str, Tensor]] | None = None
    norms: dict[Site, Tensor] | None = None
    pool: PoolInfo | None = None
    ablation: AblationInfo | None = None


# ---------------------------------------------------------------------------- generation
class GenerateRequest(Request):
    model: ModelId
    text: Text | None = None
    token_ids: TokenIds | None = Field(
        None,
        description="Instead of `text`: the exact prompt (decoder, BOS included if wanted) or "
        "source (seq2seq, `</s>` included if wanted) ids, nothing added, each below the "
        "model's `vocab_size`. With an answer's `prompt` ids this replays it token for token.",
    )
    target_ids: TokenIds | None = Field(
        None,
        description="seq2seq only: the decoder input to continue, `<s>` included (default: "
        "`<s>` alone). An answer's `<s>` + its first k token ids replays the rest.",
    )
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
    layers: list[Int] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Decoder layers whose attention rows each step carries (default: all).",
    )
    heads: list[Int] | None = Field(
        None, min_length=1, max_length=64, description="Heads whose rows each step carries."
    )
    ablate: list[Ablation] | None = ABLATE
    pool: Pool | None = Field(
        None,
        description="Each row reduced to at most `pool` blocks of neighbouring keys (their "
        "weights summed; the step's `attention_edges` gives the blocks). Default: full rows, "
        "except past 256 tokens of context with no `layers`/`heads`: then 64 blocks, so a long "
        "decoding never sends every head's full row each step.",
    )
    chat: bool = Field(
        False,
        strict=True,
        description="Put `text` through the model's chat template as the user's message (a "
        "question), with the assistant's turn opened: for models whose card has a "
        "`chat_template` (its `tasks` list `chat`), e.g. an imported instruct LLM.",
    )

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
    piece: str | None = Field(
        None,
        description="The vocabulary entry itself, markers included (`Ġ`, `▁` start a word, "
        "`##` continues one): what the token alone cannot say once decoded.",
    )


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
        "over the source (seq2seq); only the `rows` asked for."
    )
    attention_edges: dict[Site, list[int]] | None = Field(
        None, description="With pooled rows: each site's key blocks (token index edges)."
    )


class RowsInfo(BaseModel):
    """Which attention rows each step carries (absent: every layer and head, in full)."""

    layers: list[int]
    heads: list[int]
    pool: int | None


class GenerateOutput(BaseModel):
    text: str = Field(description="The generated continuation / translation (no specials).")
    tokens: list[TokenRef]


class GenerateResponse(BaseModel):
    model: str
    kind: str
    prompt: list[Token] = Field(
        description="The decoder's prompt (decoder) or the source sentence (seq2seq)."
    )
    target: list[Token] | None = Field(
        None, description="seq2seq, with `target_ids`: the decoder input it continued."
    )
    rows: RowsInfo | None = None
    steps: list[StepInfo]
    output: GenerateOutput
    stop_reason: Literal["eos", "max_new_tokens", "max_len"]
    ablation: AblationInfo | None = None


# ---------------------------------------------------------------------------- encoder tasks
class FillMaskRequest(Request):
    model: ModelId
    text: Text = Field(examples=["the black [MASK] ate the mouse"])
    top_k: Int = Field(5, ge=1, le=50, description="Predictions per [MASK].")
    include_attention: Annotated[bool, Field(strict=True)] = Field(
        False, description="Also return `attention: {encoder.self: [L][H][T][T]}`."
    )
    ablate: list[Ablation] | None = ABLATE


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
    ablation: AblationInfo | None = None


class ClassifyRequest(Request):
    model: ModelId
    text: Text = Field(examples=["the movie was not good"])
    ablate: list[Ablation] | None = ABLATE


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
    ablation: AblationInfo | None = None


# ---------------------------------------------------------------------------- positions
class PositionsResponse(Response):
    model: str
    positional: str
    n: int
    table: list[list[float]] | None = Field(
        None, description="sinusoidal / learned: the [n][d_model] vectors added to embeddings."
    )
    rope: dict[str, Any] | None = Field(
        None,
        description="RoPE: `{base, d_head, pairing, frequencies [d_head/2], angles "
        "[n][d_head/2]}`. `pairing`: which dimensions rotate together — `interleaved` (2i, 2i+1), "
        "as in RoFormer, or `halves` (i, i + d_head/2), as in Hugging Face's Llama family.",
    )
    pairing: str | None = Field(
        None,
        description="sinusoidal: where each frequency's sin and cos sit — `interleaved` "
        "(Vaswani et al.) or `halves` (Marian).",
    )
    embedding: dict[str, Any] | None = Field(
        None,
        description="With `text`: `{tokens, token [T][d], position [T][d] | null, sum [T][d], "
        "scale}`: what the first layer reads, token embedding + positional vector; `token` is "
        "the embedding table's row times `scale` (√d_model where the model scales it, else 1).",
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


# ---------------------------------------------------------------------------- analyses
class LogitLensRequest(SequenceRequest):
    k: Int = Field(5, ge=1, le=20, description="Top tokens reported per layer and position.")
    positions: list[Int] | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Positions of the predicting stack to read (default: every position of a "
        "decoder; every `[MASK]` of an encoder).",
    )

    model_config = examples(
        {"model": "decoder-mini", "text": "the black cat ate the"},
        {"model": "encoder-mini", "text": "i went to the [MASK]", "k": 3},
    )


class LogitLensResponse(Response):
    model: str
    kind: str
    stack: Literal["encoder", "decoder"] = Field(description="The stack that predicts tokens.")
    tokens: AttentionTokens
    layers: list[str] = Field(description='"embed", then each block: "0", "1", …')
    positions: list[int]
    top_ids: list[list[list[int]]] = Field(description="[layer][position][k] token ids.")
    top_probs: list[list[list[float]]] = Field(description="[layer][position][k].")
    final_ids: list[int] = Field(description="The model's own prediction at each position.")
    final_probs: list[list[float]] = Field(
        description="[layer][position]: the probability each layer already gives that prediction."
    )
    vocab: dict[str, str] = Field(description="Token id → readable text, for every id above.")
    ablation: AblationInfo | None = None


class RolloutRequest(SequenceRequest):
    format: TensorFormat = "json"

    model_config = examples({"model": "encoder-mini", "text": "the movie was not good"})


class RolloutResponse(Response):
    model: str
    kind: str
    format: TensorFormat
    tokens: AttentionTokens
    rollout: dict[Site, Tensor] = Field(
        description="Per self-attention site, [L][T][T]: row i of layer l is how much of each "
        "input token reaches position i after layers 0…l (Abnar & Zuidema 2020: "
        "Ã = ½·mean_h A + ½·I, rows renormalised, multiplied through the layers)."
    )
    ablation: AblationInfo | None = None


class HeadRef(Request):
    site: Site
    layer: Int = Field(ge=0)
    head: Int = Field(ge=0)


class AttributionRequest(SequenceRequest):
    position: Int | None = Field(
        None,
        description="Position of the predicting stack to explain (negative counts from the "
        "end). Default: the last position (decoders), the first `[MASK]` (encoders).",
    )
    token: Index | None = Field(
        None, description="Token id whose logit is explained (default: the prediction)."
    )
    head: HeadRef | None = Field(
        None, description="Also split this head's contribution over its key positions."
    )

    model_config = examples(
        {"model": "decoder-mini", "text": "the black cat ate the"},
        {
            "model": "seq2seq-en-fr",
            "text": "the black cat ate the mouse",
            "head": {"site": "decoder.cross", "layer": 2, "head": 0},
        },
    )


class AttributionPart(BaseModel):
    name: str
    value: float


class AttributionResponse(Response):
    model: str
    kind: str
    tokens: AttentionTokens
    position: int
    token: TokenRef
    logit: float = Field(description="The model's logit for `token` at `position`.")
    total: float = Field(description="The sum of every contribution: equals `logit`.")
    heads: dict[Site, list[list[float]]] = Field(
        description="[L][H]: what each head wrote into the stream, read by the unembedding "
        "through the final norm(s) frozen at their measured scale."
    )
    parts: list[AttributionPart] = Field(
        description="Every other component: embeddings, output biases, FFNs, norm shifts, "
        "the unembedding bias."
    )
    head_positions: list[float] | None = Field(
        None, description="With `head`: its contribution split over the key positions."
    )
    ablation: AblationInfo | None = None


HeadScore = Literal[
    "previous_token", "induction", "duplicate_token", "first_token", "entropy", "importance"
]


class HeadScoresRequest(SequenceInput):
    """`text` or `token_ids` to score the heads on; neither: the induction probe."""

    seed: Seed = Field(0, description="The probe's random run (no text).")
    run_length: Int = Field(
        24, ge=2, le=1024, description="The probe: BOS + a run of this many random tokens, twice."
    )
    scores: list[HeadScore] | None = Field(
        None, min_length=1, description="Which scores (default: all)."
    )
    importance_mode: Literal["zero", "mean"] = Field(
        "zero", description="How `importance` ablates each head."
    )
    importance_method: Literal["exact", "attribution_patching"] = Field(
        "exact",
        description="`exact`: every head ablated in turn (batched forward passes). "
        "`attribution_patching`: an approximation from one forward and one backward pass "
        "(gradient × the change the ablation makes to the head's output), labelled so in "
        "`definitions`; seconds instead of minutes on a real LLM.",
    )

    model_config = examples(
        {"model": "induction-2l"},
        {"model": "decoder-mini", "text": "the cat sat on the mat and the cat ate"},
    )


class HeadScoresResponse(Response):
    model: str
    kind: str
    input: Literal["text", "probe"]
    probe: dict[str, int] | None = Field(None, description="`{seed, run_length}` of the probe.")
    tokens: AttentionTokens
    scores: dict[Site, dict[str, list[list[float | None]] | None]] = Field(
        description="Per site and score, [L][H]; null where a score does not apply (token "
        "scores on cross-attention, importance without a vocabulary head) or has nothing to "
        "measure (induction on a text without repeated tokens)."
    )
    definitions: dict[str, str]


# ---------------------------------------------------------------------------- inside a block
class BlockRequest(SequenceRequest):
    stack: Literal["encoder", "decoder"] | None = Field(
        None,
        description="The stack whose block is read (default: the model's first: the encoder "
        "of an encoder or a seq2seq model, else the decoder).",
    )
    layer: Index = Field(0, description="The block's index in its stack.")
    batch: list[Text] = Field(
        default_factory=list,
        max_length=8,
        description="Other sentences for the normalisation comparison: BatchNorm pools their "
        "tokens with this sentence's, LayerNorm and RMSNorm never look beyond one token. For a "
        "seq2seq decoder each is a source, read over the model's own greedy translation.",
    )
    format: AttentionFormat = Field(
        "json",
        description="How the tensors shaped [T][d_model] and [T][d_ff] travel: `json` nested "
        "lists, `f16` base64 half floats, or `binary` (`application/octet-stream`, the frame "
        "of POST /attention); per-token statistics and vectors stay plain lists.",
    )

    model_config = examples(
        {"model": "decoder-mini", "text": "the black cat ate the mouse", "layer": 1},
        {
            "model": "encoder-mini",
            "text": "i love machine learning",
            "layer": 0,
            "batch": ["the cat sat on the mat", "you are welcome"],
            "format": "f16",
        },
    )


class BlockStep(BaseModel):
    step: Literal["norm", "attention", "cross_attention", "ffn", "add"]
    module: str = Field(
        description="The norm (`attn_norm`, `cross_norm`, `ffn_norm`, the stack's `embed_norm` "
        "before block 0 or `final_norm` after the last), the sublayer (`attn`, `cross_attn`, "
        "`ffn`), or for `add` the sublayer whose output is added to the stream."
    )


class TokenStatistics(BaseModel):
    mean: list[float] = Field(description="[T] mean of each token's features.")
    std: list[float] = Field(description="[T] their (population) standard deviation.")
    rms: list[float] = Field(description="[T] their root mean square.")


class NormLayer(BaseModel):
    kind: Literal["layernorm", "rmsnorm"]
    eps: float
    hooks: str = Field(description="The norm's hook points: `<hooks>.hook_in` and so on.")
    stream: Tensor = Field(description="[T][d_model] what it reads (`hook_in`).")
    normalized: Tensor = Field(
        description="[T][d_model] before the gain (`hook_normalized`): per token mean 0 and "
        "variance 1 (LayerNorm) or RMS 1 (RMSNorm), up to eps."
    )
    output: Tensor = Field(description="[T][d_model] γ ⊙ normalized (+ β): what comes next reads.")
    gain: list[float] = Field(description="[d_model] the learnt gain γ.")
    bias: list[float] | None = Field(description="[d_model] the learnt bias β (LayerNorm).")
    stats: dict[Literal["stream", "normalized", "output"], TokenStatistics]


class FFNReading(BaseModel):
    activation: str
    d_ff: int
    pre: Tensor = Field(description="[T][d_ff] W_1 x, before the non-linearity (`ffn.hook_pre`).")
    post: Tensor = Field(
        description="[T][d_ff] after it (`ffn.hook_post`); SwiGLU: the gated product."
    )
    gate: Tensor | None = Field(None, description="SwiGLU: [T][d_ff] silu(W_1 x).")
    up: Tensor | None = Field(None, description="SwiGLU: [T][d_ff] W_3 x, which the gate scales.")
    out: Tensor = Field(
        description="[T][d_model] W_2 · post (+ b_2), added to the stream (`hook_ffn_out`)."
    )
    zeroed: list[float] = Field(
        description="[T] the share of units the non-linearity shuts: for ReLU the units it sets "
        "to 0; for GELU and SiLU (SwiGLU's gate) its soft version, the mean of 1 − act(x)/x "
        "(1 − Φ(x), 1 − σ(x)) over the units."
    )
    unit_write: list[float] = Field(
        description="[d_ff] ‖W_2[:, u]‖: how far one unit of activation of u moves the stream."
    )


class ResidualPoint(BaseModel):
    layer: int | None = Field(description="The block (null: before the first).")
    after: Literal["embed", "attn", "cross_attn", "ffn"]


class ResidualReading(BaseModel):
    points: list[ResidualPoint] = Field(
        description="The stream before the first block, then after each sublayer's Add (& "
        "Norm) of every block of the stack."
    )
    l2: list[list[float]] = Field(description="[P][T] the L2 norm of each token's stream there.")
    added: list[list[float]] = Field(
        description="[P][T] the L2 norm of what was added there: the sublayer's output (the "
        "embeddings themselves for the first point)."
    )


class BatchSentence(BaseModel):
    text: str
    n_tokens: int = Field(description="Tokens it brings to the batch (the stack's length).")


class PerTokenNorm(BaseModel):
    mean: list[float] | None = Field(None, description="[T] (LayerNorm) each token's mean.")
    std: list[float] | None = Field(None, description="[T] (LayerNorm) its standard deviation.")
    rms: list[float] | None = Field(None, description="[T] (RMSNorm) its root mean square.")
    output: Tensor = Field(description="[T][d_model] the sentence normalised, no gain or bias.")


class PerFeatureNorm(BaseModel):
    mean: list[float] = Field(description="[d_model] each feature's mean over the batch's tokens.")
    std: list[float] = Field(description="[d_model] its standard deviation.")
    n_tokens: int
    n_sentences: int
    output: Tensor = Field(description="[T][d_model] the sentence normalised with these.")


class BatchNormPair(BaseModel):
    alone: PerFeatureNorm = Field(description="A batch of this sentence only.")
    batch: PerFeatureNorm = Field(description="This sentence and the `batch` sentences.")


class NormComparisonReading(BaseModel):
    stream: str = Field(
        description="The hook point of the activations compared: what the block's first norm "
        "reads (its `hook_in`), or the block's input in a model without norms."
    )
    eps: float
    batch: list[BatchSentence] = Field(description="The other sentences, in request order.")
    layernorm: PerTokenNorm
    rmsnorm: PerTokenNorm
    batchnorm: BatchNormPair


class BlockNorm(BaseModel):
    type: Literal["layernorm", "rmsnorm", "none"]
    position: Literal["pre", "post"]


class BlockResponse(Response):
    model: str
    kind: str
    format: AttentionFormat
    stack: Literal["encoder", "decoder"]
    layer: int
    n_layers: int = Field(description="Blocks in this stack.")
    d_model: int
    norm: BlockNorm
    reads: Literal["source", "target"] = Field(description="The tokens this stack reads.")
    tokens: AttentionTokens
    order: list[BlockStep] = Field(
        description="The block's steps in the order its forward pass ran them (read off the "
        "order in which its hook points fired): post-norm adds then normalises, pre-norm "
        "normalises what the sublayer reads and adds its output to the raw stream."
    )
    normalization: dict[str, NormLayer] = Field(
        description="Each norm of the block that normalises, by module name (none for a model "
        "without norms)."
    )
    ffn: FFNReading | None = Field(description="null for an attention-only model.")
    residual: ResidualReading
    comparison: NormComparisonReading = Field(
        description="LayerNorm, RMSNorm and BatchNorm applied to the same captured activations "
        "of this sentence; BatchNorm's statistics come from a batch, so they change with the "
        "`batch` sentences, while LayerNorm's and RMSNorm's are each token's own."
    )
    ablation: AblationInfo | None = None


# ---------------------------------------------------------------------------- recurrence
RecurrenceFormat = Literal["json", "f16", "f32"]
GRADIENT_EXAMPLE = {  # the four first lecture sentences run together: 20 source tokens
    "model": "rnn-en-fr",
    "text": "the black cat ate the mouse i love machine learning you are welcome "
    "the cat sat on the mat",
    "target": "le chat noir a mangé la souris j'aime l'apprentissage automatique de rien "
    "le chat s'est assis sur le tapis",
    "compare": "rnn-tanh-en-fr",
    "format": "f16",
}


class UnrollRequest(SequenceInput):
    compare: ModelId | None = Field(
        None,
        description="Another RNN with the same vocabulary (e.g. the plain tanh companion of an "
        "LSTM): its gradient norms on the same token ids, for the vanishing-gradient "
        "comparison.",
        examples=["rnn-tanh-en-fr"],
    )
    format: RecurrenceFormat = Field(
        "json",
        description="`json` nested lists (4 decimals), compact `f16` (base64 half floats), or "
        "`f32` (base64 float32, unrounded: the values as computed). Gradient norms are always "
        "plain JSON numbers at full precision: they span several orders of magnitude.",
    )

    model_config = examples(
        {"model": "rnn-en-fr", "text": "the black cat ate the mouse"}, GRADIENT_EXAMPLE
    )


class StackSteps(BaseModel):
    """One recurrent stack, step by step (T steps: the source for the encoder, the decoder's
    input tokens for the decoder); d is the state width, K the cell's `chunks`."""

    x: Tensor = Field(
        description="[T][d_embed] the input embeddings: x_t (encoder), y_{i−1} (decoder)."
    )
    wx: Tensor = Field(
        description="[T][K][d] W_x · input + b_x, cut in the cell's chunks. The decoder's input "
        "is [y_{i−1}; c_i], its embedding and the attention's context."
    )
    wh: Tensor = Field(description="[T][K][d] W_h h_{t−1} + b_h, cut in the cell's chunks.")
    h: Tensor = Field(description="[T][d] the hidden state after each step: h_t, s_i.")
    gates: dict[str, Tensor] = Field(
        description="Per gate, [T][d]: LSTM `i` (input), `f` (forget), `g` (candidate), `o` "
        "(output) and the cell state `c`; GRU `r` (reset), `z` (update), `n` (candidate); none "
        "for the plain tanh RNN."
    )


class DecoderSteps(StackSteps):
    s0: Tensor = Field(description="[d] the decoder's initial state tanh(W_init h_S + b).")
    context: Tensor = Field(description="[T][d] the context c_i = Σ_j α_ij h_j of each step.")


class GradientNorms(BaseModel):
    all: list[float] = Field(
        description="[S] ‖∂loss/∂h_t‖ along every path, the attention's direct read of h_t "
        "included."
    )
    recurrence: list[float] = Field(
        description="[S] the same with the attention's read of the states cut: the loss reaches "
        "h_t only through h_{t+1} … h_S and the decoder's initial state (backpropagation "
        "through time)."
    )


class GradientComparison(BaseModel):
    model: str
    cell: str
    gradients: GradientNorms


class UnrollResponse(Response):
    model: str
    cell: Literal["lstm", "gru", "tanh"]
    format: RecurrenceFormat
    chunks: list[str] = Field(
        description="The names of the K chunks of `wx` and `wh`, in order: `i f g o` (LSTM), "
        "`r z n` (GRU), `h` (tanh)."
    )
    tokens: AttentionTokens = Field(
        description="The source (the encoder's steps) and the decoder's input, `<s>` first."
    )
    encoder: StackSteps
    decoder: DecoderSteps
    alignment: Tensor = Field(
        description="[T][S] the additive attention α_ij (site `decoder.cross`): each row sums to 1."
    )
    gradients: GradientNorms = Field(
        description="By autograd: the loss is the teacher-forced cross-entropy of the decoder's "
        "input followed by `</s>` (each token predicted from the ones before it and the source)."
    )
    compare: GradientComparison | None = Field(
        None, description="With `compare`: that model's gradient norms on the same token ids."
    )


# ---------------------------------------------------------------------------- snapshots
class SnapshotInfo(BaseModel):
    step: int = Field(description="Optimizer steps taken when the snapshot was kept (0: init).")
    loss: float = Field(description="The training loss there, averaged over `loss_window` batches.")
    scores: dict[str, list[list[float | None]]] = Field(
        description="`induction` and `previous_token`, [L][H], measured on the probe asked for "
        "from this snapshot's weights (null: nothing to measure)."
    )


class SnapshotsResponse(Response):
    model: str
    steps: int = Field(description="The run's length in optimizer steps.")
    seed: int = Field(description="The run's seed.")
    selection: str = Field(description="How the snapshot steps were chosen.")
    loss_window: int
    loss: list[float] = Field(description="The training loss at every step of the run.")
    probe: dict[str, int] = Field(description="`{seed, run_length}` of the probe scored on.")
    tokens: AttentionTokens
    snapshots: list[SnapshotInfo]
    formed: dict[str, Any] = Field(
        description="Measured when the snapshots were written, on /heads/scores's default "
        "probe: the induction heads, the step where their mean induction score first passes "
        "`threshold`, the previous-token head, and where the loss fell fastest (the card's "
        "`snapshots`); `probe`: that probe's `{seed, run_length}`."
    )
    run: dict[str, Any] | None = Field(
        None,
        description="Shipped with a checkpoint by `attnviz attach-snapshots`: whether the run's "
        "last weights are the checkpoint's (`identical_to_checkpoint`, the largest weight "
        "difference) and the run's own final metrics.",
    )
    definitions: dict[str, str]


class SnapshotAttentionResponse(Response):
    model: str
    step: int
    loss: float
    layer: int
    head: int
    probe: dict[str, int]
    tokens: AttentionTokens
    attention: list[list[float]] = Field(
        description="[T][T]: the head's attention on the probe at this snapshot, rows queries."
    )
    scores: dict[str, float | None] = Field(
        description="This head's `induction` and `previous_token`."
    )


# ---------------------------------------------------------------------------- activation patching
PatchSite = Literal[
    "resid_pre", "attn_out", "cross_out", "mlp_out", "head_z", "head_pattern", "memory"
]
#: A token of the model's vocabulary: the string (one token once tokenized, or a vocabulary
#: piece such as "Ġmouse") or its id.
TokenChoice = Annotated[
    str | Index,
    Field(
        description="One token: its id, or a string that the model's tokenizer reads as exactly "
        "one token (`noir`), or a vocabulary piece as stored (`Ġmouse`, `▁noir`, `##ing`).",
        examples=["noir"],
    ),
]


class PatchInput(Request):
    """One of the two inputs: `text` or `token_ids`; seq2seq: optionally the target."""

    text: Text | None = None
    token_ids: TokenIds | None = None
    target: Text | None = Field(
        None,
        description="seq2seq: the teacher-forced target, the same for both inputs (give it on "
        "either, or on both identically). Omitted: the model's own translation of `clean`.",
    )
    target_ids: TokenIds | None = None


class PatchMetric(Request):
    kind: Literal["logit_diff", "logprob"] = Field(
        "logit_diff",
        description="`logit_diff`: logit(answer) − logit(wrong); `logprob`: log p(answer).",
    )
    head: Literal["vocab", "classifier"] = Field(
        "vocab",
        description="`classifier`: read an encoder's [CLS] classification head (position 0) "
        "instead of the vocabulary; `answer` and `wrong` are then labels (`negative`) or class "
        "indices.",
    )
    answer: TokenChoice | None = Field(
        None, description="Default: the clean input's most likely token at the position."
    )
    wrong: TokenChoice | None = Field(
        None,
        description="`logit_diff` only. Default: the corrupted input's most likely token there "
        "(its second when that is the answer).",
    )
    position: Int | None = Field(
        None,
        description="The predicting position, whose output is read (negative counts from the "
        "end). Default: the last (decoders), the first `[MASK]` of `clean` (encoders), the last "
        "target position (seq2seq: position i predicts target token i + 1).",
    )


class PatchRequest(Request):
    model: ModelId
    clean: PatchInput
    corrupted: PatchInput = Field(
        description="As long as `clean` in tokens: the run that is patched."
    )
    metric: PatchMetric
    sites: list[PatchSite] | None = Field(
        None,
        min_length=1,
        description="Default: every site; one the model lacks is then null with its reason "
        "(given explicitly, it is a 422).",
    )
    method: Literal["exact", "attribution"] = Field(
        "exact",
        description="`exact`: one patched run per cell (batched). `attribution`: an "
        "approximation from one forward and one backward pass of the corrupted input, "
        "(a_clean − a_corrupted) · ∂m/∂a (attribution patching, Nanda 2023).",
    )
    raw: Annotated[bool, Field(strict=True)] = Field(
        False, description="Return m(patched) itself instead of the effect."
    )

    model_config = examples(
        {
            "model": "seq2seq-en-fr",
            "clean": {"text": "the black cat ate the mouse"},
            "corrupted": {"text": "the white cat ate the mouse"},
            "metric": {
                "kind": "logit_diff",
                "answer": "noir",
                "wrong": "blanc",
                "position": 2,
            },
            "sites": ["resid_pre", "attn_out", "mlp_out", "head_z", "head_pattern"],
        },
        {
            "model": "decoder-mini",
            "clean": {"text": "the black cat ate the"},
            "corrupted": {"text": "the white cat ate the"},
            "metric": {"kind": "logprob", "answer": " mouse"},
        },
    )


class PatchTokens(BaseModel):
    clean: AttentionTokens
    corrupted: AttentionTokens


class PatchMetricInfo(BaseModel):
    kind: str
    head: Literal["vocab", "classifier"]
    answer: TokenRef
    wrong: TokenRef | None
    position: int = Field(description="The predicting position read (never negative here).")
    clean: float = Field(description="m(clean)")
    corrupted: float = Field(description="m(corrupted)")
    top: dict[str, list[dict[str, Any]]] = Field(
        description="`{clean, corrupted}`: the model's most likely tokens (or classes) at the "
        "position on each input, `{id, text, prob}`: where to pick an answer from."
    )


class PatchResponse(Response):
    model: str
    kind: str
    method: Literal["exact", "attribution"]
    approximation: bool = Field(description="True for `attribution`.")
    raw: bool
    tokens: PatchTokens
    differing: list[int] = Field(description="Source positions where the two inputs differ.")
    metric: PatchMetricInfo
    effects: dict[str, dict[str, list[list[float]]] | None] = Field(
        description="Per site: per stack (`resid_pre`, `attn_out`, `cross_out`, `mlp_out`: "
        "[L][T]), per attention site (`head_z`, `head_pattern`: [L][H]) or `encoder` "
        "(`memory`: [1][S]), the effect (m(patched) − m(corrupted)) / (m(clean) − "
        "m(corrupted)), or with `raw` m(patched). null: see `reasons`."
    )
    reasons: dict[str, str] = Field(description="Why a site is null.")
    definitions: dict[str, str]
