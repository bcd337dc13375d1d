"""Beyond attention weights: POST /api/v1/logit-lens, /rollout and /attribution."""

from fastapi import APIRouter

from app import inference
from app.deps import RunJob, SettingsDep, cache_key
from app.inputs import InputsDep
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
from app.serialize import dumps

router = APIRouter(tags=["analysis"])

SEQ2SEQ_NOTE = (
    " For seq2seq models the decoder is read: over `target` when given, else over the "
    "model's own greedy translation (returned in `tokens.target`)."
)


@router.post(
    "/logit-lens",
    response_model=LogitLensResponse,
    summary="What each layer would predict (the logit lens)",
    description="The residual stream after every layer (and before the first: `embed`), put "
    "through the model's final norm and unembedding as if the model stopped there: at each "
    "position the `k` most likely tokens, and the probability each layer already gives the "
    "model's final prediction. The last layer's row is the model's own output. Decoders are "
    "read at every position, encoders at their `[MASK]` tokens." + SEQ2SEQ_NOTE,
    responses=INFERENCE_ERRORS,
)
async def logit_lens(body: LogitLensRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob):
    inp = inputs.logit_lens(body)

    def job() -> bytes:
        return dumps(inference.logit_lens(inp, body.k, settings.max_new_tokens))

    return await run("logit_lens", cache_key(body), job)


@router.post(
    "/rollout",
    response_model=RolloutResponse,
    summary="Attention rollout through the layers",
    description="For each self-attention site, the rollout after every layer (Abnar & "
    "Zuidema 2020): the heads' mean attention plus the residual connection (½·A + ½·I, rows "
    "renormalised), multiplied through the layers. Row i says how much of each input token "
    "could have reached position i; it assumes heads mix linearly and equally, so it is an "
    "approximation." + SEQ2SEQ_NOTE,
    responses=INFERENCE_ERRORS,
)
async def rollout(body: RolloutRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob):
    inp = inputs.rollout(body)

    def job() -> bytes:
        return dumps(inference.rollout(inp, body.format, settings.max_new_tokens))

    return await run("rollout", cache_key(body), job)


@router.post(
    "/attribution",
    response_model=AttributionResponse,
    summary="Direct logit attribution: which heads wrote the prediction",
    description="The logit of `token` (default: the model's prediction) at `position`, split "
    "exactly into what each component wrote into the residual stream: every head (through "
    "its slice of W_O), the embeddings, the FFNs, the biases and the norm shifts, each read "
    "by the unembedding through the norms frozen at their measured scale. `total` equals "
    "`logit`. With `head`, that head's share is also split over its key positions. Direct "
    "effects only: a head that matters through later layers can score near 0 here — compare "
    "with ablation." + SEQ2SEQ_NOTE,
    responses=INFERENCE_ERRORS,
)
async def attribution(
    body: AttributionRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob
):
    inp = inputs.attribution(body)

    def job() -> bytes:
        return dumps(inference.attribution(inp, body.token, body.head, settings.max_new_tokens))

    return await run("attribution", cache_key(body), job)


@router.post(
    "/heads/scores",
    response_model=HeadScoresResponse,
    summary="What kind of head is each one: scores for every layer and head",
    description="Per site, an [L][H] matrix per score: `previous_token`, `induction`, "
    "`duplicate_token`, `first_token` (the attention sink), `entropy` — read off the "
    "attention patterns (definitions after Olsson et al. 2022 and TransformerLens "
    "`detect_head`) — and `importance`, the drop in the log-probability of the model's own "
    "predictions when that head alone is ablated (all heads' ablations run as one batched "
    "sweep). Weights and importance side by side: a head can look somewhere striking and "
    "matter little. Without `text`, the heads are scored on the induction probe: BOS + a run "
    "of `run_length` random tokens, twice, drawn from `seed`.",
    responses=INFERENCE_ERRORS,
)
async def head_scores(
    body: HeadScoresRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob
):
    inp = inputs.head_scores(body)
    probe = None
    if body.text is None and body.token_ids is None:
        probe = {"seed": body.seed, "run_length": body.run_length}

    def job() -> bytes:
        answer = inference.head_scores(
            inp,
            body.scores,
            body.importance_mode,
            settings.max_new_tokens,
            probe,
            body.importance_method,
        )
        return dumps(answer)

    return await run("head_scores", cache_key(body), job)
