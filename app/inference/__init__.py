"""What the routes ask the models: plain functions run on an engine worker thread.

Each takes a resolved ``ModelInput`` (app/inputs.py) plus the request's options, runs the
core through ``models.capture`` (only the hook points the request needs) and returns the
response as a dict for ``serialize.dumps``. Nothing here knows about HTTP.

* ``common``: one forward pass over an input; the seq2seq target (given or greedy)
* ``weights``: /attention — plan, one forward pass, one extractor per ``include``
* ``decoding``: /generate and its stream, step by step
* ``encoder_tasks``: /fill-mask, /classify
* ``positions``: /models/{id}/positions, /rope/relative
* ``analyses``: /logit-lens, /rollout, /attribution
* ``block``: /block — one block's Add & Norm, FFN and stream; the normalisation comparison
* ``recurrence``: /rnn/unroll (an RNN's states, gates and gradient norms)
* ``snapshots``: /models/{id}/snapshots — a training run's snapshots scored on the probe
* ``patching``: /patch (activation patching of a clean / corrupted pair)
"""

from app.inference.analyses import (
    attribution,
    head_scores,
    head_scores_steps,
    logit_lens,
    rollout,
)
from app.inference.block import block
from app.inference.decoding import (
    baseline,
    generation,
    generation_output,
    prompt_info,
    steps_of,
)
from app.inference.encoder_tasks import classify, fill_mask
from app.inference.patching import patching, patching_steps
from app.inference.positions import positions, rope_relative
from app.inference.recurrence import unroll
from app.inference.snapshots import snapshot_attention, snapshots
from app.inference.weights import attention

__all__ = [
    "attention",
    "attribution",
    "baseline",
    "block",
    "classify",
    "fill_mask",
    "generation",
    "generation_output",
    "head_scores",
    "head_scores_steps",
    "logit_lens",
    "patching",
    "patching_steps",
    "positions",
    "prompt_info",
    "rollout",
    "rope_relative",
    "snapshot_attention",
    "snapshots",
    "steps_of",
    "unroll",
]
