// Inside one block, as panels a view or a lesson step mounts into a container: the block in
// the order it ran, Add & Norm per token, LayerNorm / RMSNorm / BatchNorm side by side, the
// FFN's hidden units, and the residual stream across the stack. Each draws a POST /block
// answer (the server's captured tensors; nothing here recomputes what it measured) and
// registers its exports under `${prefix}<name>`.

import { clear, el, fmt, svg } from "./dom.js";
import { registerExport } from "./export.js";
import { OKABE_ITO } from "./palette.js";
import { figure, panel } from "./panel.js";
import { featureHeatmap } from "./heatmap.js";
import { fontSize, matrixHeatmap, plotlyText, react } from "./plots.js";
import { presetsFor } from "./presets.js";
import { Tensor, fromNested, maxAbs, toNested } from "./tensor.js";
import { labelTokens, tokenLabel } from "./tokens.js";

export const NORM_LABEL = { layernorm: "LayerNorm", rmsnorm: "RMSNorm", none: "no norm" };
const ACT_LABEL = { relu: "ReLU", gelu: "GELU", gelu_tanh: "GELU (tanh)", silu: "SiLU", swiglu: "SwiGLU" };
const NORM_ROLE = {
  embed_norm: "the stack's embedding norm, before block 0",
  attn_norm: "around self-attention",
  cross_norm: "around cross-attention",
  ffn_norm: "around the FFN",
  final_norm: "the stack's final norm, after the last block",
};
const SUBLAYER_NORM = { attn: "attn_norm", cross_attn: "cross_norm", ffn: "ffn_norm" };
/** Up to this many tokens the residual stream is drawn as one line per token; past it, a heatmap. */
const LINES_MAX = 16;
const POINT_LABEL = { embed: "embed", attn: "attn", cross_attn: "cross", ffn: "FFN" };

/** A [T][n] tensor of the answer (binary: a Tensor; json: nested lists) as a Mat (no copy). */
const mat = (x) => (x instanceof Tensor ? x.matrix() : fromNested(x));
/** Column j of a Mat. */
const column = (m, j) => Array.from({ length: m.rows }, (_, i) => m.data[i * m.cols + j]);

/** The tokens the block's stack reads. */
export const blockTokens = (data) => labelTokens(data.tokens[data.reads] || []);

/** The server takes at most this many other sentences for the comparison's batch. */
export const MAX_BATCH = 8;

/**
 * The lecture sentences the comparison's batch may hold: the model's presets other than
 * `text`, each {text, index (in presetsFor), checked (not in `drop`)}.
 */
export function batchChoices(model, text, drop = []) {
  return presetsFor(model)
    .map((p, index) => ({ text: p.text, index }))
    .filter((p) => p.text !== text)
    .filter((p, i, all) => all.findIndex((q) => q.text === p.text) === i)
    .slice(0, MAX_BATCH)
    .map((p) => ({ ...p, checked: !drop.includes(p.index) }));
}

/** The preset indices a batch of `kept` sentences leaves out. */
export const droppedFrom = (choices, kept) => choices.filter((c) => !kept.includes(c.text)).map((c) => c.index);

/** The norm to show: `wanted` when the block has it, else its first. */
export function pickNorm(data, wanted) {
  const names = Object.keys(data.normalization || {});
  return names.includes(wanted) ? wanted : names.find((n) => n !== "embed_norm") || names[0] || "";
}

/** Past this many tokens an axis is labelled with positions, the tokens shown on hover (laying
 * out hundreds of slanted labels takes Plotly seconds). */
const TICKS_MAX = 48;

function tokenAxis(tokens, extra = {}) {
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

/** Bars over the tokens (one per token, `tokens` named on hover). */
const bars = (name, y, color, tokens, extra = {}) => ({
  type: "bar",
  name,
  x: y.map((_, i) => i),
  y,
  marker: { color },
  customdata: tokens.map((t) => plotlyText(tokenLabel(t))),
  hovertemplate: `%{customdata} (%{x})<br>${plotlyText(name)}: %{y:.4f}<extra></extra>`,
  ...extra,
});

function exportFigure(prefix, id, plot, filename, data) {
  registerExport(prefix + id, { filename, plot: () => plot, data });
}

// ---------------------------------------------------------------------------------------
// The block in the order it ran

const BOX_W = 250;
const BOX_H = 36;
const GAP = 20;

function stepLabel(step, data) {
  const normName = NORM_LABEL[data.norm.type] || data.norm.type;
  if (step.step === "norm") return [`${normName}`, step.module];
  if (step.step === "attention") return [data.stack === "decoder" ? "Masked self-attention" : "Self-attention", "attn"];
  if (step.step === "cross_attention") return ["Cross-attention", "queries here, keys and values: the encoder"];
  if (step.step === "ffn") {
    const f = data.ffn;
    return [
      `FFN · ${ACT_LABEL[f.activation] || f.activation}`,
      `${data.d_model} → ${f.d_ff} → ${data.d_model}, per token`,
    ];
  }
  return ["+", ""];
}

const BOX_CLASS = { norm: "box-norm", attention: "box-attn", cross_attention: "box-cross", ffn: "box-ffn" };

/**
 * The block's steps top to bottom with the residual path beside them: the sublayer's branch
 * leaves the stream before its own norm (pre-norm) or before the sublayer (post-norm) and
 * joins again at its ⊕. Norm boxes are buttons: onNorm(name).
 */
export function renderOrder(container, data, { norm = "", onNorm = () => {}, prefix = "", level = 2 } = {}) {
  clear(container);
  const post = data.norm.type !== "none" && data.norm.position === "post";
  const how =
    data.norm.type === "none"
      ? "This model has no norms: each sublayer's output is simply added to the stream."
      : post
        ? "Post-norm (the original Transformer, BERT): each sublayer reads the stream, its output is added, and the sum is normalised."
        : "Pre-norm (GPT-2, LLaMA): each sublayer reads a normalised copy of the stream; its output is added to the stream itself, which is never normalised until the final norm.";
  const { root, body } = panel({
    title: `Block ${data.layer} of the ${data.stack}, in the order it ran`,
    subtitle: `${how} Drawn from the order in which the hook points fired.`,
    exportId: `${prefix}order`,
    level,
  });
  container.append(root);
  const steps = data.order;
  const cx = 40 + BOX_W / 2;
  const height = 70 + steps.length * (BOX_H + GAP) + 40;
  const width = 40 + BOX_W + 170;
  const drawing = svg("svg", {
    class: "arch block-order",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "group",
    "aria-label": `Block ${data.layer}: ${steps.map((s) => (s.step === "add" ? "add" : s.module)).join(", then ")}`,
  });
  const top = (i) => 50 + i * (BOX_H + GAP);
  const arrow = (y1, y2) =>
    drawing.append(
      svg("path", { class: "arrow", d: `M ${cx} ${y1} L ${cx} ${y2}`, "marker-end": "url(#block-arrow)" }),
    );
  drawing.append(
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "block-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#59616f" }),
      ),
    ),
  );
  drawing.append(
    svg("text", { x: cx, y: 22, "text-anchor": "middle", class: "note-text", text: "the stream in (hook_resid_pre)" }),
  );
  arrow(28, top(0) - 2);
  const centre = (i) => top(i) + BOX_H / 2;
  steps.forEach((s, i) => {
    const y = top(i);
    if (s.step === "add") {
      drawing.append(svg("circle", { cx, cy: y + BOX_H / 2, r: 13, class: "box-norm" }));
      drawing.append(svg("text", { x: cx, y: y + BOX_H / 2 + 5, "text-anchor": "middle", text: "+" }));
    } else {
      const [label, sub] = stepLabel(s, data);
      const isNorm = s.step === "norm";
      const g = svg(
        "g",
        isNorm
          ? {
              class: "norm-box",
              tabindex: 0,
              role: "button",
              "aria-pressed": String(s.module === norm),
            }
          : {},
      );
      g.append(svg("rect", { x: cx - BOX_W / 2, y, width: BOX_W, height: BOX_H, rx: 6, class: BOX_CLASS[s.step] }));
      g.append(svg("text", { x: cx, y: y + 15, "text-anchor": "middle", text: label }));
      if (sub) g.append(svg("text", { x: cx, y: y + 30, "text-anchor": "middle", class: "note-text", text: sub }));
      if (isNorm) {
        const pick = () => onNorm(s.module);
        g.addEventListener("click", pick);
        g.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            pick();
          }
        });
      }
      drawing.append(g);
    }
    if (i < steps.length - 1) arrow(y + (s.step === "add" ? BOX_H / 2 + 13 : BOX_H), top(i + 1) - 2);
  });
  // the residual path of each sublayer: from where its branch leaves the stream to its ⊕
  steps.forEach((s, i) => {
    if (s.step !== "add") return;
    const sub = steps.findIndex((t) => t.module === s.module && t.step !== "add");
    const own = steps[sub - 1];
    const from = own && own.step === "norm" && own.module === SUBLAYER_NORM[s.module] ? sub - 1 : sub;
    const y1 = top(from) - GAP / 2;
    const y2 = centre(i);
    const x2 = cx + BOX_W / 2 + 60;
    drawing.append(
      svg("path", {
        class: "arrow residual",
        d: `M ${cx} ${y1} L ${x2} ${y1} L ${x2} ${y2} L ${cx + 15} ${y2}`,
        "marker-end": "url(#block-arrow)",
      }),
    );
    drawing.append(svg("text", { x: x2 + 6, y: (y1 + y2) / 2, class: "note-text", text: "residual" }));
  });
  const end = top(steps.length) - GAP + 6;
  arrow(end - 4, end + 14);
  drawing.append(
    svg("text", {
      x: cx,
      y: end + 30,
      "text-anchor": "middle",
      class: "note-text",
      text: "the stream out (hook_resid_post)",
    }),
  );
  body.append(el("div", { class: "arch-wrap" }, drawing));
  registerExport(`${prefix}order`, {
    filename: () => `attnviz-${data.model}-${data.stack}-block${data.layer}-order`,
    svg: () => drawing,
    data: () => ({ model: data.model, stack: data.stack, layer: data.layer, norm: data.norm, order: data.order }),
  });
  return drawing;
}

// ---------------------------------------------------------------------------------------
// Add & Norm, per token

function statsChart(div, tokens, s, kind, title) {
  const traces =
    kind === "layernorm"
      ? [bars("mean", s.mean, OKABE_ITO[0], tokens), bars("standard deviation", s.std, OKABE_ITO[1], tokens)]
      : [bars("RMS", s.rms, OKABE_ITO[2], tokens), bars("mean (not removed)", s.mean, OKABE_ITO[0], tokens)];
  return react(div, traces, {
    height: 280,
    barmode: "group",
    title: { text: plotlyText(title), x: 0, xanchor: "left", font: { size: fontSize() + 1 } },
    margin: { l: 50, r: 10, t: 36, b: 70 },
    xaxis: tokenAxis(tokens),
    yaxis: { gridcolor: "#eceef2", zeroline: true, zerolinecolor: "#9aa0aa" },
    legend: { orientation: "h", y: 1.12, x: 1, xanchor: "right" },
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
  const stats = panel({
    title: "Each token's statistics, before and after",
    subtitle: ln
      ? "Before: every token has its own mean and spread. After: each one is moved to mean 0 and scaled to standard deviation 1 (up to ε) — using only its own features."
      : "RMSNorm divides each token by its root mean square: afterwards the RMS is 1 (up to ε); the mean is not removed.",
    exportId: `${prefix}norm-stats`,
    level,
  });
  const before = figure("");
  const after = figure("");
  stats.body.append(el("div", { class: "matrices" }, before.box, after.box));
  row.append(stats.root);
  statsChart(before.plot, tokens, n.stats.stream, n.kind, "before the norm");
  statsChart(after.plot, tokens, n.stats.normalized, n.kind, "standardised");
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
    legend: { orientation: "h", y: 1.1, x: 1, xanchor: "right" },
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

// ---------------------------------------------------------------------------------------
// LayerNorm, RMSNorm and BatchNorm side by side

/**
 * choices: [{text, checked}] the sentences the batch may hold; onBatch(checkedTexts) when the
 * reader changes it.
 */
export function renderComparison(container, data, { choices = [], onBatch = () => {}, prefix = "", level = 2 } = {}) {
  clear(container);
  const c = data.comparison;
  const tokens = blockTokens(data);
  const { root, body } = panel({
    title: "LayerNorm, RMSNorm and BatchNorm on the same activations",
    subtitle: `The activations: ${c.stream} (T × d_model). LayerNorm and RMSNorm compute their statistics over each token's own features; BatchNorm computes one mean and spread per feature over every token of a batch of sentences. Change the batch: only BatchNorm's numbers move.`,
    exportId: `${prefix}compare`,
    level,
  });
  container.append(root);

  if (choices.length) {
    const boxes = choices.map((ch, i) => {
      const input = el("input", { type: "checkbox", id: `${prefix}batch-${i}`, name: "batch" });
      input.checked = ch.checked;
      return el("label", { class: "check batch-choice", for: `${prefix}batch-${i}` }, input, ch.text);
    });
    const fieldset = el(
      "fieldset",
      { class: "batch-picker" },
      el("legend", {
        text: `The batch: this sentence plus the ones ticked (${c.batchnorm.batch.n_sentences} sentences, ${c.batchnorm.batch.n_tokens} tokens)`,
      }),
      boxes,
    );
    fieldset.addEventListener("change", () => {
      onBatch(choices.filter((_, i) => boxes[i].querySelector("input").checked).map((ch) => ch.text));
    });
    body.append(fieldset);
  }

  const perToken = figure("LayerNorm / RMSNorm: statistics per token");
  const perFeature = figure("BatchNorm: the mean of each feature");
  body.append(el("div", { class: "matrices" }, perToken.box, perFeature.box));
  react(
    perToken.plot,
    [
      bars("mean (LayerNorm)", c.layernorm.mean, OKABE_ITO[0], tokens),
      bars("std (LayerNorm)", c.layernorm.std, OKABE_ITO[1], tokens),
      bars("RMS (RMSNorm)", c.rmsnorm.rms, OKABE_ITO[2], tokens),
    ],
    {
      height: 300,
      barmode: "group",
      margin: { l: 50, r: 10, t: 10, b: 70 },
      xaxis: tokenAxis(tokens),
      yaxis: { gridcolor: "#eceef2" },
      legend: { orientation: "h", y: 1.14, x: 1, xanchor: "right" },
    },
  );
  const bn = c.batchnorm;
  const feats = bn.alone.mean.map((_, i) => i);
  react(
    perFeature.plot,
    [
      {
        type: "scatter",
        mode: "lines",
        name: "this sentence alone",
        x: feats,
        y: bn.alone.mean,
        line: { color: OKABE_ITO[4], width: 1.5 },
      },
      {
        type: "scatter",
        mode: "lines",
        name: `in the batch (${bn.batch.n_sentences} sentences)`,
        x: feats,
        y: bn.batch.mean,
        line: { color: OKABE_ITO[5], width: 1.5 },
      },
    ],
    {
      height: 300,
      margin: { l: 50, r: 10, t: 10, b: 50 },
      xaxis: { title: { text: "feature" }, gridcolor: "#eceef2" },
      yaxis: { title: { text: "mean over the batch's tokens" }, gridcolor: "#eceef2" },
      legend: { orientation: "h", y: 1.14, x: 1, xanchor: "right" },
    },
  );

  const outs = [
    ["LayerNorm", c.layernorm.output, "LayerNorm"],
    ["RMSNorm", c.rmsnorm.output, "RMSNorm"],
    ["BatchNorm, this sentence alone", bn.alone.output, "BN alone"],
    ["BatchNorm, in the batch", bn.batch.output, "BN batch"],
  ].map(([title, x, value]) => ({ ...figure(title), m: mat(x), title: value }));
  const top = Math.min(6, Math.max(...outs.map((o) => maxAbs(o.m, 1e-6))));
  body.append(
    el(
      "div",
      { class: "grid-2" },
      outs.map((o) => o.box),
    ),
  );
  outs.forEach((o, i) =>
    featureHeatmap(o.plot, o.m, tokens, {
      value: o.title,
      zmin: -top,
      zmax: top,
      ticks: i % 2 === 0,
      height: Math.max(180, Math.min(420, tokens.length * 22 + 70)),
    }),
  );
  let moved = 0;
  const [alone, inBatch] = [outs[2].m.data, outs[3].m.data];
  for (let k = 0; k < alone.length; k++) moved = Math.max(moved, Math.abs(alone[k] - inBatch[k]));
  body.append(
    el("p", {
      class: "plot-note",
      text:
        bn.batch.n_sentences > 1
          ? `Putting the sentence in a batch moved its BatchNorm values by up to ${fmt(moved, 2)}; its LayerNorm and RMSNorm values do not change at all, whatever the batch: they never look past the token. That is why transformers, which see batches of sentences of every length (and one token at a time when generating), use LayerNorm or RMSNorm.`
          : "Tick some sentences above to put this one in a batch.",
    }),
  );
  registerExport(`${prefix}compare`, {
    filename: () => `attnviz-${data.model}-${data.stack}-block${data.layer}-norms-compared`,
    plot: () => outs[3].plot,
    data: () => ({
      model: data.model,
      text: tokens.map((t) => t.text),
      comparison: {
        ...c,
        layernorm: { ...c.layernorm, output: toNested(outs[0].m) },
        rmsnorm: { ...c.rmsnorm, output: toNested(outs[1].m) },
        batchnorm: {
          alone: { ...bn.alone, output: toNested(outs[2].m) },
          batch: { ...bn.batch, output: toNested(outs[3].m) },
        },
      },
    }),
  });
  return moved;
}

// ---------------------------------------------------------------------------------------
// The FFN

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
  const shut = panel({
    title: `How much ${swiglu ? "the gate" : act} shuts, per token`,
    subtitle:
      f.activation === "relu"
        ? "The share of units ReLU sets to exactly 0 (their W₁x was negative)."
        : `${swiglu ? "silu" : act} is a soft switch: act(x) = x · s(x) with s = ${swiglu || f.activation === "silu" ? "σ" : "Φ"}. The bar is the mean of 1 − s(x) over the units: how much of the hidden layer it turns down.`,
    exportId: `${prefix}ffn-zeroed`,
    level,
  });
  const zf = figure("");
  shut.body.append(zf.box);
  row.append(shut.root);
  react(
    zf.plot,
    [
      bars("share shut", f.zeroed, OKABE_ITO[2], tokens, {
        marker: { color: tokens.map((_, i) => (i === t ? OKABE_ITO[1] : OKABE_ITO[2])) },
      }),
    ],
    {
      height: 300,
      margin: { l: 50, r: 10, t: 10, b: 70 },
      xaxis: tokenAxis(tokens),
      yaxis: { range: [0, 1], gridcolor: "#eceef2", tickformat: ".0%" },
    },
  );
  zf.plot.on("plotly_click", (ev) => ev.points && ev.points[0] && onToken(ev.points[0].x));
  exportFigure(
    prefix,
    "ffn-zeroed",
    zf.plot,
    () => `attnviz-${data.model}-ffn-shut`,
    () => ({ tokens, activation: f.activation, zeroed: f.zeroed }),
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
    subtitle: `Its input W₁x and its activation at every token. Each unit of activation moves the stream by ‖W₂[:, ${u}]‖ = ${fmt(f.unit_write[u], 3)} along its own direction.`,
    exportId: `${prefix}ffn-unit`,
    level,
  });
  const of = figure("");
  one.body.append(of.box);
  container.append(one.root);
  react(
    of.plot,
    [
      bars("W₁x (before)", column(pre, u), OKABE_ITO[4], tokens),
      bars(`after ${swiglu ? "the gate" : act}`, column(post, u), OKABE_ITO[1], tokens),
    ],
    {
      height: 300,
      barmode: "group",
      margin: { l: 50, r: 10, t: 10, b: 70 },
      xaxis: tokenAxis(tokens),
      yaxis: { gridcolor: "#eceef2", zerolinecolor: "#9aa0aa" },
      legend: { orientation: "h", y: 1.12, x: 1, xanchor: "right" },
    },
  );
  exportFigure(
    prefix,
    "ffn-unit",
    of.plot,
    () => `attnviz-${data.model}-ffn-unit-${u}`,
    () => ({ unit: u, tokens, pre: column(pre, u), post: column(post, u), write: f.unit_write[u] }),
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

// ---------------------------------------------------------------------------------------
// The residual stream across the stack

/** ‖stream‖ of each token after every sublayer of the stack, and ‖what each one added‖. */
export function renderResidual(container, data, { prefix = "", level = 2 } = {}) {
  clear(container);
  const r = data.residual;
  const tokens = blockTokens(data);
  const { root, body } = panel({
    title: `The residual stream across the ${data.stack}`,
    subtitle:
      data.norm.position === "pre" || data.norm.type === "none"
        ? "Left: the size ‖x‖ of each token's stream after every sublayer. Nothing normalises the stream itself, so each sublayer's output piles up on it. Right: the size of what each sublayer added."
        : "Left: the size ‖x‖ of each token's stream after every sublayer's Add & Norm: post-norm brings it back to about the same size each time. Right: the size of what each sublayer added before the norm — every block adds something.",
    exportId: `${prefix}residual`,
    level,
  });
  container.append(root);
  const labels = r.points.map((p) => (p.layer === null ? "embed" : `${p.layer}·${POINT_LABEL[p.after]}`));
  const here = r.points.map((p, i) => (p.layer === data.layer ? i : -1)).filter((i) => i >= 0);
  const band = here.length
    ? [
        {
          type: "rect",
          xref: "x",
          yref: "paper",
          x0: here[0] - 0.5,
          x1: here[here.length - 1] + 0.5,
          y0: 0,
          y1: 1,
          fillcolor: "rgba(230,159,0,0.12)",
          line: { width: 0 },
        },
      ]
    : [];
  const a = figure("‖stream‖ after each sublayer");
  const b = figure("‖added‖ by each sublayer");
  body.append(el("div", { class: "matrices" }, a.box, b.box));
  if (tokens.length <= LINES_MAX) {
    const lines = (m) =>
      tokens.map((t, j) => ({
        type: "scatter",
        mode: "lines+markers",
        name: plotlyText(`${j}: ${tokenLabel(t)}`),
        x: labels.map((_, i) => i),
        y: m.map((row) => row[j]),
        line: { color: OKABE_ITO[j % OKABE_ITO.length], width: 1.5 },
        marker: { size: 5 },
        hovertemplate: `${plotlyText(tokenLabel(t))} · %{customdata}: %{y:.3f}<extra></extra>`,
        customdata: labels,
      }));
    const layout = (title, legend) => ({
      height: legend ? 420 : 340,
      shapes: band,
      margin: { l: 55, r: 10, t: 10, b: 60 },
      xaxis: {
        tickmode: "array",
        tickvals: labels.map((_, i) => i),
        ticktext: labels,
        tickangle: -45,
        gridcolor: "#eceef2",
      },
      yaxis: { title: { text: title }, gridcolor: "#eceef2", rangemode: "tozero" },
      showlegend: legend,
      legend: { orientation: "h", y: -0.32, font: { family: "ui-monospace, monospace" } },
    });
    react(a.plot, lines(r.l2), layout("‖x‖", true));
    react(b.plot, lines(r.added), layout("‖sublayer output‖", false));
    body.append(
      el("p", {
        class: "plot-note",
        text: `One line per token (colours repeat after ${OKABE_ITO.length}: hover a point for its token); the shaded band is block ${data.layer}.`,
      }),
    );
  } else {
    // a long input: one row per token, one column per point of the stream
    const byToken = (m) => tokens.map((_, j) => m.map((row) => row[j]));
    const heat = (div, m, value) =>
      matrixHeatmap(div, byToken(m), {
        value,
        x: labels,
        xLabel: "after",
        yLabel: "token",
        height: 460,
        customdata: tokens.map((t) => labels.map(() => plotlyText(tokenLabel(t)))),
        hovertemplate: `%{customdata} (%{y}) after %{x}<br>${value}: %{z:.3f}<extra></extra>`,
      });
    heat(a.plot, r.l2, "‖x‖");
    heat(b.plot, r.added, "‖sublayer output‖");
    body.append(
      el("p", {
        class: "plot-note",
        text: `One row per token (${tokens.length} tokens), one column per point of the stream.`,
      }),
    );
  }
  registerExport(`${prefix}residual`, {
    filename: () => `attnviz-${data.model}-${data.stack}-residual`,
    plot: () => a.plot,
    data: () => ({ model: data.model, stack: data.stack, tokens, points: labels, l2: r.l2, added: r.added }),
  });
}
