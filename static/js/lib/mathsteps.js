// One head's arithmetic, one function per step: X → Q, K, V → (RoPE) → QKᵀ → ÷√dₖ → mask →
// softmax → ×V → concat · W_O → the output. The matrices are the server's captured tensors
// (include=qkv,scores, binary); only QKᵀ (before scaling) is computed here, and it is checked
// against the server's scaled scores.
//
// Long inputs show a window: `rows` query tokens and `cols` key tokens of every matrix (24 × 24
// past 32 tokens); the row arithmetic still sums over every key.
//
// A step is {id, title, formula, body: [nodes], plot, draw(), data, cells}: `draw` fills `plot`
// once the card is on the page (every card at once, so a printed page holds every figure),
// `data` is its JSON export, `cells` says that a click on a cell picks a query row. A step function
// returns null where the step does not apply.

import { attentionBinary } from "./api.js";
import { siteTokens } from "./attn.js";
import { el, fmt } from "./dom.js";
import { charPx, fontSize, matrixHeatmap, plotlyText, react, tokenHeatmap, tokenTicks } from "./plots.js";
import { toNested } from "./tensor.js";
import { labelTokens, tokenLabel } from "./tokens.js";

/** Up to this many tokens every row and column is shown; past it, a window of WINDOW. */
export const WHOLE = 32;
export const WINDOW = 24;

/**
 * The rows and columns shown of an nq × nk head: everything for short inputs, else a window of
 * WINDOW rows around `row` and WINDOW key columns from `keys0` (-1: around the row's diagonal,
 * a token and its neighbours). {r0, r1, c0, c1}.
 */
export function windowAround(nq, nk, row, keys0 = -1) {
  if (nq <= WHOLE && nk <= WHOLE) return { r0: 0, r1: nq, c0: 0, c1: nk };
  const rows = Math.min(WINDOW, nq);
  const cols = Math.min(WINDOW, nk);
  const r0 = Math.max(0, Math.min(nq - rows, row - Math.floor(rows / 2)));
  const auto = Math.round((row * nk) / nq) - Math.floor(cols / 2);
  const c0 = Math.max(0, Math.min(nk - cols, keys0 >= 0 ? keys0 : auto));
  return { r0, r1: r0 + rows, c0, c1: c0 + cols };
}

/** One head's tensors for its arithmetic: POST /attention `body` (model, input, [layer],
 * [head]) with q, k, v, z and the scores, binary; its tokens labelled. */
export async function fetchHead(body, opts) {
  const answer = await attentionBinary({ ...body, include: ["qkv", "scores"] }, opts);
  answer.tokens = Object.fromEntries(Object.entries(answer.tokens).map(([k, v]) => [k, labelTokens(v)]));
  return answer;
}

/** Every head's Z of the head's layer, per site (for the concat step), fetched with the head's
 * `body`; null when `site`'s attention would exceed `maxCells` (a long input). */
export function fetchLayerZ(model, body, answer, site, maxCells) {
  const { queries, keys } = siteTokens(answer, site);
  if (model.n_heads * queries.length * keys.length > maxCells) return Promise.resolve(null);
  return attentionBinary({ ...body, heads: undefined, include: ["qkv"] }).then((all) =>
    Object.fromEntries(Object.entries(all.qkv).map(([s, parts]) => [s, parts.z])),
  );
}

/** n written in subscript digits: 3 → ₃, 11 → ₁₁. */
const subscript = (n) => String(n).replace(/\d/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);

const matmulT = (A, B) => A.map((a) => B.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
const shape = (m) => `${m.length} × ${m[0] ? m[0].length : 0}`;

/**
 * Everything the steps show about one head, or null when the server sent no Q, K, V.
 * answer: a binary /attention answer for [layer] × [head] with include qkv and scores;
 * win: {r0, r1, c0, c1}, the query rows and key columns shown; loadZ(): a promise of every
 * head's Z of the layer (a Tensor [1][H][Tq][d_head]) or null where that is too much to fetch.
 */
export function headTensors(answer, model, site, layer, head, win, loadZ) {
  const qkv = answer.qkv && answer.qkv[site];
  if (!qkv) return null;
  const { queries, keys } = siteTokens(answer, site);
  const { r0, r1, c0, c1 } = win;
  const rope = Boolean(qkv.rot_q);
  const rows = (t, a, b) => toNested(t.matrix(0, 0), a, b);
  const Q = rows(qkv.q, r0, r1);
  const K = rows(qkv.k, c0, c1);
  const Qr = rope ? rows(qkv.rot_q, r0, r1) : Q;
  const Kr = rope ? rows(qkv.rot_k, c0, c1) : K;
  const dk = qkv.q.shape[3];
  const S = answer.scores[site].matrix(0, 0); // scaled QKᵀ, masked cells NaN
  const A = answer.attention[site].matrix(0, 0);
  const serverScores = toNested(S, r0, r1, c0, c1);
  const QK = matmulT(Qr, Kr);
  return {
    model,
    site,
    layer,
    head,
    win,
    windowed: r1 - r0 < queries.length || c1 - c0 < keys.length,
    nq: queries.length,
    nk: keys.length,
    allQueries: queries,
    queries: queries.slice(r0, r1),
    keys: keys.slice(c0, c1),
    rope,
    mask: serverScores.map((r) => r.map((v) => (v === null ? 0 : 1))),
    cross: site === "decoder.cross",
    H: model.n_heads,
    kv: model.n_kv_heads || model.n_heads, // key/value heads (fewer: grouped-query attention)
    dModel: model.d_model,
    dk,
    Q,
    K,
    V: rows(qkv.v, c0, c1),
    Qr,
    Kr,
    QK,
    scaled: QK.map((r) => r.map((v) => v / Math.sqrt(dk))),
    serverScores,
    masked: serverScores,
    A: toNested(A, r0, r1, c0, c1),
    fullScores: S,
    fullA: A,
    X: toNested(qkv.x.matrix(0), r0, r1),
    Z: rows(qkv.z, r0, r1),
    out: qkv.out ? toNested(qkv.out.matrix(0), r0, r1) : null,
    loadZ,
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
  const widest = Math.max(3, ...tokens.map((t) => tokenLabel(t).length + (t.special ? 2 : 0)));
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
    customdata: m.map((row, i) => row.map(() => plotlyText(tokenLabel(tokens[i])))),
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
  const X = h.X; // the server's hook_in: what the attention module reads
  const pre = h.model.norm_position === "pre" ? ` (normalised by ${h.model.norm} first: pre-norm)` : "";
  const sources = h.cross
    ? "In cross-attention the queries come from the French side (X) and the keys and values from the " +
      `encoder's output over the ${h.nk} English tokens.`
    : "Queries, keys and values are all computed from the same X: self-attention.";
  const diagram = el(
    "div",
    { class: "shape-diagram" },
    shapeBox("X", `(${h.nq} × ${h.dModel})`),
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
  const { dModel, dk, H, kv } = h;
  return vectorsStep({
    id: "qkv",
    title: "Project to queries, keys and values",
    formula: "Q = X·W_Q,  K = X·W_K,  V = X·W_V",
    intro: [
      explain(
        (kv && kv < H
          ? `Each head has its own W_Q (${dModel} × ${dk}): d_k = d_model / h = ${dModel} / ${H} = ${dk}. ` +
            `Grouped-query attention: only ${kv} W_K and W_V, each shared by ${H / kv} heads, so head ${h.head} reads the keys and values of group ${Math.floor(h.head / (H / kv))} (its K and V below are that group's). `
          : `Each head has its own W_Q, W_K, W_V (${dModel} × ${dk}): d_k = d_model / h = ${dModel} / ${H} = ${dk}. `) +
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
  // with RoPE the dot products are of the rotated vectors: named Q′K′ᵀ wherever they show
  const [qk, q, k, dot] = h.rope ? ["Q′K′ᵀ", "Q′", "K′", "q′·k′"] : ["QKᵀ", "Q", "K", "q·k"];
  return squareStep(h, {
    id: "qk",
    title: "Compare every query with every key",
    formula: qk,
    matrixTitle: `${qk} (dot products)`,
    z: h.QK,
    text:
      `Row i, column j: ${h.rope ? "q′_i · k′_j" : "q_i · k_j"}, a sum of ${h.dk} products. Big means ` +
      `"this key matches what this query looks for". Computed here from the server's ${q} and ${k}` +
      `${h.rope ? " (its queries and keys after the rotation)" : ""}.`,
    plot: { value: dot, diverging: true, colorbarTitle: dot },
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
    formula: h.rope ? "Q′K′ᵀ / √dₖ" : "QKᵀ / √dₖ",
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
  const Z = h.Z; // the server's hook_z: this head's A·V
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
  const { H, dk, dModel, head, nq } = h;
  const op = (text) => el("span", { class: "op", text });
  const plot = el("div", { class: "plot" });
  const band = { type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, line: { color: "#E69F00", width: 3 } };
  const caption = note("");
  const step = {
    id: "concat",
    title: "Concatenate the heads, then W_O",
    formula: `concat(head₀ … head${subscript(H - 1)})·W_O`,
    body: [
      el(
        "div",
        { class: "shape-diagram" },
        shapeBox(`concat(Z₀ … Z${subscript(H - 1)})`, `(${nq} × ${H}·${dk} = ${nq} × ${H * dk})`),
        op("·"),
        shapeBox("W_O", `(${H * dk} × ${dModel})`),
        op("="),
        shapeBox("attention output", `(${nq} × ${dModel})`),
        op("→"),
        shapeBox("Add & Norm", "x + output"),
      ),
      plot,
      caption,
    ],
    plot,
    data: { heads: H, d_head: dk },
    draw: async () => {
      const all = await h.loadZ();
      const { r0, r1 } = h.win;
      // without every head (too long an input to fetch them all) the other bands stay empty
      const bands = Array.from({ length: H }, (_, g) =>
        all ? toNested(all.matrix(0, g), r0, r1) : g === head ? h.Z : h.Z.map((row) => row.map(() => null)),
      );
      const concat = h.queries.map((_, i) => bands.flatMap((Zg) => Zg[i]));
      step.data.concat = concat;
      caption.textContent =
        (all
          ? `Every head's Z side by side; head ${head}'s band is outlined.`
          : `Head ${head}'s Z in its band (the other heads' would take ${H - 1} more matrices of ` +
            `${nq} × ${h.nk} weights to fetch).`) +
        ` W_O mixes the heads back into d_model = ${dModel} numbers per token, which are added to X ` +
        "(the residual connection).";
      await vectorsPlot(plot, concat, h.queries, "z");
      return react(plot, plot.data, {
        ...plot.layout,
        shapes: [{ ...band, x0: head * dk - 0.5, x1: (head + 1) * dk - 0.5 }],
      });
    },
  };
  return step;
}

function outputStep(h) {
  if (!h.out) return null;
  const out = h.out;
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

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Append a card per step that applies to `container` (every card at once), then draw them one
 * task each on a long input (a real LLM's 576-wide X and 24 × 24 matrices are a few hundred ms of Plotly a
 * card: drawn in one go they held the page for seconds). A card whose container has left the
 * page (a newer render) is not drawn. Returns the steps shown, each with `drawn`, the promise
 * of its figure. */
export function drawSteps(container, h) {
  const steps = STEPS.map((make) => make(h)).filter(Boolean);
  let before = Promise.resolve();
  steps.forEach((step, i) => {
    container.append(stepCard(i + 1, step));
    if (!h.windowed) {
      step.drawn = step.draw(); // a short input: every card at once, as ever
      return;
    }
    const mine = before
      .then(() => (i > 0 ? nextTask() : null))
      .then(() => (container.isConnected ? step.draw() : null));
    step.drawn = mine;
    before = mine.catch(() => null); // one card failing does not stop the others
  });
  return steps;
}

/**
 * The arithmetic of query row `row` (a token index) as a table: q·k, ÷√dₖ, exp(s − max) and the
 * weight exp / Σ exp, for the keys in the window; the softmax itself runs over every key, and
 * the keys out of the window are summed in one line. The weights are checked against the
 * server's captured pattern.
 */
export function rowArithmetic(h, row, highlightKey) {
  const { keys, QK, scaled, dk, fullScores: S, fullA: A, win } = h;
  const i = row - win.r0; // the row in the window, when it is in it
  const inWindow = i >= 0 && i < h.queries.length;
  const scoresRow = S.data.subarray(row * S.cols, (row + 1) * S.cols);
  const captured = A.data.subarray(row * A.cols, (row + 1) * A.cols);
  let m = Number.NEGATIVE_INFINITY;
  for (const v of scoresRow) if (!Number.isNaN(v)) m = Math.max(m, v);
  const ex = Array.from(scoresRow, (v) => (Number.isNaN(v) ? 0 : Math.exp(v - m)));
  const sum = ex.reduce((a, b) => a + b, 0);
  const weight = ex.map((e) => e / sum);
  let diff = 0;
  weight.forEach((w, j) => (diff = Math.max(diff, Math.abs(w - captured[j]))));
  const num = (x, digits) => el("td", { class: "num", text: fmt(x, digits) });
  const table = el(
    "table",
    { class: "row-table" },
    el(
      "tr",
      {},
      ["key", "q·k", `÷√${dk}`, "exp(s − max)", "weight = exp / Σ"].map((text) => el("th", { text })),
    ),
  );
  let exOut = sum;
  let weightOut = 1;
  keys.forEach((t, jw) => {
    const j = win.c0 + jw;
    const masked = Number.isNaN(scoresRow[j]);
    exOut -= ex[j];
    weightOut -= weight[j];
    table.append(
      el(
        "tr",
        { class: j === highlightKey ? "picked" : null },
        el("td", { text: `${j} ${tokenLabel(t)}` }),
        inWindow ? num(QK[i][jw], 3) : el("td", { class: "num", text: "" }),
        el("td", { class: "num", text: masked ? "−∞ (masked)" : fmt(inWindow ? scaled[i][jw] : scoresRow[j], 3) }),
        num(ex[j], 4),
        num(weight[j], 4),
      ),
    );
  });
  const others = h.nk - keys.length;
  if (others > 0) {
    table.append(
      el(
        "tr",
        { class: "others" },
        el("td", { text: `${others} other keys` }),
        el("td"),
        el("td"),
        num(Math.max(0, exOut), 4),
        num(Math.max(0, weightOut), 4),
      ),
    );
  }
  table.append(
    el(
      "tr",
      {},
      el("th", { text: "sum" }),
      el("td"),
      el("td"),
      num(sum, 4),
      num(
        weight.reduce((a, b) => a + b, 0),
        4,
      ),
    ),
  );
  return [
    el("div", { text: `query ${row} “${tokenLabel(h.allQueries[row])}”: softmax over its row of ${h.nk} keys` }),
    table,
    el("div", {
      class: "plot-note",
      text: `The server's captured weights (hook_pattern, sent as half floats) agree to ${diff < 1e-3 ? "within 0.001" : `±${diff.toFixed(4)}`}.`,
    }),
  ];
}
