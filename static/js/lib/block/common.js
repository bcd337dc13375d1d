// What every /block panel shares: labels, the answer's matrices and tokens, token axes, bars.
// Each panel (lib/block/order.js, addnorm.js, comparison.js, ffn.js, residual.js) draws a POST
// /block answer (the server's captured tensors; nothing here recomputes what it measured) into
// a container, and registers its exports under `${prefix}<name>`; /block and the lesson mount
// them.

import { registerExport } from "../export.js";
import { charPx, fontSize, plotlyText } from "../plots.js";
import { Tensor, fromNested } from "../tensor.js";
import { labelTokens, tokenLabel } from "../tokens.js";

export const NORM_LABEL = { layernorm: "LayerNorm", rmsnorm: "RMSNorm", none: "no norm" };
export const ACT_LABEL = { relu: "ReLU", gelu: "GELU", gelu_tanh: "GELU (tanh)", silu: "SiLU", swiglu: "SwiGLU" };

/** A [T][n] tensor of the answer (binary: a Tensor; json: nested lists) as a Mat (no copy). */
export const mat = (x) => (x instanceof Tensor ? x.matrix() : fromNested(x));
/** Column j of a Mat. */
export const column = (m, j) => Array.from({ length: m.rows }, (_, i) => m.data[i * m.cols + j]);

/** The tokens the block's stack reads. */
export const blockTokens = (data) => labelTokens(data.tokens[data.reads] || []);

/** Past this many tokens an axis is labelled with positions, the tokens shown on hover (laying
 * out hundreds of slanted labels takes Plotly seconds). */
const TICKS_MAX = 48;

export function tokenAxis(tokens, extra = {}) {
  if (tokens.length > TICKS_MAX) {
    return { title: { text: "token position" }, tickmode: "auto", nticks: 16, gridcolor: "#eceef2", ...extra };
  }
  const labels = tokens.map((t) => tokenLabel(t) + (t.special ? " ★" : ""));
  const crowded = tokens.length > 10 || labels.some((l) => l.length > 6);
  return {
    tickmode: "array",
    tickvals: tokens.map((_, i) => i),
    ticktext: labels.map(plotlyText),
    tickangle: crowded ? -45 : 0,
    tickfont: { family: "ui-monospace, monospace", size: fontSize() },
    ...extra,
  };
}

/** The margins of a chart over the tokens: a slanted label reaches left of its bar and down by
 * about 0.7 of its length, so the first label and the longest one are not cut off. */
export function tokenMargin(tokens, extra = {}) {
  const labels = tokens.length > TICKS_MAX ? [] : tokens.map((t) => tokenLabel(t) + (t.special ? " ★" : ""));
  const slant = (l) => (l ? 0.72 * charPx() * Math.min(l.length, 24) : 0);
  return {
    l: Math.max(50, slant(labels[0]) + 10),
    r: 10,
    t: 10,
    b: Math.max(70, Math.max(0, ...labels.map(slant)) + 20),
    ...extra,
  };
}

/** Bars over the tokens (one per token, `tokens` named on hover). */
export const bars = (name, y, color, tokens, extra = {}) => ({
  type: "bar",
  name,
  x: y.map((_, i) => i),
  y,
  marker: { color },
  customdata: tokens.map((t) => plotlyText(tokenLabel(t))),
  hovertemplate: `%{customdata} (%{x})<br>${plotlyText(name)}: %{y:.4f}<extra></extra>`,
  ...extra,
});

export function exportFigure(prefix, id, plot, filename, data) {
  registerExport(prefix + id, { filename, plot: () => plot, data });
}
