// The FFN of a block: its hidden units before and after the non-linearity (lib/block/bands.js:
// how strongly they fire per token; lib/block/units.js: a token's strongest units, one unit
// across the sentence) and what the FFN adds to the stream.

import { clear, el } from "../dom.js";
import { figure, panel } from "../panel.js";
import { featureHeatmap } from "../heatmap.js";
import { toNested } from "../tensor.js";
import { ACT_LABEL, blockTokens, exportFigure, mat } from "./common.js";
import { renderBands } from "./bands.js";
import { renderTopUnits, renderUnit, topUnits } from "./units.js";

/**
 * The FFN of the block: its hidden units before and after the non-linearity (SwiGLU: the gate,
 * the up projection and their product), how strongly they fire per token (onToken(i) on a
 * click), a token's top units (onUnit(u) when one is picked), one unit across the tokens, what
 * the FFN adds.
 */
export function renderFFN(
  container,
  data,
  { token = -1, unit = -1, onUnit = () => {}, onToken = () => {}, prefix = "", level = 2 } = {},
) {
  clear(container);
  const f = data.ffn;
  const tokens = blockTokens(data);
  if (!f) {
    const { root, body } = panel({ title: "The feed-forward network", level });
    body.append(el("p", { class: "empty", text: "This model is attention only: its blocks have no FFN." }));
    container.append(root);
    return null;
  }
  const act = ACT_LABEL[f.activation] || f.activation;
  const t = token >= 0 && token < tokens.length ? token : tokens.length - 1;
  const post = mat(f.post);
  const pre = mat(f.pre);
  const swiglu = f.activation === "swiglu";
  const units = panel({
    title: `The FFN's ${f.d_ff} hidden units, per token`,
    subtitle: swiglu
      ? `SwiGLU: W₂ · (silu(W₁x) ⊙ W₃x). The gate silu(W₁x) decides how much of the up projection W₃x each unit lets through; W₂ projects the ${f.d_ff} products back to ${data.d_model}. Each token goes through on its own.`
      : `W₂ · ${act}(W₁x): expand each token from ${data.d_model} to ${f.d_ff} features, apply ${act}, project back to ${data.d_model}. Each token goes through on its own.`,
    exportId: `${prefix}ffn-units`,
    level,
  });
  container.append(units.root);
  const maps = swiglu
    ? [
        ["W₁x (ffn.hook_pre)", pre, "W₁x"],
        ["gate silu(W₁x) (ffn.hook_gate)", mat(f.gate), "gate"],
        ["W₃x (ffn.hook_up)", mat(f.up), "W₃x"],
        ["gate ⊙ W₃x (ffn.hook_post)", post, "product"],
      ]
    : [
        [`W₁x, before ${act} (ffn.hook_pre)`, pre, "W₁x"],
        [`after ${act} (ffn.hook_post)`, post, act],
      ];
  const figs = maps.map(([title, m, value]) => ({ ...figure(title), m, value }));
  units.body.append(
    el(
      "div",
      { class: swiglu ? "grid-2" : "matrices" },
      figs.map((x) => x.box),
    ),
  );
  figs.forEach((x, i) =>
    featureHeatmap(x.plot, x.m, tokens, { value: x.value, xLabel: "unit", ticks: swiglu ? i % 2 === 0 : i === 0 }),
  );
  exportFigure(
    prefix,
    "ffn-units",
    figs[figs.length - 1].plot,
    () => `attnviz-${data.model}-${data.stack}-block${data.layer}-ffn`,
    () => ({
      model: data.model,
      tokens,
      activation: f.activation,
      ...Object.fromEntries(figs.map((x) => [x.value, toNested(x.m)])),
    }),
  );

  const row = el("div", { class: "split" });
  container.append(row);
  renderBands(row, data, post, tokens, t, { onToken, prefix, level });
  const top = topUnits(post, t);
  const u = unit >= 0 && unit < f.d_ff ? unit : top.length ? top[0].u : 0;
  renderTopUnits(row, data, tokens, t, top, u, { onUnit, prefix, level });
  renderUnit(container, data, pre, post, tokens, u, { prefix, level });

  const out = panel({
    title: "What the FFN adds to the stream",
    subtitle: `W₂ · (…) for each token (hook_ffn_out, ${tokens.length} × ${data.d_model}): added to the stream at the FFN's ⊕.`,
    exportId: `${prefix}ffn-out`,
    level,
  });
  const outFig = figure("");
  out.body.append(outFig.box);
  container.append(out.root);
  const outM = mat(f.out);
  featureHeatmap(outFig.plot, outM, tokens, { value: "FFN output" });
  exportFigure(
    prefix,
    "ffn-out",
    outFig.plot,
    () => `attnviz-${data.model}-ffn-out`,
    () => ({ tokens, out: toNested(outM) }),
  );
  return { token: t, unit: u };
}
