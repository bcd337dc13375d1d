// One head's arithmetic, one function per step: X → Q, K, V → (RoPE) → QKᵀ → ÷√dₖ → mask →
// softmax → ×V → concat · W_O → the output. The matrices are the server's captured tensors
// (include=qkv,scores,masks); only QKᵀ (before scaling) is computed here, and it is checked
// against the server's scaled scores.
//
// A step is {id, title, formula, body: [nodes], plot, draw(), data, cells}: `draw` fills `plot`
// once the card is on the page, `data` is its JSON export, `cells` says that a click on a cell
// picks a query row. A step function returns null where the step does not apply.

import { siteMask, siteTokens } from "./attn.js";
import { displayToken, el, fmt } from "./dom.js";
import { charPx, fontSize, matrixHeatmap, plotlyText, react, tokenHeatmap, tokenTicks } from "./plots.js";

const matmulT = (A, B) => A.map((a) => B.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
const shape = (m) => `${m.length} × ${m[0] ? m[0].length : 0}`;

/** Everything the steps show about one head, or null when the server sent no Q, K, V. */
export function headTensors(data, model, site, layer, head) {
  const qkv = data.qkv && data.qkv[site];
  if (!qkv) return null;
  const { queries, keys } = siteTokens(data, site);
  const rope = Boolean(qkv.rot_q);
  const Q = qkv.q[layer][head];
  const K = qkv.k[layer][head];
  const Qr = rope ? qkv.rot_q[layer][head] : Q;
  const Kr = rope ? qkv.rot_k[layer][head] : K;
  const dk = Q[0].length;
  const mask = siteMask(data, site, queries.length, keys.length);
  const QK = matmulT(Qr, Kr);
  const serverScores = data.scores[site][layer][head];
  return {
    qkv,
    model,
    site,
    layer,
    head,
    queries,
    keys,
    rope,
    mask,
    cross: site === "decoder.cross",
    H: data.attention[site][layer].length,
    dModel: model.d_model,
    dk,
    Q,
    K,
    V: qkv.v[layer][head],
    Qr,
    Kr,
    QK,
    scaled: QK.map((r) => r.map((v) => v / Math.sqrt(dk))),
    serverScores,
    masked: serverScores.map((r, i) => r.map((v, j) => (mask && !mask[i][j] ? null : v))),
    A: data.attention[site][layer][head],
  };
}

// ---------------------------------------------------------------------------------------
// building blocks

const explain = (text) => el("p", { class: "explain", text });
const note = (text) => el("p", { class: "plot-note", text });

function shapeBox(label, dims) {
  return el("div", { class: "shape-box" }, label, el("span", { class: "shape", text: dims }));
}

/** A titled matrix with its shape: {box, plot}. */
function matrixBox(title, m) {
  const plot = el("div", { class: "plot" });
  const heading = el(
    "div",
    { class: "matrix-title" },
    el("span", { text: title }),
    el("span", { class: "shape", text: m ? `(${shape(m)})` : "" }),
  );
  return { box: el("div", { class: "matrix" }, heading, plot), plot };
}

const matrices = (...boxes) =>
  el(
    "div",
    { class: "matrices" },
    boxes.map((b) => b.box),
  );

/** tokens × dimensions (Q, K, V, Z): signed values, token labels on the rows. */
function vectorsPlot(div, m, tokens, name) {
  const widest = Math.max(3, ...tokens.map((t) => displayToken(t.text).length + (t.special ? 2 : 0)));
  return matrixHeatmap(div, m, {
    diverging: true,
    height: Math.max(200, Math.min(520, tokens.length * 26 + 80)),
    value: name,
    xLabel: "dimension",
    yLabel: "",
    y: tokens.map((_, i) => i),
    yaxis: {
      tickmode: "array",
      tickvals: tokens.map((_, i) => i),
      ticktext: tokenTicks(tokens),
      tickfont: { family: "ui-monospace, monospace", size: fontSize() },
    },
    margin: { l: 24 + charPx() * Math.min(14, widest), t: 10 },
    customdata: m.map((row, i) => row.map(() => plotlyText(displayToken(tokens[i].text)))),
    hovertemplate: `token: %{customdata}<br>dimension %{x}<br>${name}: %{z:.4f}<extra></extra>`,
  });
}

/** queries × keys, with the numbers printed in the cells when they fit. */
function squarePlot(div, z, rows, cols, opts) {
  const small = rows.length <= 10 && cols.length <= 10;
  const height = Math.max(260, Math.min(560, rows.length * 34 + 140));
  const p = tokenHeatmap(div, z, { rows, cols, square: false, height, ...opts });
  if (!small || !window.Plotly) return p;
  return p.then(() =>
    window.Plotly.restyle(div, {
      text: [z.map((r) => r.map((v) => (v === null ? (opts.nullText ?? "−∞") : fmt(v, 2))))],
      texttemplate: "%{text}",
      textfont: { size: fontSize() - 1 },
    }),
  );
}

/** A step that shows one queries × keys matrix. */
function squareStep(h, { id, title, formula, matrixTitle, z, text, after = [], plot: opts, data }) {
  const m = matrixBox(matrixTitle, z);
  return {
    id,
    title,
    formula,
    body: [explain(text), matrices(m), ...after],
    plot: m.plot,
    draw: () => squarePlot(m.plot, z, h.queries, h.keys, opts),
    data,
    cells: true,
  };
}

/** A step that shows tokens × dimensions matrices side by side: parts [[title, m, tokens, name]]. */
function vectorsStep({ id, title, formula, intro, parts, data }) {
  const boxes = parts.map(([heading, m, tokens, name]) => ({ ...matrixBox(heading, m), m, tokens, name }));
  return {
    id,
    title,
    formula,
    body: [...intro, matrices(...boxes)],
    plot: boxes[0].plot,
    draw: () => Promise.all(boxes.map((b) => vectorsPlot(b.plot, b.m, b.tokens, b.name))),
    data,
  };
}

// ---------------------------------------------------------------------------------------
// the steps

function inputStep(h) {
  const X = h.qkv.x[h.layer]; // the server's hook_in: what the attention module reads
  const pre = h.model.norm_position === "pre" ? ` (normalised by ${h.model.norm} first: pre-norm)` : "";
  const sources = h.cross
    ? "In cross-attention the queries come from the French side (X) and the keys and values from the " +
      `encoder's output over the ${h.keys.length} English tokens.`
    : "Queries, keys and values are all computed from the same X: self-attention.";
  const diagram = el(
    "div",
    { class: "shape-diagram" },
    shapeBox("X", `(${h.queries.length} × ${h.dModel})`),
    el(
      "p",
      { class: "explain" },
      `One row per token: its ${h.dModel} numbers entering layer ${h.layer}${pre}. ${sources}`,
    ),
  );
  return vectorsStep({
    id: "x",
    title: "The input X",
    formula: h.cross ? "X (decoder) · memory (encoder)" : "X",
    intro: [diagram],
    parts: [["X", X, h.queries, "x"]],
    data: { tokens: h.queries, X },
  });
}

function projectStep(h) {
  const { dModel, dk, H } = h;
  return vectorsStep({
    id: "qkv",
    title: "Project to queries, keys and values",
    formula: "Q = X·W_Q,  K = X·W_K,  V = X·W_V",
    intro: [
      explain(
        `Each head has its own W_Q, W_K, W_V (${dModel} × ${dk}): d_k = d_model / h = ${dModel} / ${H} = ${dk}. ` +
          "Query: what am I looking for? Key: what do I contain? Value: what I pass on.",
      ),
    ],
    parts: [
      ["Q", h.Q, h.queries, "Q"],
      ["K", h.K, h.keys, "K"],
      ["V", h.V, h.keys, "V"],
    ],
    data: { tokens_q: h.queries, tokens_k: h.keys, Q: h.Q, K: h.K, V: h.V },
  });
}

function ropeStep(h) {
  if (!h.rope) return null;
  return vectorsStep({
    id: "rope",
    title: "RoPE: rotate q and k by their position",
    formula: "q′ₘ = R(m)·qₘ,  k′ₙ = R(n)·kₙ",
    intro: [
      explain(
        "Each pair of dimensions is turned by an angle proportional to the token's position. Their dot " +
          "product then depends only on the distance m − n. See the RoPE view for the angles.",
      ),
    ],
    parts: [
      ["rotated Q", h.Qr, h.queries, "q′"],
      ["rotated K", h.Kr, h.keys, "k′"],
    ],
    data: { rot_q: h.Qr, rot_k: h.Kr },
  });
}

function compareStep(h) {
  return squareStep(h, {
    id: "qk",
    title: "Compare every query with every key",
    formula: h.rope ? "Q′K′ᵀ" : "QKᵀ",
    matrixTitle: "QKᵀ (dot products)",
    z: h.QK,
    text:
      `Row i, column j: q_i · k_j, a sum of ${h.dk} products. Big means "this key matches what this ` +
      `query looks for". Computed here from the server's Q and K.`,
    plot: { value: "q·k", diverging: true, colorbarTitle: "q·k" },
    data: { QK: h.QK },
  });
}

function scaleStep(h) {
  let maxDiff = 0;
  h.serverScores.forEach((r, i) =>
    r.forEach((v, j) => {
      if (v !== null) maxDiff = Math.max(maxDiff, Math.abs(v - h.scaled[i][j]));
    }),
  );
  const agreement = maxDiff < 5e-4 ? "within rounding" : `max |Δ| = ${maxDiff.toExponential(1)}`;
  return squareStep(h, {
    id: "scaled",
    title: `Scale by √dₖ = √${h.dk} = ${Math.sqrt(h.dk).toFixed(3)}`,
    formula: "QKᵀ / √dₖ",
    matrixTitle: "scores",
    z: h.scaled,
    text:
      "Dot products grow with the dimension; dividing by √dₖ keeps the softmax from saturating, " +
      "so gradients stay useful.",
    after: [note(`Matches the server's captured scores (hook_scores) to ${agreement}.`)],
    plot: { value: "score", diverging: true, colorbarTitle: "score" },
    data: { scores: h.scaled, server_scores: h.serverScores },
  });
}

function maskStep(h) {
  const anyMasked = h.mask && h.mask.some((r) => r.some((v) => !v));
  return squareStep(h, {
    id: "masked",
    title: "Mask: set forbidden cells to −∞",
    formula: "scores + mask",
    matrixTitle: "masked scores",
    z: h.masked,
    text: anyMasked
      ? "A token may not look at the future: cells above the diagonal become −∞ (grey), " +
        "so the softmax gives them exactly 0."
      : "Nothing is masked here: in this attention every query may look at every key.",
    plot: { value: "score", diverging: true, colorbarTitle: "score", masked: true },
    data: { masked_scores: h.masked, mask: h.mask },
  });
}

function softmaxStep(h) {
  const shown = h.A.map((r, i) => r.map((v, j) => (h.mask && !h.mask[i][j] ? null : v)));
  return squareStep(h, {
    id: "softmax",
    title: "Softmax, row by row",
    formula: "A = softmax(scores)",
    matrixTitle: "attention weights A",
    z: shown,
    text:
      "Each row becomes probabilities: all between 0 and 1, summing to 1. " +
      "This is the pattern the other views draw.",
    after: [el("div", { class: "cell-detail", id: "row-detail", "aria-live": "polite" })],
    plot: { value: "weight", zmin: 0, zmax: 1, colorbarTitle: "weight", nullText: "0" },
    data: { attention: h.A },
  });
}

function mixStep(h) {
  const Z = h.qkv.z[h.layer][h.head]; // the server's hook_z: this head's A·V
  return vectorsStep({
    id: "z",
    title: "Mix the values",
    formula: "Z = A·V",
    intro: [
      explain(
        "Each query's output is the weighted average of the value vectors, with its row of A as the weights " +
          "(the server's captured Z of this head).",
      ),
    ],
    parts: [[`Z, head ${h.head}`, Z, h.queries, "z"]],
    data: { Z },
  });
}

function concatStep(h) {
  const { H, dk, dModel, head } = h;
  const T = h.queries.length;
  const concat = h.queries.map((_, i) => h.qkv.z[h.layer].flatMap((Zh) => Zh[i]));
  const op = (text) => el("span", { class: "op", text });
  const plot = el("div", { class: "plot" });
  const band = { type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, line: { color: "#E69F00", width: 3 } };
  return {
    id: "concat",
    title: "Concatenate the heads, then W_O",
    formula: "concat(head₀ … head₋₁)·W_O",
    body: [
      el(
        "div",
        { class: "shape-diagram" },
        shapeBox(`concat(Z₀ … Z${H - 1})`, `(${T} × ${H}·${dk} = ${T} × ${H * dk})`),
        op("·"),
        shapeBox("W_O", `(${H * dk} × ${dModel})`),
        op("="),
        shapeBox("attention output", `(${T} × ${dModel})`),
        op("→"),
        shapeBox("Add & Norm", "x + output"),
      ),
      plot,
      note(
        `Every head's Z side by side; head ${head}'s band is outlined. W_O mixes the heads back into ` +
          `d_model = ${dModel} numbers per token, which are added to X (the residual connection).`,
      ),
    ],
    plot,
    draw: () =>
      vectorsPlot(plot, concat, h.queries, "z").then(() =>
        react(plot, plot.data, {
          ...plot.layout,
          shapes: [{ ...band, x0: head * dk - 0.5, x1: (head + 1) * dk - 0.5 }],
        }),
      ),
    data: { concat, heads: H, d_head: dk },
  };
}

function outputStep(h) {
  if (!h.qkv.out) return null;
  const out = h.qkv.out[h.layer];
  return vectorsStep({
    id: "out",
    title: "The attention output, after W_O",
    formula: "concat(Z)·W_O",
    intro: [
      explain(
        `One row of ${h.dModel} numbers per token: what this attention adds to the residual stream ` +
          "(Add & Norm comes next).",
      ),
    ],
    parts: [["output", out, h.queries, "out"]],
    data: { tokens: h.queries, out },
  });
}

const STEPS = [
  inputStep,
  projectStep,
  ropeStep,
  compareStep,
  scaleStep,
  maskStep,
  softmaxStep,
  mixStep,
  concatStep,
  outputStep,
];

// ---------------------------------------------------------------------------------------

function stepCard(n, step) {
  const exportButtons = el(
    "div",
    { class: "export", "data-export": step.id, role: "group", "aria-label": `Export step ${n}` },
    ["png", "svg", "json"].map((f) => el("button", { type: "button", "data-format": f, text: f.toUpperCase() })),
  );
  const heading = el(
    "div",
    { class: "step-head" },
    el("span", { class: "step-num", text: String(n) }),
    el("h2", { class: "step-title", text: step.title }),
    step.formula ? el("code", { class: "formula", text: step.formula }) : null,
  );
  return el(
    "section",
    { class: "card step", "aria-label": `Step ${n}: ${step.title}`, "data-step": n },
    el("header", { class: "panel-head" }, heading, exportButtons),
    ...step.body,
  );
}

/** Append a card per step that applies to `container` and draw it; returns the steps shown,
 * each with `drawn`, the promise of its figure. */
export function drawSteps(container, h) {
  const steps = STEPS.map((make) => make(h)).filter(Boolean);
  steps.forEach((step, i) => {
    container.append(stepCard(i + 1, step));
    step.drawn = step.draw();
  });
  return steps;
}

/** The arithmetic of query row i as a table: q·k, ÷√dₖ, exp(s − max), the weight. */
export function rowArithmetic(h, i, highlightKey) {
  const { queries, keys, QK, scaled, masked, A, dk } = h;
  const valid = masked[i].map((v) => v !== null);
  const m = Math.max(...masked[i].filter((v) => v !== null));
  const ex = masked[i].map((v) => (v === null ? 0 : Math.exp(v - m)));
  const sum = ex.reduce((a, b) => a + b, 0);
  const num = (x, digits) => el("td", { class: "num", text: fmt(x, digits) });
  const table = el(
    "table",
    { class: "row-table" },
    el(
      "tr",
      {},
      ["key", "q·k", `÷√${dk}`, "exp(s − max)", "weight"].map((text) => el("th", { text })),
    ),
  );
  keys.forEach((t, j) => {
    table.append(
      el(
        "tr",
        { class: j === highlightKey ? "picked" : null },
        el("td", { text: `${j} ${displayToken(t.text)}` }),
        num(QK[i][j], 3),
        el("td", { class: "num", text: valid[j] ? fmt(scaled[i][j], 3) : "−∞ (masked)" }),
        num(ex[j], 4),
        num(A[i][j], 4),
      ),
    );
  });
  const weights = A[i].reduce((a, b) => a + (b ?? 0), 0);
  table.append(el("tr", {}, el("th", { text: "sum" }), el("td"), el("td"), num(sum, 4), num(weights, 4)));
  return [el("div", { text: `query ${i} “${displayToken(queries[i].text)}”: softmax over its row` }), table];
}
