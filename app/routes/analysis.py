"""Beyond attention weights: POST /api/v1/logit-lens, /rollout and /attribution."""

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app import inference
from app.config import Settings
from app.deps import RunJob, SettingsDep, cache_key
from app.inputs import Inputs, InputsDep
from app.routes.generate import sweep_stream
from app.routes.jobs import engine_post
from app.schemas import (
    INFERENCE_ERRORS,
    AttributionRequest,
    AttributionResponse,
    HeadScoresRequest,
    HeadScoresResponse,
    LogitLensRequest,
    LogitLensResponse,
    RolloutRequest,
    RolloutResponse,
)

router = APIRouter(tags=["analysis"])

SEQ2SEQ_NOTE = (
    " For seq2seq models the decoder is read: over `target` when given, else over the "
    "model's own greedy translation (returned in `tokens.target`)."
)


@engine_post(router, "/logit-lens", LogitLensResponse, job="logit_lens", appendix=SEQ2SEQ_NOTE)
def logit_lens(inputs: Inputs, body: LogitLensRequest, settings: Settings):
    """What each layer would predict (the logit lens)

    The residual stream after every layer (and before the first: `embed`), put through the
    model's final norm and unembedding as if the model stopped there: at each position the `k`
    most likely tokens, and the probability each layer already gives the model's final
    prediction. The last layer's row is the model's own output. Decoders are read at every
    position, encoders at their `[MASK]` tokens.
    """
    inp = inputs.logit_lens(body)
    return lambda: inference.logit_lens(inp, body.k, settings.max_new_tokens)


@engine_post(router, "/rollout", RolloutResponse, job="rollout", appendix=SEQ2SEQ_NOTE)
def rollout(inputs: Inputs, body: RolloutRequest, settings: Settings):
    """Attention rollout through the layers

    For each self-attention site, the rollout after every layer (Abnar & Zuidema 2020): the
    heads' mean attention plus the residual connection (½·A + ½·I, rows renormalised),
    multiplied through the layers. Row i says how much of each input token could have reached
    position i; it assumes heads mix linearly and equally, so it is an approximation.
    """
    inp = inputs.rollout(body)
    return lambda: inference.rollout(inp, body.format, settings.max_new_tokens)


@engine_post(router, "/attribution", AttributionResponse, job="attribution", appendix=SEQ2SEQ_NOTE)
def attribution(inputs: Inputs, body: AttributionRequest, settings: Settings):
    """Direct logit attribution: which heads wrote the prediction

    The logit of `token` (default: the model's prediction) at `position`, split exactly into
    what each component wrote into the residual stream: every head (through its slice of W_O),
    the embeddings, the FFNs, the biases and the norm shifts, each read by the unembedding
    through the norms frozen at their measured scale. `total` equals `logit`. With `head`, that
    head's share is also split over its key positions. Direct effects only: a head that matters
    through later layers can score near 0 here — compare with ablation.
    """
    inp = inputs.attribution(body)
    return lambda: inference.attribution(inp, body.token, body.head, settings.max_new_tokens)


@engine_post(router, "/heads/scores", HeadScoresResponse, job="head_scores")
def head_scores(inputs: Inputs, body: HeadScoresRequest, settings: Settings):
    """What kind of head is each one: scores for every layer and head

    Per site, an [L][H] matrix per score: `previous_token`, `induction`, `duplicate_token`,
    `first_token` (the attention sink), `entropy` — read off the attention patterns (definitions
    after Olsson et al. 2022 and TransformerLens `detect_head`) — and `importance`, the drop in
    the log-probability of the model's own predictions when that head alone is ablated (all
    heads' ablations run as one batched sweep). Weights and importance side by side: a head can
    look somewhere striking and matter little. Without `text`, the heads are scored on the
    induction probe: BOS + a run of `run_length` random tokens, twice, drawn from `seed`.
    The exact importance sweep of a large model takes minutes on a CPU: `POST
    /heads/scores/stream` answers the same with its progress.
    """
    args = _head_scores_args(inputs, body, settings)
    return lambda: inference.head_scores(*args)


def _head_scores_args(inputs: Inputs, body: HeadScoresRequest, settings: Settings) -> tuple:
    """The arguments of ``inference.head_scores`` (and of its steps) for ``body``: resolved
    in the request, so bad input is a 4xx before any work."""
    inp = inputs.head_scores(body)
    probe = None
    if body.text is None and body.token_ids is None:
        probe = {"seed": body.seed, "run_length": body.run_length}
    mode, limit, method = body.importance_mode, settings.max_new_tokens, body.importance_method
    return inp, body.scores, mode, limit, probe, method


@router.post(
    "/heads/scores/stream",
    summary="The same head scores as Server-Sent Events, with the sweep's progress",
    description="The body of `POST /heads/scores`. Events: with the exact importance sweep, "
    '`progress` (`{done, total, unit: "heads", layer, n_layers, eta_s}`: heads ablated of '
    "all heads; the layer the sweep has reached, 1-based, of `n_layers` (every attention "
    "site's layers counted in order); the seconds left at the rate measured so far, null "
    "before the first batch) before the first batch and after each; then `result` (the "
    "answer of `POST /heads/scores`, byte for byte; one `POST /heads/scores` or this "
    "stream answered before is sent at once, without progress). Pattern scores alone and "
    "`importance_method: attribution_patching` send the `result` only. Closing the "
    "connection stops the sweep at its next batch. Errors before the stream starts are plain "
    "JSON 4xx/503; after, an `error` event.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **INFERENCE_ERRORS},
)
async def head_scores_stream(
    body: HeadScoresRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob
):
    args = _head_scores_args(inputs, body, settings)

    def steps() -> Iterator[dict]:
        return inference.head_scores_steps(*args)

    key = cache_key(body)
    return await sweep_stream(run, "head_scores_stream", "head_scores", key, steps, "head scores")
