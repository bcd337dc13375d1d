// RoPE made visible: the angle table, one query pair rotating with position, and the
// relative-position score matrix (/rope/relative), constant along its diagonals, beside the
// same matrix for a model with sinusoidal positions, where it is not. Each model's own RoPE:
// its base and its pairing (which dimensions turn together: neighbours (2i, 2i+1) as in
// RoFormer, or halves (i, i + d/2) as in Hugging Face's Llama family). Only the head shown is
// fetched (its q and k, binary), so a 512-token input costs one head, not every head.

import * as api from "../lib/api.js";
import { setupControls } from "../lib/controls.js";
import { $, $$, fillSelect, fmt } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { CYCLIC, DIVERGING, OKABE_ITO } from "../lib/palette.js";
import { attentionPickers, tokenOptions } from "../lib/pickers.js";
import { fontSize, matrixHeatmap, react } from "../lib/plots.js";
import { additiveNote, relativeNote, relativePlot } from "../lib/ropepanels.js";
import { bindKeys, initShell, onProjectorChange, showError, withProgress, withStatus } from "../lib/shell.js";
import { int, str, urlState } from "../lib/state.js";
import { labelTokens, tokenLabel } from "../lib/tokens.js";

initShell();
initExports(showError);

const state = urlState({
  model: str(""),
  text: str(""),
  layer: int(0),
  head: int(0),
  query: int(-1), // token index; -1: the last token
  key: int(-1), // -1: the token before it
  pair: int(0),
  m: int(-1), // where the query is placed; -1: at its own position in the sentence
  n: int(-1), // where the key is placed; -1: at its own position
  positions: int(32),
  mode: str("wrap"),
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
const POSITION_CHOICES = [16, 32, 64, 128];
const COMPARE_WORDS = 40;
const FIRST_WORDS = new RegExp(`^(\\s*\\S+){0,${COMPARE_WORDS}}`);

let tokens = null; // the sentence's tokens
let qkv = null; // the head shown: {q, k, rot_q, rot_k} as Mats [T][d_head]
let fetchedFor = ""; // the request qkv answers
let rope = null; // {angles [P][d/2], frequencies, base, d_head}
let relative = null;
let relativeSin = null;
let compareModel = null;

const pickers = attentionPickers(state, {
  onChange: async () => {
    if (!tokens) return;
    if (await loadHead()) renderPair();
    loadRelative();
  },
});

const POSITIONS_IN_WORDS = {
  learned: "adds a learned vector to each token's embedding, one per position",
  sinusoidal: "adds sine and cosine waves to the embeddings",
  none: "has no position information at all",
};
const controls = await setupControls(state, {
  filter: (m) => m.positional === "rope",
  unfit: (m) =>
    `${m.id} has no RoPE: it ${POSITIONS_IN_WORDS[m.positional] || `uses ${m.positional} positions`}, so ` +
    "nothing rotates. The Positions view shows what it does instead; here is a model that rotates.",
  none: "No model on this server uses RoPE. The Positions view shows how the others encode positions.",
  onRun: run,
  onModelChange: () => save({ layer: 0, head: 0, query: -1, key: -1, pair: 0, m: -1, n: -1 }),
});
if (controls.models.length) {
  const all = await api.listModels().catch(() => []);
  compareModel = all.find((m) => m.positional === "sinusoidal") || all.find((m) => m.positional === "learned") || null;
}

// ---------------------------------------------------------------------------------------
const qIndex = () => (state.query >= 0 && state.query < tokens.length ? state.query : tokens.length - 1);
const kIndex = () => (state.key >= 0 && state.key < tokens.length ? state.key : Math.max(0, tokens.length - 2));
const P = () => (POSITION_CHOICES.includes(state.positions) ? state.positions : 32);
// The positions the pair figure places q and k at: the sliders', else the tokens' own.
const placed = (v, own) => Math.min(v >= 0 ? v : own, P() - 1);
const mPos = () => placed(state.m, qIndex());
const nPos = () => placed(state.n, kIndex());

async function run() {
  const model = controls.current();
  if (!model) return;
  fetchedFor = "";
  const result = await withStatus(status, "Loading angles and vectors…", () =>
    Promise.all([api.positions(model.id, Math.min(P(), model.max_len)), api.tokenize(model.id, state.text)]),
  );
  if (!result) return;
  const [pos, tok] = result;
  rope = pos.rope;
  tokens = labelTokens(tok.tokens);
  pickers.fill({ layers: model.n_layers, heads: model.n_heads, layer: state.layer, head: state.head });
  if (!(await loadHead())) return;
  setupSelectors(model);
  renderAngles();
  renderPair();
  await loadRelative();
}

/** The q and k (and their rotated forms) of the head shown, fetched unless already here. */
async function loadHead() {
  const model = controls.current();
  const body = { model: model.id, text: state.text, layers: [state.layer], heads: [state.head], include: ["qkv"] };
  const key = JSON.stringify(body);
  if (key === fetchedFor) return true;
  const answer = await withProgress(status, "Capturing q and k…", () => api.attentionBinary(body));
  if (!answer) return false;
  const parts = answer.qkv["decoder.self"] || answer.qkv["encoder.self"];
  qkv = Object.fromEntries(["q", "k", "rot_q", "rot_k"].filter((p) => parts[p]).map((p) => [p, parts[p].matrix(0, 0)]));
  fetchedFor = key;
  return true;
}

/** The two dimensions pair i turns: (2i, 2i+1) for interleaved pairs, (i, i + d/2) for halves. */
function pairDims(i) {
  return rope && rope.pairing === "halves" ? [i, i + rope.d_head / 2] : [2 * i, 2 * i + 1];
}

/** Row t of a Mat, as the two coordinates of pair i. */
function pairOf(mat, t, i) {
  const [a, b] = pairDims(i);
  return [mat.data[t * mat.cols + a], mat.data[t * mat.cols + b]];
}

function setupSelectors(model) {
  fillSelect($("#query-select"), tokenOptions(tokens), qIndex());
  fillSelect($("#key-select"), tokenOptions(tokens), kIndex());
  fillSelect(
    $("#positions-select"),
    POSITION_CHOICES.filter((p) => p <= model.max_len).map((p) => ({ value: p, label: String(p) })),
    P(),
  );
  const pairs = model.d_head / 2;
  fillSelect(
    $("#pair-select"),
    Array.from({ length: pairs }, (_, i) => ({
      value: i,
      label: `${i} (θ = ${rope ? fmt(rope.frequencies[i], 4) : "?"} rad / position)`,
    })),
    Math.min(state.pair, pairs - 1),
  );
  save({ pair: Math.min(state.pair, pairs - 1) });
  for (const [id, at] of [
    ["m", mPos()],
    ["n", nPos()],
  ]) {
    const slider = $(`#${id}-slider`);
    slider.max = String(P() - 1);
    slider.value = String(at);
    $(`#${id}-value`).textContent = slider.value;
  }
  for (const r of $$('input[name="angle-mode"]')) r.checked = r.value === state.mode;
}

// ---------------------------------------------------------------------------------------
function renderAngles() {
  if (!rope) return;
  const wrap = state.mode !== "cos";
  const TWO_PI = 2 * Math.PI;
  const z = rope.angles.map((row) => row.map((a) => (wrap ? ((a % TWO_PI) + TWO_PI) % TWO_PI : Math.cos(a))));
  const half = rope.d_head / 2;
  $("#angles-note").textContent =
    `This model: base ${fmt(rope.base, 0)}, d_head ${rope.d_head}, so ${half} pairs turning at θᵢ = ` +
    `base^(−2i/d_head). ` +
    (rope.pairing === "halves"
      ? `Pairing: halves — dimension i turns with dimension i + ${half} (Hugging Face's Llama, Mistral, Qwen2).`
      : "Pairing: neighbours — dimensions 2i and 2i + 1 turn together (RoFormer, as trained here).");
  matrixHeatmap($("#angles"), z, {
    colorscale: wrap ? CYCLIC : DIVERGING,
    zmin: wrap ? 0 : -1,
    zmax: wrap ? TWO_PI : 1,
    value: wrap ? "angle (rad)" : "cos",
    xLabel:
      rope.pairing === "halves" ? `pair i (dimensions i, i + ${rope.d_head / 2})` : "pair i (dimensions 2i, 2i+1)",
    yLabel: "position m",
    height: 380,
    customdata: rope.angles,
    hovertemplate:
      "position %{y}<br>pair %{x}<br>θ·m = %{customdata:.3f} rad<br>" +
      `${wrap ? "mod 2π" : "cos"}: %{z:.3f}<extra></extra>`,
  });
}

function rotate([x, y], a) {
  return [x * Math.cos(a) - y * Math.sin(a), x * Math.sin(a) + y * Math.cos(a)];
}

function renderPair() {
  if (!qkv || !rope) return;
  const i = Number($("#pair-select").value);
  const qi = qIndex();
  const ki = kIndex();
  const qp = pairOf(qkv.q, qi, i);
  const kp = pairOf(qkv.k, ki, i);
  const m = Math.min(mPos(), rope.angles.length - 1);
  const n = Math.min(nPos(), rope.angles.length - 1);
  const rq = Math.hypot(...qp);
  const rk = Math.hypot(...kp);
  const R = Math.max(rq, rk, 1e-6) * 1.25;
  const circle = (r) => {
    const xs = [];
    const ys = [];
    for (let t = 0; t <= 64; t++) {
      xs.push(r * Math.cos((t / 64) * 2 * Math.PI));
      ys.push(r * Math.sin((t / 64) * 2 * Math.PI));
    }
    return { xs, ys };
  };
  const path = rope.angles.map((row) => rotate(qp, row[i]));
  const qm = rotate(qp, rope.angles[m][i]);
  const kn = rotate(kp, rope.angles[n][i]);
  const cq = circle(rq);
  const ck = circle(rk);
  const traces = [
    {
      type: "scatter",
      mode: "lines",
      x: cq.xs,
      y: cq.ys,
      line: { color: "#E69F00", dash: "dot", width: 1 },
      hoverinfo: "skip",
      showlegend: false,
    },
    {
      type: "scatter",
      mode: "lines",
      x: ck.xs,
      y: ck.ys,
      line: { color: "#0072B2", dash: "dot", width: 1 },
      hoverinfo: "skip",
      showlegend: false,
    },
    {
      type: "scatter",
      mode: "markers",
      name: "query at positions 0…",
      x: path.map((p) => p[0]),
      y: path.map((p) => p[1]),
      marker: { size: 7, color: path.map((_, j) => j), colorscale: "Viridis", showscale: false },
      customdata: path.map((_, j) => j),
      hovertemplate: "query at position %{customdata}<extra></extra>",
    },
  ];
  // The server's own rotated query at the token's real position, as a check.
  if (qkv.rot_q) {
    const r = pairOf(qkv.rot_q, qi, i);
    traces.push({
      type: "scatter",
      mode: "markers",
      name: `server's rot_q at its position ${qi}`,
      x: [r[0]],
      y: [r[1]],
      marker: { size: 15, symbol: "circle-open", color: "#D55E00", line: { width: 2.5 } },
      hovertemplate: `captured rot_q (position ${qi})<extra></extra>`,
    });
  }
  // Arrows from the origin (annotation text would sit at the tail, so labels are a trace).
  const arrow = (p, color) => ({
    x: p[0],
    y: p[1],
    ax: 0,
    ay: 0,
    axref: "x",
    ayref: "y",
    xref: "x",
    yref: "y",
    showarrow: true,
    arrowhead: 2,
    arrowsize: 1.2,
    arrowwidth: 3,
    arrowcolor: color,
    text: "",
  });
  traces.push({
    type: "scatter",
    mode: "text",
    x: [qm[0] * 1.12, kn[0] * 1.12],
    y: [qm[1] * 1.12, kn[1] * 1.12],
    text: [`q at m=${m}`, `k at n=${n}`],
    textfont: { color: ["#B36B00", OKABE_ITO[0]], size: fontSize() + 2 },
    textposition: [qm[0] >= 0 ? "middle right" : "middle left", kn[0] >= 0 ? "middle right" : "middle left"],
    hoverinfo: "skip",
    showlegend: false,
  });
  const delta = Math.atan2(qm[1], qm[0]) - Math.atan2(kn[1], kn[0]);
  const dot = qm[0] * kn[0] + qm[1] * kn[1];
  react($("#pair"), traces, {
    height: 400,
    margin: { l: 50, r: 20, t: 10, b: 40 },
    xaxis: {
      range: [-R, R],
      zeroline: true,
      zerolinecolor: "#c4cad5",
      gridcolor: "#f0f1f4",
      title: { text: `dimension ${pairDims(i)[0]}` },
    },
    yaxis: {
      range: [-R, R],
      zeroline: true,
      zerolinecolor: "#c4cad5",
      gridcolor: "#f0f1f4",
      scaleanchor: "x",
      title: { text: `dimension ${pairDims(i)[1]}` },
    },
    legend: { orientation: "h", y: -0.18 },
    annotations: [arrow(qm, "#E69F00"), arrow(kn, OKABE_ITO[0])],
  });
  $("#m-value").textContent = String(m);
  $("#n-value").textContent = String(n);
  const wrapped = Math.atan2(Math.sin(delta), Math.cos(delta));
  const [query, key] = [tokens[qi], tokens[ki]].map((t) => tokenLabel(t));
  const where = (at, own) => (at === own ? "its place in the sentence" : `in the sentence at ${own}`);
  $("#pair-note").textContent =
    `Pair ${i} turns by θ = ${fmt(rope.frequencies[i], 4)} rad per position. ` +
    `Query “${query}” at m = ${m} (${where(m, qi)}), key “${key}” at n = ${n} (${where(n, ki)}): ` +
    `the angle between them is ${fmt(wrapped, 3)} rad, and this pair adds |q||k|cos = ${fmt(dot, 4)} to q·k. ` +
    `Move both sliders by the same amount: the angle, and so the score, stays the same.`;
}

// ---------------------------------------------------------------------------------------
async function loadRelative() {
  const model = controls.current();
  const body = {
    model: model.id,
    text: state.text,
    layer: state.layer,
    head: state.head,
    query: qIndex(),
    key: kIndex(),
    max_position: Math.min(P(), model.max_len),
  };
  const jobs = [api.ropeRelative(body)];
  if (compareModel) {
    // the comparison needs a pair of vectors, not a long input: the text's first words
    // (a small model reads at most its max_len tokens)
    // (the text itself, cut: its characters keep their offsets, so tokens match by them)
    const text = state.text.match(FIRST_WORDS)[0];
    jobs.push(
      api.tokenize(compareModel.id, text).then((t) => {
        const query = sameToken(tokens[body.query], t.tokens, body.query);
        const key = sameToken(tokens[body.key], t.tokens, body.key);
        return api
          .ropeRelative({
            model: compareModel.id,
            text,
            layer: Math.min(state.layer, compareModel.n_layers - 1),
            head: Math.min(state.head, compareModel.n_heads - 1),
            query: query.index,
            key: key.index,
            max_position: Math.min(body.max_position, compareModel.max_len),
          })
          .then((answer) => ({ ...answer, same: query.same && key.same }));
      }),
    );
  }
  const result = await withStatus(status, "Placing q and k at every pair of positions…", () => Promise.all(jobs));
  if (!result) return;
  [relative, relativeSin] = result;
  await relativePlot(
    $("#relative"),
    relative.scores,
    `${relative.model}: “${tokenLabel(relative.query)}” → “${tokenLabel(relative.key)}”`,
  );
  $("#relative-note").textContent = relativeNote(relative.scores);
  if (relativeSin) {
    const pairText = (r) => `“${tokenLabel(r.query)}” → “${tokenLabel(r.key)}”`;
    await relativePlot(
      $("#relative-sin"),
      relativeSin.scores,
      `${relativeSin.model} (${relativeSin.positional}): ${pairText(relativeSin)}`,
    );
    $("#relative-sin-note").textContent =
      (relativeSin.same
        ? `The same tokens, ${pairText(relativeSin)}. `
        : `${relative.model}'s ${pairText(relative)} is not a pair of words ${relativeSin.model} reads ` +
          `(a start token it lacks, or a word cut elsewhere): compared ${pairText(relativeSin)} instead. `) +
      additiveNote(relativeSin.scores);
  } else {
    $("#relative-sin-note").textContent =
      "No model with sinusoidal or learned positions is loaded on this server to compare with.";
  }
}

/**
 * The token of another tokenization of the same text that covers the same characters as
 * `token` ({index, same: true}); a special token or a word cut differently has none: then the
 * token at the same index, or the last ({index, same: false}).
 */
function sameToken(token, others, index) {
  const words = others.map((t, i) => ({ ...t, i })).filter((t) => !t.special);
  const match = token && !token.special && words.find((t) => t.start === token.start && t.end === token.end);
  if (match) return { index: match.i, same: true };
  return { index: Math.min(index, others.length - 1), same: false };
}

// ---------------------------------------------------------------------------------------
for (const key of ["query", "key"]) {
  $(`#${key}-select`).addEventListener("change", (e) => {
    // the sliders follow the token picked (it sits at its own position)
    save({ [key]: Number(e.target.value), [key === "query" ? "m" : "n"]: -1 });
    setupSelectors(controls.current());
    renderPair();
    loadRelative();
  });
}
$("#positions-select").addEventListener("change", (e) => {
  save({ positions: Number(e.target.value) });
  run();
});
$("#pair-select").addEventListener("change", (e) => {
  save({ pair: Number(e.target.value) });
  renderPair();
});
for (const id of ["m", "n"]) {
  $(`#${id}-slider`).addEventListener("input", (e) => {
    save({ [id]: Number(e.target.value) });
    renderPair();
  });
}
for (const r of $$('input[name="angle-mode"]')) {
  r.addEventListener("change", () => {
    save({ mode: r.value });
    renderAngles();
  });
}
function shiftBoth(delta) {
  const max = P() - 1;
  const [m, n] = [mPos() + delta, nPos() + delta];
  if (m < 0 || n < 0 || m > max || n > max) return;
  save({ m, n });
  $("#m-slider").value = String(m);
  $("#n-slider").value = String(n);
  renderPair();
}
bindKeys({ "+": () => shiftBoth(1), "=": () => shiftBoth(1), "-": () => shiftBoth(-1) });
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text", "positions"].includes(k))) run();
  else if (tokens) {
    pickers.fill({
      layers: controls.current().n_layers,
      heads: controls.current().n_heads,
      layer: state.layer,
      head: state.head,
    });
    setupSelectors(controls.current());
    renderAngles();
    loadHead().then((ok) => ok && renderPair());
    loadRelative();
  }
});
onProjectorChange(() => {
  renderAngles();
  renderPair();
  if (relative) loadRelative();
});

const base = () => ({ model: state.model, text: state.text, layer: state.layer, head: state.head });
registerExport("angles", {
  filename: () => `attnviz-${state.model}-rope-angles`,
  plot: () => $("#angles"),
  data: () => ({ ...base(), rope }),
});
registerExport("pair", {
  filename: () => `attnviz-${state.model}-rope-pair${state.pair}`,
  plot: () => $("#pair"),
  data: () => ({
    ...base(),
    pair: state.pair,
    m: mPos(),
    n: nPos(),
    query: tokens && tokens[qIndex()],
    key: tokens && tokens[kIndex()],
  }),
});
registerExport("relative", {
  filename: () => `attnviz-${state.model}-rope-relative`,
  plot: () => $("#relative"),
  data: () => relative,
});
registerExport("relative-sin", {
  filename: () => `attnviz-rope-relative-sinusoidal`,
  plot: () => $("#relative-sin"),
  data: () => relativeSin,
});

if (controls.models.length) run();
