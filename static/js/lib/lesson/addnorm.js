// Step 5: Add & Norm (lib/block/, as /block draws it).

import { renderAddNorm } from "../block/addnorm.js";
import { batchChoices, droppedFrom, renderComparison } from "../block/comparison.js";
import { renderOrder } from "../block/order.js";
import { renderResidual } from "../block/residual.js";
import { blockAnswer, blockOptions, blockUrl, mount } from "./block.js";
import { isTransformer } from "./common.js";

export const addNorm = {
  slug: "add-norm",
  title: "Add & Norm",
  text: [
    "Around each sublayer, two things happen. The residual connection adds the sublayer's output to what it read, so each block only has to learn a correction, and the gradient has a direct path through a deep stack.",
    "A norm then rescales each token on its own. LayerNorm subtracts the token's mean and divides by its standard deviation, so that every token has mean 0 and variance 1 over its features; a learned gain and bias per feature then give the model back the scale it wants. RMSNorm skips the mean and divides by the root mean square only. Where the norm sits differs: the original Transformer and BERT normalise after the addition (post-norm); GPT-2 and LLaMA normalise what each sublayer reads and leave the stream itself alone (pre-norm).",
    "Why not BatchNorm, which helps so much in image networks? It normalises each feature over the other examples of the batch, so the same sentence comes out differently depending on its neighbours, and a small batch or a long sentence gives poor statistics. Tick sentences in and out of the batch below: only BatchNorm's numbers move.",
  ],
  needs: "a transformer",
  models: isTransformer,
  prefer: ["encoder-mini", "seq2seq-en-fr", "decoder-mini"],
  sentence: "i love machine learning",
  full: (ctx) => blockUrl(ctx, { norm: ctx.state.norm, drop: ctx.state.drop }),
  async show(body, ctx) {
    const data = await blockAnswer(ctx);
    if (!data || ctx.signal.aborted) return;
    const { state, save, redraw, model } = ctx;
    blockOptions(body, ctx);
    const top = mount(body, "two-col block-top");
    const order = mount(top);
    const residual = mount(top);
    const norm = mount(body);
    const compare = mount(body);
    const pickNormBox = (n) => {
      save({ norm: n });
      renderOrder(order, data, { norm: n, onNorm: pickNormBox, prefix: "lesson-" });
      renderAddNorm(norm, data, { norm: n, prefix: "lesson-" });
    };
    pickNormBox(state.norm);
    renderResidual(residual, data, { prefix: "lesson-" });
    const choices = batchChoices(model, state.text, state.drop);
    renderComparison(compare, data, {
      choices,
      prefix: "lesson-",
      onBatch: (kept) => {
        save({ drop: droppedFrom(choices, kept) });
        redraw();
      },
    });
  },
};
