// Step 11: before transformers, the RNN's vanishing gradients (lib/rnnpanels.js, as /rnn draws it).

import * as api from "../api.js";
import { registerExport } from "../export.js";
import { figure, panel } from "../panel.js";
import { RNN_GRADIENT_PRESET } from "../presets.js";
import { drawGradients } from "../rnnpanels.js";
import { optionsRow, viewUrl } from "./common.js";

export const rnn = {
  slug: "rnn",
  title: "Before transformers: the RNN",
  text: [
    "Before transformers, a recurrent network read a sentence one token at a time and carried a single hidden vector along, mixing each new token into it. Step t cannot start before step t − 1 is finished, and whatever the decoder needs about the first words has to survive the whole chain of updates.",
    "Training pays for that chain. The gradient that reaches an early word is a product of one factor per step, and such products tend to shrink (vanish) or blow up. Below, measured on a trained RNN translator: how much gradient reaches each English word along the recurrence, for an LSTM and for a plain tanh RNN, whose curve falls much faster. A transformer links every pair of words in a single step, and runs all the steps at once.",
  ],
  needs: "a recurrent network",
  models: (m) => m.architecture === "rnn",
  prefer: ["rnn-en-fr", "rnn-tanh-en-fr"],
  sentence: RNN_GRADIENT_PRESET.text,
  missing: "No recurrent model is loaded on this server: the shipped rnn-en-fr and rnn-tanh-en-fr show this step.",
  full: (ctx) => viewUrl("/rnn", ctx, { paths: ctx.state.paths === "recurrence" ? "" : ctx.state.paths }),
  async show(body, ctx) {
    const { model, models, state, signal, save } = ctx;
    const companion = models.find(
      (m) => m.architecture === "rnn" && m.id !== model.id && (m.cell === "tanh") !== (model.cell === "tanh"),
    );
    const request = { model: model.id, text: state.text };
    if (state.target) request.target = state.target;
    if (companion) request.compare = companion.id;
    const data = await api.unroll(request, { signal });
    if (!data || signal.aborted) return;
    const { root, body: inner } = panel({
      title: "Vanishing gradients, measured",
      subtitle:
        "‖∂loss/∂hₜ‖ for every English token t, by autograd, on a log scale: how much of the training signal reaches each state.",
      exportId: "lesson-gradients",
    });
    const paths = optionsRow([
      {
        label: "Paths",
        name: "paths",
        options: [
          { value: "recurrence", label: "along the recurrence only" },
          { value: "all", label: "every path (with the attention)" },
        ],
        value: state.paths,
        onChange: (v) => {
          save({ paths: v });
          note.textContent = drawGradients(fig.plot, data, v, { height: 480 });
        },
      },
    ]);
    const fig = figure("");
    const note = fig.note;
    inner.append(paths, fig.box, note);
    body.append(root);
    note.textContent = drawGradients(fig.plot, data, state.paths, { height: 480 });
    registerExport("lesson-gradients", {
      filename: () => `attnviz-${model.id}-rnn-gradients`,
      plot: () => fig.plot,
      data: () => ({
        model: model.id,
        text: state.text,
        tokens: data.tokens,
        gradients: data.gradients,
        compare: data.compare ?? null,
      }),
    });
  },
};
