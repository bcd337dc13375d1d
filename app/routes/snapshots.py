"""A training run's snapshots: GET /api/v1/models/{id}/snapshots and
/api/v1/models/{id}/snapshots/{step}/attention (an induction head forming, issue 22)."""

from fastapi import APIRouter, Path, Query

from app import inference
from app.deps import RunJob
from app.inputs import InputsDep
from app.schemas import (
    INFERENCE_ERRORS,
    SnapshotAttentionResponse,
    SnapshotsResponse,
)
from app.serialize import dumps

router = APIRouter(tags=["snapshots"])

RULES_TEXT = (
    "\n\n**Rules the schema cannot state** (`code` in brackets): a model saved without "
    "snapshots is a 404 [`no_snapshots`]; the probe (BOS + the run twice) within the model's "
    "`max_len` [`too_many_tokens`]"
)
MODEL_ID = Path(description="A model saved with snapshots", examples=["induction-2l"])
SEED = Query(0, ge=0, le=2**53 - 1, description="The probe's random run (as /heads/scores).")
RUN_LENGTH = Query(
    24, ge=2, le=1024, description="The probe: BOS + a run of this many random tokens, twice."
)


@router.get(
    "/models/{model_id}/snapshots",
    response_model=SnapshotsResponse,
    summary="An induction head forming: the training run's snapshots",
    description="A model trained with `attnviz train <id> --snapshots N` keeps N snapshots of "
    "its run (denser where the loss moves). This answers the run's training loss at every "
    "step, and for each snapshot every head's induction and previous-token score measured "
    "now on the probe of POST /heads/scores (`seed`, `run_length`) from that snapshot's "
    "weights; `formed` is what was measured when the snapshots were written (the card says "
    "it too): the step where the induction heads formed, and where the loss fell fastest."
    + RULES_TEXT
    + ".",
    responses=INFERENCE_ERRORS,
)
async def snapshots(
    inputs: InputsDep,
    run: RunJob,
    model_id: str = MODEL_ID,
    seed: int = SEED,
    run_length: int = RUN_LENGTH,
):
    inp = inputs.snapshots(model_id, seed, run_length)
    job = lambda: dumps(inference.snapshots(inp, seed, run_length))  # noqa: E731
    return await run("snapshots", ("snapshots", model_id, seed, run_length), job)


@router.get(
    "/models/{model_id}/snapshots/{step}/attention",
    response_model=SnapshotAttentionResponse,
    summary="One head's attention on the probe at one snapshot",
    description="The attention of `layer`, `head` on the induction probe (`seed`, "
    "`run_length`, as POST /heads/scores builds it) in the model as it was after `step` "
    "training steps, with that head's induction and previous-token scores there."
    + RULES_TEXT
    + "; `step` one of the snapshots' steps, `layer` and `head` within the model "
    "[`out_of_range`].",
    responses=INFERENCE_ERRORS,
)
async def snapshot_attention(
    inputs: InputsDep,
    run: RunJob,
    model_id: str = MODEL_ID,
    step: int = Path(ge=0, le=2**31 - 1, description="A snapshot's step", examples=[0]),
    layer: int = Query(ge=0, le=2**31 - 1, description="A layer index"),
    head: int = Query(ge=0, le=2**31 - 1, description="A head index"),
    seed: int = SEED,
    run_length: int = RUN_LENGTH,
):
    inp = inputs.snapshots(model_id, seed, run_length, step, layer, head)
    key = ("snapshot_attention", model_id, step, layer, head, seed, run_length)
    job = lambda: dumps(inference.snapshot_attention(inp, step, seed, run_length))  # noqa: E731
    return await run("snapshot_attention", key, job)
