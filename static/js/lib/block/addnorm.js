// Add & Norm of one norm, per token: the stream it reads, the standardised vectors, its
// output; each token's statistics before and after; the learnt gain and bias.

import { clear, el, fmt } from "../dom.js";
import { OKABE_ITO } from "../palette.js";
import { figure, panel } from "../panel.js";
import { featureHeatmap } from "../heatmap.js";
import { LEGEND_ABOVE, react } from "../plots.js";
import { toNested } from "../tensor.js";
import { bars, blockTokens, exportFigure, mat, NORM_LABEL, tokenAxis, tokenMargin } from "./common.js";

const NORM_ROLE = {
  embed_norm: "the stack's embedding norm, before block 0",
  attn_norm: "around self-attention",
  cross_norm: "around cross-attention",
  ffn_norm: "around the FFN",
  final_norm: "the stack's final norm, after the last block",
};

/** The norm to show: `wanted` when the block has it, else its first. */
export function pickNorm(data, wanted) {
  const names = Object.keys(data.normalization || {});
  return names.includes(wanted) ? wanted : names.find((n) => n !== "embed_norm") || names[0] || "";
}

function statsChart(div, tokens, s, kind) {
  const traces =
    kind === "layernorm"
      ? [bars("mean", s.mean, OKABE_ITO[0], tokens), bars("standard deviation", s.std, OKABE_ITO[1], tokens)]
      : [bars("RMS", s.rms, OKABE_ITO[2], tokens), bars("mean (not removed)", s.mean, OKABE_ITO[0], tokens)];
  return react(div, traces, {
    height: 280,
    barmode: "group",
    margin: tokenMargin(tokens),
    xaxis: tokenAxis(tokens),
    yaxis: { gridcolor: "#eceef2", zeroline: true, zerolinecolor: "#9aa0aa" },
    legend: LEGEND_ABOVE,
  });
}

/** Add & Norm of one norm: the stream it reads, the normalised vectors, its output; each
 * token's statistics before and after; the learnt gain and bias. */
export function renderAddNorm(container, data, { norm, prefix = "", level = 2 } = {}) {
  clear(container);
  const name = pickNorm(data, norm);
  const tokens = blockTokens(data);
  if (!name) {
    const { root, body } = panel({ title: "Add & Norm", level });
    body.append(
      el("p", {
        class: "empty",
        text: "This model has no norms: each sublayer's output is added to the stream as it is, so the stream's size is free to grow (see the residual stream below).",
      }),
    );
    container.append(root);
    return null;
  }
  const n = data.normalization[name];
  const ln = n.kind === "layernorm";
  const formula = ln
    ? "y = γ ⊙ (x − mean(x)) / √(var(x) + ε) + β, over each token's own features"
    : "y = γ ⊙ x / √(mean(x²) + ε): no centring and no β";
  const where = `${NORM_LABEL[n.kind]} ${name} (${NORM_ROLE[name] || ""})`;
  const maps = panel({
    title: `Add & Norm, per token: ${where}`,
    subtitle: `${formula}. Left: the stream it reads; middle: each token standardised (${ln ? "mean 0, variance 1" : "RMS 1"}); right: after the learnt gain${ln ? " and bias" : ""}, what comes next reads.`,
    exportId: `${prefix}norm-maps`,
    level,
  });
  container.append(maps.root);
  const parts = [
    ["the stream it reads (hook_in)", n.stream, "stream"],
    [`standardised (hook_normalized)`, n.normalized, "normalised"],
    [`γ ⊙ … ${ln ? "+ β" : ""} (hook_out)`, n.output, "output"],
  ].map(([title, x, value]) => ({ ...figure(title), m: mat(x), value }));
  maps.body.append(
    el(
      "div",
      { class: "matrices" },
      parts.map((p) => p.box),
    ),
  );
  parts.forEach((p, i) => featureHeatmap(p.plot, p.m, tokens, { value: p.value, ticks: i === 0, xLabel: "feature" }));
  exportFigure(
    prefix,
    "norm-maps",
    parts[1].plot,
    () => `attnviz-${data.model}-${data.stack}-block${data.layer}-${name}`,
    () => ({
      model: data.model,
      stack: data.stack,
      layer: data.layer,
      norm: name,
      hooks: n.hooks,
      tokens,
      stream: toNested(parts[0].m),
      normalized: toNested(parts[1].m),
      output: toNested(parts[2].m),
    }),
  );

  const row = el("div", { class: "split" });
  container.append(row);
  const spread = ln ? n.stats.normalized.std : n.stats.normalized.rms;
  const eps = n.eps.toExponential();
  const range = `${fmt(Math.min(...spread), 4)} to ${fmt(Math.max(...spread), 4)}`;
  const stats = panel({
    title: "Each token's statistics, before and after",
    subtitle:
      (ln
        ? `Before: every token has its own mean and standard deviation σ. After: each one is moved to mean 0 and divided by √(σ² + ε), ε = ${eps}, using only its own features; its standard deviation becomes σ / √(σ² + ε), just under 1 (here ${range}).`
        : `RMSNorm divides each token by √(mean(x²) + ε), ε = ${eps}: its RMS becomes RMS / √(RMS² + ε), just under 1 (here ${range}); the mean is not removed.`) +
      " ε keeps the division finite for a token whose features are all equal; it only shows where the spread is as small as √ε.",
    exportId: `${prefix}norm-stats`,
    level,
  });
  const before = figure("before the norm");
  const after = figure(ln ? "standardised: (x − mean) / √(σ² + ε)" : "standardised: x / √(mean(x²) + ε)");
  stats.body.append(el("div", { class: "matrices" }, before.box, after.box));
  row.append(stats.root);
  statsChart(before.plot, tokens, n.stats.stream, n.kind);
  statsChart(after.plot, tokens, n.stats.normalized, n.kind);
  exportFigure(
    prefix,
    "norm-stats",
    before.plot,
    () => `attnviz-${data.model}-${name}-stats`,
    () => ({ norm: name, tokens, stats: n.stats }),
  );

  const gain = panel({
    title: `The learnt gain γ${ln ? " and bias β" : ""}`,
    subtitle: `One number per feature, the same for every token: the model's way to give features back their own scale${ln ? " and offset" : ""} after the standardisation.`,
    exportId: `${prefix}norm-gain`,
    level,
  });
  const g = figure("");
  gain.body.append(g.box);
  row.append(gain.root);
  const x = n.gain.map((_, i) => i);
  const traces = [
    { type: "scatter", mode: "lines", name: "γ (gain)", x, y: n.gain, line: { color: OKABE_ITO[0], width: 1.5 } },
  ];
  if (n.bias)
    traces.push({
      type: "scatter",
      mode: "lines",
      name: "β (bias)",
      x,
      y: n.bias,
      line: { color: OKABE_ITO[5], width: 1.5 },
    });
  react(g.plot, traces, {
    height: 280,
    margin: { l: 50, r: 10, t: 10, b: 50 },
    xaxis: { title: { text: "feature" }, gridcolor: "#eceef2" },
    yaxis: { gridcolor: "#eceef2", zerolinecolor: "#9aa0aa" },
    legend: LEGEND_ABOVE,
  });
  exportFigure(
    prefix,
    "norm-gain",
    g.plot,
    () => `attnviz-${data.model}-${name}-gain`,
    () => ({ norm: name, gain: n.gain, bias: n.bias ?? null }),
  );
  return name;
}
