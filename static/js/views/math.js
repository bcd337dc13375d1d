// Attention arithmetic for one head: X → Q, K, V → QKᵀ → ÷√dₖ → mask → softmax → ×V → W_O.
// The matrices are the server's captured tensors (include=qkv,scores,masks): X, Q, K,
// V, the scores, A, each head's Z and the output after W_O. Only QKᵀ (before scaling) is
// computed here, and it is checked against the server's scaled scores.

import * as api from "../lib/api.js";
import { SITE_LABEL, siteMask, siteTokens, sitesOf } from "../lib/attn.js";
import { setupControls } from "../lib/controls.js";
import { $, clear, displayToken, el, fillSelect, fmt } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { charPx, fontSize, matrixHeatmap, plotlyText, react, tokenHeatmap, tokenTicks } from "../lib/plots.js";
import { bindKeys, initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, str, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({
  model: str(""),
  text: str(""),
  target: str(""),
  site: str(""),
  layer: int(0),
  head: int(0),
  row: int(-1), // the query token whose arithmetic is spelled out (-1: the last one)
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
let data = null;
let inflight = null;
const exported = new Map(); // export id -> {plot, data}

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "decoder",
  allowTarget: true,
  onRun: run,
  onModelChange: () => save({ site: "", layer: 0, head: 0, row: -1 }),
});

async function run() {
  const model = controls.current();
  if (!model) return;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const signal = inflight.signal;
  const body = { model: model.id, text: state.text, include: ["qkv", "scores", "masks"] };
  if (model.kind === "seq2seq" && state.target) body.target = state.target;
  const result = await withStatus(status, "Capturing Q, K, V and scores…", () => api.attention(body, { signal }));
  if (!result || signal.aborted) return;
  data = result;
  setupSelectors();
  render();
}

function site() {
  const sites = sitesOf(data);
  return sites.includes(state.site) ? state.site : sites.includes("decoder.cross") ? "decoder.cross" : sites[0];
}

function setupSelectors() {
  const sites = sitesOf(data);
  const s = site();
  $("#site-field").hidden = sites.length < 2;
  fillSelect(
    $("#site-select"),
    sites.map((x) => ({ value: x, label: SITE_LABEL[x] || x })),
    s,
  );
  const att = data.attention[s];
  const layer = Math.min(Math.max(0, state.layer), att.length - 1);
  const head = Math.min(Math.max(0, state.head), att[0].length - 1);
  fillSelect(
    $("#layer-select"),
    att.map((_, l) => ({ value: l, label: String(l) })),
    layer,
  );
  fillSelect(
    $("#head-select"),
    att[0].map((_, h) => ({ value: h, label: String(h) })),
    head,
  );
  const { queries } = siteTokens(data, s);
  const row = state.row >= 0 && state.row < queries.length ? state.row : queries.length - 1;
  fillSelect(
    $("#row-select"),
    queries.map((t, i) => ({ value: i, label: `${i}: ${displayToken(t.text)}` })),
    row,
  );
  save({ site: sites.length > 1 ? s : "", layer, head, row: state.row >= 0 ? row : -1 });
}

const rowIndex = () => Number($("#row-select").value);

// ---------------------------------------------------------------------------------------
const matmulT = (A, B) => A.map((a) => B.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
const shape = (m) => `${m.length} × ${m[0] ? m[0].length : 0}`;

function stepCard(n, title, formula, exportId) {
  const card = el(
    "section",
    { class: "card step", "aria-label": `Step ${n}: ${title}`, "data-step": n },
    el(
      "header",
      { class: "panel-head" },
      el(
        "div",
        { class: "step-head" },
        el("span", { class: "step-num", text: String(n) }),
        el("h2", { class: "step-title", text: title }),
        formula ? el("code", { class: "formula", text: formula }) : null,
      ),
      exportId
        ? el(
            "div",
            { class: "export", "data-export": exportId, role: "group", "aria-label": `Export step ${n}` },
            ["png", "svg", "json"].map((f) =>
              el("button", { type: "button", "data-format": f, text: f.toUpperCase() }),
            ),
          )
        : null,
    ),
  );
  return card;
}

function matrixBox(title, m) {
  const plot = el("div", { class: "plot" });
  const box = el(
    "div",
    { class: "matrix" },
    el(
      "div",
      { class: "matrix-title" },
      el("span", { text: title }),
      el("span", { class: "shape", text: m ? `(${shape(m)})` : "" }),
    ),
    plot,
  );
  return { box, plot };
}

/** tokens × dimensions (Q, K, V, Z): signed values, token labels on the rows. */
function vectorsPlot(div, m, tokens, name) {
  const height = Math.max(200, Math.min(520, tokens.length * 26 + 80));
  return matrixHeatmap(div, m, {
    diverging: true,
    height,
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
    margin: {
      l:
        24 +
        charPx() * Math.min(14, Math.max(3, ...tokens.map((t) => displayToken(t.text).length + (t.special ? 2 : 0)))),
      t: 10,
    },
    customdata: m.map((row, i) => row.map(() => plotlyText(displayToken(tokens[i].text)))),
    hovertemplate: `token: %{customdata}<br>dimension %{x}<br>${name}: %{z:.4f}<extra></extra>`,
  });
}

function squarePlot(div, z, rows, cols, opts) {
  const small = rows.length <= 10 && cols.length <= 10;
  const p = tokenHeatmap(div, z, {
    rows,
    cols,
    square: false,
    height: Math.max(260, Math.min(560, rows.length * 34 + 140)),
    ...opts,
  });
  if (small && window.Plotly) {
    // print the numbers in the cells when they fit
    return p.then(() =>
      window.Plotly.restyle(div, {
        text: [z.map((r) => r.map((v) => (v === null ? (opts.nullText ?? "−∞") : fmt(v, 2))))],
        texttemplate: "%{text}",
        textfont: { size: fontSize() - 1 },
      }),
    );
  }
  return p;
}

function onCellClick(div) {
  div.on("plotly_click", (ev) => {
    const pt = ev.points && ev.points[0];
    if (!pt) return;
    $("#row-select").value = String(pt.y);
    save({ row: Number(pt.y) });
    renderDetail(Number(pt.x));
  });
}

// ---------------------------------------------------------------------------------------
let ctx = null;

function render() {
  if (!data) return;
  const s = site();
  const { layer, head } = state;
  const model = controls.current();
  const qkv = data.qkv && data.qkv[s];
  const pipeline = $("#pipeline");
  clear(pipeline);
  exported.clear();
  if (!qkv) {
    pipeline.append(el("p", { class: "empty", text: "The server sent no Q, K, V for this model." }));
    return;
  }
  const { queries, keys } = siteTokens(data, s);
  const rope = !!qkv.rot_q;
  const Q = qkv.q[layer][head];
  const K = qkv.k[layer][head];
  const V = qkv.v[layer][head];
  const Qr = rope ? qkv.rot_q[layer][head] : Q;
  const Kr = rope ? qkv.rot_k[layer][head] : K;
  const dk = Q[0].length;
  const mask = siteMask(data, s, queries.length, keys.length);
  const serverScores = data.scores[s][layer][head];
  const A = data.attention[s][layer][head];
  const QK = matmulT(Qr, Kr);
  const scaled = QK.map((r) => r.map((v) => v / Math.sqrt(dk)));
  let maxDiff = 0;
  serverScores.forEach((r, i) =>
    r.forEach((v, j) => v !== null && (maxDiff = Math.max(maxDiff, Math.abs(v - scaled[i][j])))),
  );
  const masked = serverScores.map((r, i) => r.map((v, j) => (mask && !mask[i][j] ? null : v)));
  const Z = qkv.z[layer][head]; // the server's hook_z: this head's A·V
  const H = data.attention[s][layer].length;
  const dModel = model.d_model;
  ctx = { s, queries, keys, QK, scaled, masked, A, dk, mask };
  const cross = s === "decoder.cross";
  let n = 1;

  // 1. X
  {
    const card = stepCard(n++, "The input X", cross ? "X (decoder) · memory (encoder)" : "X", "x");
    card.append(
      el(
        "div",
        { class: "shape-diagram" },
        el("div", { class: "shape-box" }, "X", el("span", { class: "shape", text: `(${queries.length} × ${dModel})` })),
        el(
          "p",
          { class: "explain" },
          `One row per token: its ${dModel} numbers entering layer ${layer}${model.norm_position === "pre" ? ` (normalised by ${model.norm} first: pre-norm)` : ""}. ` +
            (cross
              ? `In cross-attention the queries come from the French side (X) and the keys and values from the encoder's output over the ${keys.length} English tokens.`
              : "Queries, keys and values are all computed from the same X: self-attention."),
        ),
      ),
    );
    const X = qkv.x[layer]; // the server's hook_in: what the attention module reads
    const { box, plot } = matrixBox("X", X);
    card.append(el("div", { class: "matrices" }, box));
    pipeline.append(card);
    vectorsPlot(plot, X, queries, "x");
    exported.set("x", { plot, data: { tokens: queries, X } });
  }

  // 2. Q, K, V
  {
    const card = stepCard(n++, "Project to queries, keys and values", "Q = X·W_Q,  K = X·W_K,  V = X·W_V", "qkv");
    card.append(
      el("p", {
        class: "explain",
        text: `Each head has its own W_Q, W_K, W_V (${dModel} × ${dk}): d_k = d_model / h = ${dModel} / ${H} = ${dk}. Query: what am I looking for? Key: what do I contain? Value: what I pass on.`,
      }),
    );
    const row = el("div", { class: "matrices" });
    const parts = [
      ["Q", Q, queries],
      ["K", K, keys],
      ["V", V, keys],
    ];
    const plots = [];
    for (const [name, m, toks] of parts) {
      const { box, plot } = matrixBox(name, m);
      row.append(box);
      plots.push([plot, m, toks, name]);
    }
    card.append(row);
    pipeline.append(card);
    for (const [plot, m, toks, name] of plots) vectorsPlot(plot, m, toks, name);
    exported.set("qkv", { plot: plots[0][0], data: { tokens_q: queries, tokens_k: keys, Q, K, V } });
  }

  // 2b. RoPE
  if (rope) {
    const card = stepCard(n++, "RoPE: rotate q and k by their position", "q′ₘ = R(m)·qₘ,  k′ₙ = R(n)·kₙ", "rope");
    card.append(
      el("p", {
        class: "explain",
        text: "Each pair of dimensions is turned by an angle proportional to the token's position. Their dot product then depends only on the distance m − n. See the RoPE view for the angles.",
      }),
    );
    const row = el("div", { class: "matrices" });
    const a = matrixBox("rotated Q", Qr);
    const b = matrixBox("rotated K", Kr);
    row.append(a.box, b.box);
    card.append(row);
    pipeline.append(card);
    vectorsPlot(a.plot, Qr, queries, "q′");
    vectorsPlot(b.plot, Kr, keys, "k′");
    exported.set("rope", { plot: a.plot, data: { rot_q: Qr, rot_k: Kr } });
  }

  // 3. QKᵀ
  {
    const card = stepCard(n++, "Compare every query with every key", rope ? "Q′K′ᵀ" : "QKᵀ", "qk");
    const { box, plot } = matrixBox("QKᵀ (dot products)", QK);
    card.append(
      el("p", {
        class: "explain",
        text: `Row i, column j: q_i · k_j, a sum of ${dk} products. Big means "this key matches what this query looks for". Computed here from the server's Q and K.`,
      }),
      el("div", { class: "matrices" }, box),
    );
    pipeline.append(card);
    squarePlot(plot, QK, queries, keys, { value: "q·k", diverging: true, colorbarTitle: "q·k" }).then(() =>
      onCellClick(plot),
    );
    exported.set("qk", { plot, data: { QK } });
  }

  // 4. ÷ √dk
  {
    const card = stepCard(n++, `Scale by √dₖ = √${dk} = ${Math.sqrt(dk).toFixed(3)}`, "QKᵀ / √dₖ", "scaled");
    const { box, plot } = matrixBox("scores", scaled);
    card.append(
      el("p", {
        class: "explain",
        text: "Dot products grow with the dimension; dividing by √dₖ keeps the softmax from saturating, so gradients stay useful.",
      }),
      el("div", { class: "matrices" }, box),
      el("p", {
        class: "plot-note",
        text: `Matches the server's captured scores (hook_scores) to ${maxDiff < 5e-4 ? "within rounding" : `max |Δ| = ${maxDiff.toExponential(1)}`}.`,
      }),
    );
    pipeline.append(card);
    squarePlot(plot, scaled, queries, keys, { value: "score", diverging: true, colorbarTitle: "score" }).then(() =>
      onCellClick(plot),
    );
    exported.set("scaled", { plot, data: { scores: scaled, server_scores: serverScores } });
  }

  // 5. mask
  {
    const anyMasked = mask && mask.some((r) => r.some((v) => !v));
    const card = stepCard(n++, "Mask: set forbidden cells to −∞", "scores + mask", "masked");
    const { box, plot } = matrixBox("masked scores", masked);
    card.append(
      el("p", {
        class: "explain",
        text: anyMasked
          ? "A token may not look at the future: cells above the diagonal become −∞ (grey), so the softmax gives them exactly 0."
          : "Nothing is masked here: in this attention every query may look at every key.",
      }),
      el("div", { class: "matrices" }, box),
    );
    pipeline.append(card);
    squarePlot(plot, masked, queries, keys, {
      value: "score",
      diverging: true,
      colorbarTitle: "score",
      masked: true,
    }).then(() => onCellClick(plot));
    exported.set("masked", { plot, data: { masked_scores: masked, mask } });
  }

  // 6. softmax
  {
    const card = stepCard(n++, "Softmax, row by row", "A = softmax(scores)", "softmax");
    const Am = A.map((r, i) => r.map((v, j) => (mask && !mask[i][j] ? null : v)));
    const { box, plot } = matrixBox("attention weights A", Am);
    card.append(
      el("p", {
        class: "explain",
        text: "Each row becomes probabilities: all between 0 and 1, summing to 1. This is the pattern the other views draw.",
      }),
      el("div", { class: "matrices" }, box),
      el("div", { class: "cell-detail", id: "row-detail", "aria-live": "polite" }),
    );
    pipeline.append(card);
    squarePlot(plot, Am, queries, keys, {
      value: "weight",
      zmin: 0,
      zmax: 1,
      colorbarTitle: "weight",
      nullText: "0",
    }).then(() => onCellClick(plot));
    exported.set("softmax", { plot, data: { attention: A } });
  }

  // 7. × V
  {
    const card = stepCard(n++, "Mix the values", "Z = A·V", "z");
    const { box, plot } = matrixBox(`Z, head ${head}`, Z);
    card.append(
      el("p", {
        class: "explain",
        text: "Each query's output is the weighted average of the value vectors, with its row of A as the weights (the server's captured Z of this head).",
      }),
      el("div", { class: "matrices" }, box),
    );
    pipeline.append(card);
    vectorsPlot(plot, Z, queries, "z");
    exported.set("z", { plot, data: { Z } });
  }

  // 8. concat + W_O
  {
    const card = stepCard(n++, "Concatenate the heads, then W_O", "concat(head₀ … head₋₁)·W_O", "concat");
    const concat = queries.map((_, i) => qkv.z[layer].flatMap((Zh) => Zh[i]));
    card.append(
      el(
        "div",
        { class: "shape-diagram" },
        el(
          "div",
          { class: "shape-box" },
          `concat(Z₀ … Z${H - 1})`,
          el("span", { class: "shape", text: `(${queries.length} × ${H}·${dk} = ${queries.length} × ${H * dk})` }),
        ),
        el("span", { class: "op", text: "·" }),
        el("div", { class: "shape-box" }, "W_O", el("span", { class: "shape", text: `(${H * dk} × ${dModel})` })),
        el("span", { class: "op", text: "=" }),
        el(
          "div",
          { class: "shape-box" },
          "attention output",
          el("span", { class: "shape", text: `(${queries.length} × ${dModel})` }),
        ),
        el("span", { class: "op", text: "→" }),
        el("div", { class: "shape-box" }, "Add & Norm", el("span", { class: "shape", text: "x + output" })),
      ),
    );
    const plot = el("div", { class: "plot" });
    card.append(
      plot,
      el("p", {
        class: "plot-note",
        text: `Every head's Z side by side; head ${head}'s band is outlined. W_O mixes the heads back into d_model = ${dModel} numbers per token, which are added to X (the residual connection).`,
      }),
    );
    pipeline.append(card);
    vectorsPlot(plot, concat, queries, "z").then(() =>
      react(plot, plot.data, {
        ...plot.layout,
        shapes: [
          {
            type: "rect",
            xref: "x",
            yref: "paper",
            x0: head * dk - 0.5,
            x1: (head + 1) * dk - 0.5,
            y0: 0,
            y1: 1,
            line: { color: "#E69F00", width: 3 },
          },
        ],
      }),
    );
    exported.set("concat", { plot, data: { concat, heads: H, d_head: dk } });
  }

  // 9. the output after W_O
  if (qkv.out) {
    const card = stepCard(n++, "The attention output, after W_O", "concat(Z)·W_O", "out");
    const out = qkv.out[layer];
    const { box, plot } = matrixBox("output", out);
    card.append(
      el("p", {
        class: "explain",
        text: `One row of ${dModel} numbers per token: what this attention adds to the residual stream (Add & Norm comes next).`,
      }),
      el("div", { class: "matrices" }, box),
    );
    pipeline.append(card);
    vectorsPlot(plot, out, queries, "out");
    exported.set("out", { plot, data: { tokens: queries, out } });
  }

  for (const id of exported.keys()) {
    registerExport(id, {
      filename: () => `attnviz-${state.model}-math-${id}-L${state.layer}H${state.head}`,
      plot: () => exported.get(id).plot,
      data: () => ({ model: state.model, text: state.text, site: s, layer, head, ...exported.get(id).data }),
    });
  }
  renderDetail(-1);
}

/** The arithmetic of one query row, as a table (keyboard: the "Query token" picker). */
function renderDetail(highlightKey) {
  const box = $("#row-detail");
  if (!box || !ctx) return;
  const i = rowIndex();
  const { queries, keys, QK, scaled, masked, A, dk } = ctx;
  clear(box);
  const valid = masked[i].map((v) => v !== null);
  const m = Math.max(...masked[i].filter((v) => v !== null));
  const ex = masked[i].map((v) => (v === null ? 0 : Math.exp(v - m)));
  const sum = ex.reduce((a, b) => a + b, 0);
  box.append(el("div", { text: `query ${i} “${displayToken(queries[i].text)}”: softmax over its row` }));
  const table = el("table", { class: "row-table" });
  table.append(
    el(
      "tr",
      {},
      ["key", "q·k", `÷√${dk}`, "exp(s − max)", "weight"].map((h) => el("th", { text: h })),
    ),
  );
  keys.forEach((t, j) => {
    const tr = el(
      "tr",
      {},
      el("td", { text: `${j} ${displayToken(t.text)}` }),
      el("td", { class: "num", text: fmt(QK[i][j], 3) }),
      el("td", { class: "num", text: valid[j] ? fmt(scaled[i][j], 3) : "−∞ (masked)" }),
      el("td", { class: "num", text: fmt(ex[j], 4) }),
      el("td", { class: "num", text: fmt(A[i][j], 4) }),
    );
    if (j === highlightKey) tr.style.background = "#fff1cc";
    table.append(tr);
  });
  table.append(
    el(
      "tr",
      {},
      el("th", { text: "sum" }),
      el("td"),
      el("td"),
      el("td", { class: "num", text: fmt(sum, 4) }),
      el("td", {
        class: "num",
        text: fmt(
          A[i].reduce((a, b) => a + (b ?? 0), 0),
          4,
        ),
      }),
    ),
  );
  box.append(table);
}

// ---------------------------------------------------------------------------------------
$("#site-select").addEventListener("change", (e) => {
  save({ site: e.target.value, layer: 0, head: 0, row: -1 });
  setupSelectors();
  render();
});
$("#layer-select").addEventListener("change", (e) => {
  save({ layer: Number(e.target.value) });
  render();
});
$("#head-select").addEventListener("change", (e) => {
  save({ head: Number(e.target.value) });
  render();
});
$("#row-select").addEventListener("change", (e) => {
  save({ row: Number(e.target.value) });
  renderDetail(-1);
});
function step(key, delta) {
  if (!data) return;
  const sel = $(`#${key}-select`);
  const value = Math.min(sel.options.length - 1, Math.max(0, state[key] + delta));
  save({ [key]: value });
  sel.value = String(value);
  render();
}
bindKeys({
  "[": () => step("layer", -1),
  "]": () => step("layer", 1),
  ",": () => step("head", -1),
  ".": () => step("head", 1),
});
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text", "target"].includes(k))) run();
  else if (data) {
    setupSelectors();
    render();
  }
});
onProjectorChange(() => render());

run();
