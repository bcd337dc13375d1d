// The FFN of a block: its hidden units before and after the non-linearity, how many of them
// are silent per token, a token's strongest units, one unit across the sentence, and what the
// FFN adds to the stream.

import { clear, el, fmt } from "../dom.js";
import { OKABE_ITO } from "../palette.js";
import { figure, panel } from "../panel.js";
import { featureHeatmap } from "../heatmap.js";
import { LEGEND_ABOVE, react } from "../plots.js";
import { toNested } from "../tensor.js";
import { tokenLabel } from "../tokens.js";
import { ACT_LABEL, bars, blockTokens, column, exportFigure, mat, tokenAxis, tokenMargin } from "./common.js";

/** The bands of |activation| the units of a token are counted in: [name, holds(|a|)]. ReLU's
 * first band is its exact zeros; a smooth activation is never exactly 0, so its first band is
 * the units that pass almost nothing. */
const BANDS = {
  relu: [
    ["exactly 0 (shut)", (a) => a === 0],
    ["0 < a < 0.1", (a) => a < 0.1],
    ["0.1 ≤ a < 1", (a) => a < 1],
    ["a ≥ 1", () => true],
  ],
  smooth: [
    ["|a| < 0.01", (a) => a < 0.01],
    ["0.01 ≤ |a| < 0.1", (a) => a < 0.1],
    ["0.1 ≤ |a| < 1", (a) => a < 1],
    ["|a| ≥ 1", () => true],
  ],
};
const BAND_COLORS = ["#c4cad5", OKABE_ITO[2], OKABE_ITO[0], OKABE_ITO[5]];
const UNIT_COLORS = [OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[3], OKABE_ITO[1]];

/** The share of each token's units (rows of `post`, the activations) in each band: [{name,
 * share (T)}], bottom band first. */
export function activationBands(post, relu) {
  const bands = relu ? BANDS.relu : BANDS.smooth;
  const share = bands.map(() => new Array(post.rows).fill(0));
  for (let i = 0; i < post.rows; i++) {
    for (let j = 0; j < post.cols; j++) {
      const a = Math.abs(post.data[i * post.cols + j]);
      share[bands.findIndex(([, holds]) => holds(a))][i] += 1 / post.cols;
    }
  }
  return bands.map(([name], b) => ({ name, share: share[b] }));
}

/** Unit u across the tokens, each part named by what it computes: [[name, values (T)]]. */
function unitParts(f, pre, post, u) {
  if (f.activation !== "swiglu") {
    const act = ACT_LABEL[f.activation] || f.activation;
    return [
      ["W₁x", column(pre, u)],
      [`${act}(W₁x)`, column(post, u)],
    ];
  }
  return [
    ["W₁x", column(pre, u)],
    ["silu(W₁x)", column(mat(f.gate), u)],
    ["W₃x", column(mat(f.up), u)],
    ["silu(W₁x)·W₃x", column(post, u)],
  ];
}

/** The k units of a token with the largest |activation| after the non-linearity. */
export function topUnits(post, token, k = 12) {
  const row = token >= 0 && token < post.rows ? post.data.subarray(token * post.cols, (token + 1) * post.cols) : [];
  return Array.from(row, (v, u) => ({ u, v }))
    .sort((a, b) => Math.abs(b.v) - Math.abs(a.v))
    .slice(0, k);
}

/**
 * The FFN of the block: its hidden units before and after the non-linearity (SwiGLU: the gate,
 * the up projection and their product), the share of units shut per token, a token's top
 * units (onUnit(u) when one is picked), one unit across the tokens, what the FFN adds.
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
  const relu = f.activation === "relu";
  const shut = panel({
    title: "How strongly the units fire, per token",
    subtitle: relu
      ? "The share of the hidden units in each band of activation a. ReLU sets every unit whose W₁x was negative to exactly 0: the bottom band is the units it shut."
      : `${swiglu ? "SwiGLU's gate silu" : act} is a soft switch: no unit is ever exactly 0, and a negative input is damped rather than shut. So the bars show how the ${f.d_ff} |activations| spread over decades; the bottom band is the units that pass almost nothing (|a| < 0.01).`,
    exportId: `${prefix}ffn-bands`,
    level,
  });
  const zf = figure("");
  shut.body.append(zf.box);
  row.append(shut.root);
  const bands = activationBands(post, relu);
  react(
    zf.plot,
    bands.map((band, b) =>
      bars(band.name, band.share, BAND_COLORS[b], tokens, {
        // the token whose units are listed beside it, outlined
        marker: {
          color: BAND_COLORS[b],
          line: { color: "#1b2130", width: tokens.map((_, i) => (i === t ? 2 : 0)) },
        },
        hovertemplate: `%{customdata} (%{x})<br>${band.name}: %{y:.1%}<extra></extra>`,
      }),
    ),
    {
      height: 320,
      barmode: "stack",
      margin: tokenMargin(tokens),
      xaxis: tokenAxis(tokens),
      yaxis: { range: [0, 1], gridcolor: "#eceef2", tickformat: ".0%", title: { text: "share of units" } },
      legend: { ...LEGEND_ABOVE, traceorder: "normal" },
    },
  );
  zf.plot.on("plotly_click", (ev) => ev.points && ev.points[0] && onToken(ev.points[0].x));
  exportFigure(
    prefix,
    "ffn-bands",
    zf.plot,
    () => `attnviz-${data.model}-ffn-bands`,
    () => ({ tokens, activation: f.activation, bands }),
  );

  const top = topUnits(post, t);
  const u = unit >= 0 && unit < f.d_ff ? unit : top.length ? top[0].u : 0;
  const tp = panel({
    title: `The strongest units for “${tokenLabel(tokens[t])}”`,
    subtitle:
      "Its units with the largest activation after the non-linearity; pick one (click a bar or a button) to follow it across the sentence.",
    exportId: `${prefix}ffn-top`,
    level,
  });
  const tf = figure("");
  const chips = el(
    "div",
    { class: "unit-chips", role: "group", "aria-label": "Pick a unit" },
    top.map(({ u: id }) => {
      const b = el("button", { type: "button", class: "preset", "aria-pressed": String(id === u), text: `unit ${id}` });
      b.addEventListener("click", () => onUnit(id));
      return b;
    }),
  );
  tp.body.append(tf.box, chips);
  row.append(tp.root);
  const labels = top.map(({ u: id }) => `unit ${id}`);
  react(
    tf.plot,
    [
      {
        type: "bar",
        orientation: "h",
        x: top.map((x) => x.v),
        y: labels,
        customdata: top.map((x) => x.u),
        marker: { color: top.map((x) => (x.u === u ? OKABE_ITO[1] : x.v >= 0 ? OKABE_ITO[0] : OKABE_ITO[5])) },
        hovertemplate: "unit %{customdata}: %{x:.4f}<extra></extra>",
      },
    ],
    {
      height: 320,
      margin: { l: 80, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "activation" }, gridcolor: "#eceef2", zerolinecolor: "#9aa0aa" },
      yaxis: { autorange: "reversed", type: "category" },
    },
  );
  tf.plot.on("plotly_click", (ev) => ev.points && ev.points[0] && onUnit(ev.points[0].customdata));
  exportFigure(
    prefix,
    "ffn-top",
    tf.plot,
    () => `attnviz-${data.model}-ffn-top-units-${t}`,
    () => ({ token: tokens[t], units: top }),
  );

  const one = panel({
    title: `Unit ${u} across the sentence`,
    subtitle: `${swiglu ? "Its gate input W₁x, the gate silu(W₁x), the up projection W₃x and their product silu(W₁x)·W₃x, the unit's activation (a negative W₃x flips its sign)" : `Its input W₁x and its activation ${act}(W₁x)`} at every token. Each unit of activation moves the stream by ‖W₂[:, ${u}]‖ = ${fmt(f.unit_write[u], 3)} along its own direction.`,
    exportId: `${prefix}ffn-unit`,
    level,
  });
  const of = figure("");
  one.body.append(of.box);
  container.append(one.root);
  react(
    of.plot,
    unitParts(f, pre, post, u).map(([name, y], i) => bars(name, y, UNIT_COLORS[i], tokens)),
    {
      height: 300,
      barmode: "group",
      margin: tokenMargin(tokens),
      xaxis: tokenAxis(tokens),
      yaxis: { gridcolor: "#eceef2", zerolinecolor: "#9aa0aa" },
      legend: LEGEND_ABOVE,
    },
  );
  exportFigure(
    prefix,
    "ffn-unit",
    of.plot,
    () => `attnviz-${data.model}-ffn-unit-${u}`,
    () => ({
      unit: u,
      tokens,
      ...Object.fromEntries(unitParts(f, pre, post, u)),
      write: f.unit_write[u],
    }),
  );

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
