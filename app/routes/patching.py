"""Activation patching: POST /api/v1/patch, and /patch/stream with progress."""

import logging
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app import inference
from app.deps import RunJob, SettingsDep, cache_key
from app.inputs import InputsDep
from app.routes.generate import sweep_stream
from app.schemas import INFERENCE_ERRORS, PatchRequest, PatchResponse
from app.serialize import dumps

router = APIRouter(tags=["analysis"])
log = logging.getLogger("attnviz.patch")

DESCRIPTION = """
Which activations carry what makes the model's answer? The `corrupted` input runs with one
activation of the `clean` input written in (denoising, TransformerLens's convention), and the
metric is read at `metric.position`: `logit_diff` = logit(answer) − logit(wrong), or `logprob`
= log p(answer). The effect of a patch is (m(patched) − m(corrupted)) / (m(clean) −
m(corrupted)): 1 restores the clean answer, 0 changes nothing (`raw: true`: m(patched)).

Sites: `resid_pre`, `attn_out`, `cross_out` (seq2seq decoder), `mlp_out` answer [L][T] per
stack (one layer and one position patched at a time); `head_z` (a head's output before W_O)
and `head_pattern` (its attention pattern, the values staying the corrupted run's) answer
[L][H] per attention site (one head at every position); `memory` (seq2seq) answers [1][S], the
encoder's output at one source position as the decoder reads it (the RNN's one site). With
the default `sites`, one the model lacks is null with its reason in `reasons`.

Both inputs must be the same number of tokens (`length_mismatch`). A seq2seq model reads both
sources with the same teacher-forced target (given on either input; omitted: the model's own
translation of `clean`), and `metric.position` is a decoder position: i predicts target token
i + 1. When m(clean) = m(corrupted), every effect is null with the reason.

`method: "attribution"` is an approximation from one forward and one backward pass:
(a_clean − a_corrupted) · ∂m/∂a at the corrupted run (Nanda 2023; Syed et al. 2023).
Exact sweeps run in batches sized to `ATTNVIZ_MEMORY_BUDGET_MB`, each from the patched block
on (a 422 `too_much_memory` when not even one patched run fits).
"""


@router.post(
    "/patch",
    response_model=PatchResponse,
    summary="Activation patching: which activations restore the clean answer",
    description=DESCRIPTION,
    responses=INFERENCE_ERRORS,
)
async def patch(body: PatchRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob):
    query = inputs.patch(body)

    def job() -> bytes:
        return dumps(inference.patching(query, settings.max_new_tokens))

    return await run("patch", cache_key(body), job)


@router.post(
    "/patch/stream",
    summary="The same sweep as Server-Sent Events, with progress",
    description="The body of `POST /patch`. Events: `progress` (`{done, total}`: batches of "
    "patched runs, after the clean and corrupted runs and after each batch), then `result` "
    "(the answer of `POST /patch`; one `POST /patch` or this stream answered before is "
    "sent at once, without progress). Closing the connection stops the sweep at its next "
    "batch. Errors before the stream starts are plain JSON 4xx/503; after, an `error` event.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **INFERENCE_ERRORS},
)
async def patch_stream(body: PatchRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob):
    query = inputs.patch(body)

    def steps() -> Iterator[dict]:
        return inference.patching_steps(query, settings.max_new_tokens)

    return await sweep_stream(run, "patch_stream", "patch", cache_key(body), steps, "patching")
