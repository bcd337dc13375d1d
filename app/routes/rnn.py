"""Before transformers: POST /api/v1/rnn/unroll, an RNN translator's recurrence step by step."""

from fastapi import APIRouter

from app import inference
from app.config import Settings
from app.inputs import Inputs
from app.routes.jobs import engine_post
from app.schemas import UnrollRequest, UnrollResponse

router = APIRouter(tags=["rnn"])

DESCRIPTION = """
The recurrence of an RNN translator (`architecture: rnn`), unrolled over the sentence: for
every step of the encoder (h_t, one per source token) and of the decoder (s_i, one per input
token), what the cell read and wrote, captured through its hook points:

* `wx` = W_x · input + b_x and `wh` = W_h h_{t−1} + b_h, cut in the cell's `chunks`;
* `h`, the new state, and the `gates` (LSTM: input, forget, candidate, output, cell state;
  GRU: reset, update, candidate; the plain tanh RNN has none): for the tanh cell
  h_t = tanh(wx + wh);
* the decoder's initial state `s0`, each step's context `c_i`, and the additive attention's
  `alignment` [T][S].

`gradients`: ‖∂loss/∂h_t‖ for every encoder step, by autograd, along every path (`all`) and
with the attention's read of the states cut (`recurrence`: backpropagation through time
alone). `compare` adds another RNN's gradient norms on the same token ids (e.g. the plain
tanh companion beside the LSTM).

`text` is the source (`</s>` added); `target` is teacher-forced (`<s>` prepended); without a
target the model's own greedy translation is used and returned in `tokens.target`. A model
that is not an RNN is a 422 naming `model`.
"""


@engine_post(
    router,
    "/rnn/unroll",
    UnrollResponse,
    job="rnn_unroll",
    response_model_exclude_none=True,
    summary="An RNN's states, gates and gradient norms, step by step",
    description=DESCRIPTION,
)
def unroll(inputs: Inputs, body: UnrollRequest, settings: Settings):
    inp, compare = inputs.unroll(body)
    return lambda: inference.unroll(inp, compare, body.format, settings.max_new_tokens)
