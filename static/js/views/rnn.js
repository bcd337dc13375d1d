// Before transformers: an RNN translator from the server's captured tensors (POST /rnn/unroll).
// The states as the columns of a heatmap with the cell's equations and one step spelled out,
// the gates step by step, the gradient norms ‖∂loss/∂hₜ‖ beside a companion RNN's (log
// scale), and the RNN's alignment beside a transformer's mean cross-attention on the same pair.

import * as api from "../lib/api.js";
import { meanHeads } from "../lib/attn.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, $$, clear, el, fillSelect, fmt } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { DIVERGING, OKABE_ITO, SEQUENTIAL } from "../lib/palette.js";
import { fontSize, plotlyText, purge, react, tokenHeatmap, tokenTicks } from "../lib/plots.js";
import { drawGradients, gradientsOf } from "../lib/rnnpanels.js";
import {
  CELL_NAME,
  GATE_LABEL,
  SHOWN_GATES,
  chunkedNorm,
  formula,
  norm,
  previousState,
  stepMeans,
  symbols,
  unitArithmetic,
} from "../lib/recurrence.js";
import { bindKeys, initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, str, urlState } from "../lib/state.js";
import { displayToken } from "../lib/tokens.js";

initShell();
initExports(showError);

const state = urlState({
  ...INPUT_STATE,
  compare: str(""), // the RNN whose gradient norms are drawn beside (""/none: none)
  transformer: str(""), // the seq2seq transformer of the side-by-side alignment
  stack: str("encoder"),
  show: str("h"), // h, or the LSTM's cell state c
  step: int(-1), // the step spelled out (-1: the last)
  unit: int(-1), // its unit (-1: the one with the largest |value| at that step)
  paths: str("recurrence"),
  tlayer: int(-1), // the transformer's layer (-1: the mean of its layers)
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
const nextRequest = api.latestOnly();
const NONE = "none";
const MONO = "ui-monospace, 'DejaVu Sans Mono', monospace";

let data = null; // the /rnn/unroll answer
let translations = null; // {rnn, transformer}: /generate outputs
let crossAttention = null; // the transformer's /attention answer on the same pair

// No sentence in the URL: the first preset, which every translator translates (the long one,
// where both fail, is a preset for the gradient figure).
const controls = await setupControls(state, {
  filter: (m) => m.architecture === "rnn",
  prefer: (m) => m.cell !== "tanh",
  allowTarget: true,
  onRun: run,
  onModelChange: () => save({ compare: "", show: "h", step: -1, unit: -1 }),
});
const everyModel = controls.models.length ? await api.listModels() : [];

// ---------------------------------------------------------------------------------------
// the comparison pickers: another RNN for the gradients, a transformer for the alignment
function fillComparisons(model) {
  const others = controls.models.filter((m) => m.id !== model.id);
  const companion = others.find((m) => (model.cell === "tanh") !== (m.cell === "tanh")) || others[0] || { id: NONE };
  const compare = state.compare === NONE || others.some((m) => m.id === state.compare) ? state.compare : companion.id;
  fillSelect(
    $("#compare-select"),
    [
      ...others.map((m) => ({ value: m.id, label: `${m.id} (${CELL_NAME[m.cell] || m.cell})` })),
      { value: NONE, label: "none" },
    ],
    compare,
  );
  const transformers = everyModel.filter((m) => m.architecture !== "rnn" && m.kind === "seq2seq");
  const preferred = transformers.find((m) => m.id === "seq2seq-en-fr") || transformers[0] || { id: NONE };
  const transformer = transformers.some((m) => m.id === state.transformer) ? state.transformer : preferred.id;
  fillSelect(
    $("#transformer-select"),
    transformers.length
      ? transformers.map((m) => ({ value: m.id, label: m.id }))
      : [{ value: NONE, label: "none loaded" }],
    transformer,
  );
  save({ compare, transformer });
}

const compareId = () => (state.compare && state.compare !== NONE ? state.compare : null);
const transformerId = () => (state.transformer && state.transformer !== NONE ? state.transformer : null);

// ---------------------------------------------------------------------------------------
async function run() {
  const model = controls.current();
  if (!model) return;
  fillComparisons(model);
  const signal = nextRequest();
  const body = { model: model.id, text: state.text };
  if (state.target) body.target = state.target;
  if (compareId()) body.compare = compareId();
  const other = transformerId();
  const translate = (id) => api.generate({ model: id, text: state.text, max_new_tokens: 64 }, { signal });
  const result = await withStatus(status, "Unrolling the recurrence and measuring gradients…", () =>
    Promise.all([api.unroll(body, { signal }), translate(model.id), other ? translate(other) : null]),
  );
  if (!result || signal.aborted) return;
  const [unrolled, rnnOut, transformerOut] = result;
  data = unrolled;
  translations = { rnn: rnnOut.output.text, transformer: transformerOut && transformerOut.output.text };
  crossAttention = null;
  render();
  if (other) {
    // the same pair for both: the target given, else the RNN's own translation
    const pair = { model: other, text: state.text };
    const target = state.target || translations.rnn;
    if (target) pair.target = target;
    const att = await withStatus(status, "The transformer on the same pair…", () => api.attention(pair, { signal }));
    if (!att || signal.aborted) return;
    crossAttention = att;
  }
  renderSideBySide();
}

function render() {
  if (!data) return;
  const lstm = data.cell === "lstm";
  $("#show-field").hidden = !lstm;
  if (!lstm && state.show !== "h") save({ show: "h" });
  for (const r of $$('input[name="stack"]')) r.checked = r.value === state.stack;
  for (const r of $$('input[name="show"]')) r.checked = r.value === state.show;
  for (const r of $$('input[name="paths"]')) r.checked = r.value === state.paths;
  renderFormula();
  renderStates();
  renderGates();
  renderGradients();
}

// ---------------------------------------------------------------------------------------
// (a) the recurrence unrolled
const stackName = () => (state.stack === "decoder" ? "decoder" : "encoder");
const stackSteps = () => data[stackName()];
const stackTokens = () => (stackName() === "decoder" ? data.tokens.target : data.tokens.source);
const shownMatrix = () => (state.show === "c" && stackSteps().gates.c ? stackSteps().gates.c : stackSteps().h);
const stepIndex = () => {
  const T = stackTokens().length;
  return state.step >= 0 && state.step < T ? state.step : T - 1;
};
function unitIndex(t) {
  const row = shownMatrix()[t];
  if (state.unit >= 0 && state.unit < row.length) return state.unit;
  let best = 0;
  row.forEach((v, k) => {
    if (Math.abs(v) > Math.abs(row[best])) best = k;
  });
  return best;
}

function renderFormula() {
  const box = $("#formula");
  clear(box);
  for (const [eq, says] of formula(data.cell, stackName())) {
    box.append(el("div", { class: "eq" }, el("span", { text: eq }), el("span", { class: "eq-note", text: says })));
  }
}

/** A one-line summary of unit k of step t, for the hover. */
function hoverLine(steps, t, k) {
  const prev = previousState(steps, stackName(), t, k, data.decoder.s0);
  const { rows, captured } = unitArithmetic(data.cell, data.chunks, steps, stackName(), t, k, prev);
  const parts = rows.map(([symbol, , value]) => `${symbol} = ${fmt(value, 3)}`);
  return `${parts.join("<br>")}<br>captured: ${fmt(captured, 3)}`;
}

function renderStates() {
  const steps = stackSteps();
  const tokens = stackTokens();
  const M = shownMatrix();
  const T = M.length;
  const d = M[0].length;
  const z = Array.from({ length: d }, (_, k) => M.map((row) => row[k]));
  const labels = tokens.map((tok) => plotlyText(displayToken(tok.text)));
  const s = symbols(stackName());
  const what = state.show === "c" ? "cell state c" : `state ${s.h}`;
  const custom = z.map((row, k) =>
    row.map((_, t) => `${s.step} = ${t} “${labels[t]}” · unit ${k}<br>${hoverLine(steps, t, k)}`),
  );
  let zmax = 1;
  if (state.show === "c") for (const row of M) for (const v of row) zmax = Math.max(zmax, Math.abs(v));
  const t = stepIndex();
  const k = unitIndex(t);
  const box = (x0, x1, y0, y1, width) => ({
    type: "rect",
    x0,
    x1,
    y0,
    y1,
    line: { color: OKABE_ITO[1], width },
    fillcolor: "rgba(0,0,0,0)",
  });
  const size = fontSize();
  const drawn = react(
    $("#states"),
    [
      {
        type: "heatmap",
        z,
        customdata: custom,
        hovertemplate: "%{customdata}<extra></extra>",
        colorscale: DIVERGING,
        zmin: -zmax,
        zmax,
        // on top: beside the bar, the title sat against the middle tick label
        colorbar: { title: { text: state.show === "c" ? "c" : s.h, side: "top" }, thickness: 14, len: 0.9 },
      },
    ],
    {
      height: Math.max(380, Math.min(620, d * 2 + 160)),
      margin: { l: 60, r: 10, t: 36, b: 90 },
      title: {
        text: `${plotlyText(data.model)} · ${stackName()} · ${what}: ${T} steps × ${d} units`,
        x: 0,
        xanchor: "left",
        font: { size: size + 1 },
      },
      xaxis: {
        tickmode: "array",
        tickvals: tokens.map((_, i) => i),
        ticktext: tokenTicks(tokens),
        tickangle: -50,
        tickfont: { family: MONO, size: size - (T > 30 ? 2 : 0) },
        title: { text: stackName() === "encoder" ? "English token read at step t" : "decoder input at step i" },
        showgrid: false,
        zeroline: false,
      },
      yaxis: { title: { text: "unit of the state" }, autorange: "reversed", showgrid: false, zeroline: false },
      shapes: [box(t - 0.5, t + 0.5, -0.5, d - 0.5, 2), box(t - 0.5, t + 0.5, k - 0.5, k + 0.5, 2.5)],
    },
  );
  drawn.then((div) => {
    if (div.dataset.bound) return;
    div.dataset.bound = "1";
    div.on("plotly_click", (ev) => {
      const pt = ev.points && ev.points[0];
      if (!pt) return;
      save({ step: Number(pt.x), unit: Number(pt.y) });
      renderStates();
    });
  });
  renderStepDetail(t, k);
}

function renderStepDetail(t, k) {
  const steps = stackSteps();
  const tokens = stackTokens();
  const stack = stackName();
  const s = symbols(stack);
  const prev = previousState(steps, stack, t, k, data.decoder.s0);
  const { rows, recomputed, captured } = unitArithmetic(data.cell, data.chunks, steps, stack, t, k, prev);
  const prevState = t > 0 ? steps.h[t - 1] : stack === "decoder" ? data.decoder.s0 : null;
  const input = stack === "encoder" ? "xₜ, the token's embedding" : "yᵢ₋₁, the previous French token's embedding";
  const box = $("#step-detail");
  clear(box);
  const tok = tokens[t];
  box.append(
    el("strong", { text: `Step ${s.step} = ${t}: reads “${displayToken(tok.text)}” (id ${tok.id})` }),
    el(
      "table",
      { class: "row-table" },
      el("tr", {}, el("th", { text: "vector" }), el("th", { text: "what it is" }), el("th", { text: "norm" })),
      el(
        "tr",
        {},
        el("td", { text: stack === "encoder" ? "xₜ" : "yᵢ₋₁" }),
        el("td", { text: input }),
        el("td", { text: fmt(norm(steps.x[t]), 3) }),
      ),
      el(
        "tr",
        {},
        el("td", { text: s.prev }),
        el("td", { text: prevState ? "the state before this step" : "the state before the first token: zeros" }),
        el("td", { text: fmt(prevState ? norm(prevState) : 0, 3) }),
      ),
      el(
        "tr",
        {},
        el("td", { text: `Wₓ ${s.x} + bₓ` }),
        el("td", { text: "what the input contributes (every gate's block)" }),
        el("td", { text: fmt(chunkedNorm(steps.wx[t]), 3) }),
      ),
      el(
        "tr",
        {},
        el("td", { text: `Wₕ ${s.prev} + bₕ` }),
        el("td", { text: "what the past contributes (every gate's block)" }),
        el("td", { text: fmt(chunkedNorm(steps.wh[t]), 3) }),
      ),
      el(
        "tr",
        {},
        el("td", { text: s.h }),
        el("td", { text: "the new state" }),
        el("td", { text: fmt(norm(steps.h[t]), 3) }),
      ),
    ),
    el("strong", { text: `Unit ${k} of this step, from the captured parts:` }),
    el(
      "table",
      { class: "row-table" },
      rows.map(([symbol, how, value]) =>
        el("tr", {}, el("td", { text: symbol }), el("td", { text: how }), el("td", { text: fmt(value, 4) })),
      ),
    ),
    el("span", {
      text: `Recomputed ${s.h}[${k}] = ${fmt(recomputed, 4)}; the server captured ${fmt(captured, 4)}.`,
    }),
  );
}

function moveStep(delta) {
  if (!data) return false;
  const t = stepIndex() + delta;
  if (t < 0 || t >= stackTokens().length) return true;
  save({ step: t });
  renderStates();
  return true;
}

// ---------------------------------------------------------------------------------------
// (b) the gates
// The means often lie on top of each other: each gate its own dash pattern and marker, not
// only a hue, and the first line drawn wider with open markers so one on top leaves it visible.
const GATE_LINE = [
  { dash: "solid", width: 4, symbol: "circle-open", size: 12 },
  { dash: "dash", width: 2.5, symbol: "square", size: 7 },
  { dash: "dot", width: 2.5, symbol: "diamond", size: 7 },
];

function renderGates() {
  const div = $("#gates");
  const note = $("#gates-note");
  const gates = SHOWN_GATES[data.cell] || [];
  if (!gates.length) {
    purge(div);
    div.hidden = true;
    note.textContent =
      "The plain RNN has no gates: every step computes its whole new state from the token and the old state, " +
      "so nothing decides what to keep. Pick an LSTM (or GRU) model to see its gates.";
    return;
  }
  div.hidden = false;
  const steps = stackSteps();
  const tokens = stackTokens();
  const T = tokens.length;
  const d = steps.h[0].length;
  const sigmoids = gates.filter((g) => g !== "c");
  const n = gates.length;
  const width = 0.9 / n;
  const traces = [];
  const layout = {
    height: 620,
    margin: { l: 55, r: 10, t: 20, b: 80 },
    legend: { orientation: "h", y: 1.1, x: 0 },
    xaxis: {
      domain: [0, 0.9],
      tickmode: "array",
      tickvals: tokens.map((_, i) => i),
      ticktext: tokenTicks(tokens),
      tickfont: { family: MONO, size: fontSize() - 2 },
      tickangle: -50,
      gridcolor: "#eceef2",
    },
    yaxis: { domain: [0.74, 1], range: [0, 1.02], title: { text: "mean over units" }, gridcolor: "#eceef2" },
    annotations: [],
  };
  sigmoids.forEach((g, j) => {
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name: GATE_LABEL[g],
      x: tokens.map((_, i) => i),
      y: stepMeans(steps.gates[g]),
      line: { color: OKABE_ITO[j], width: GATE_LINE[j].width, dash: GATE_LINE[j].dash },
      marker: { symbol: GATE_LINE[j].symbol, size: GATE_LINE[j].size },
      customdata: tokens.map((tok) => plotlyText(displayToken(tok.text))),
      hovertemplate: `${GATE_LABEL[g]}<br>step %{x} “%{customdata}”: mean %{y:.3f}<extra></extra>`,
    });
  });
  gates.forEach((g, j) => {
    const axis = j + 2;
    const M = steps.gates[g];
    const cell = g === "c";
    let zmax = 1;
    if (cell) for (const row of M) for (const v of row) zmax = Math.max(zmax, Math.abs(v));
    traces.push({
      type: "heatmap",
      xaxis: `x${axis}`,
      yaxis: "y2",
      z: Array.from({ length: d }, (_, k) => M.map((row) => row[k])),
      colorscale: cell ? DIVERGING : SEQUENTIAL,
      zmin: cell ? -zmax : 0,
      zmax,
      showscale: cell || j === 0,
      colorbar: cell
        ? { title: { text: "c" }, x: 1.0, y: 0.28, len: 0.56, thickness: 12 }
        : { title: { text: "gate" }, x: 0.915, y: 0.28, len: 0.56, thickness: 12 },
      hovertemplate: `${GATE_LABEL[g]}<br>step %{x} · unit %{y}: %{z:.3f}<extra></extra>`,
    });
    const x0 = j * width + 0.012;
    layout[`xaxis${axis}`] = {
      domain: [x0, x0 + width - 0.024],
      anchor: "y2",
      tickmode: "array",
      tickvals: tokens.map((_, i) => i),
      ticktext: tokenTicks(tokens),
      tickfont: { family: MONO, size: fontSize() - 3 },
      tickangle: -60,
      showgrid: false,
      zeroline: false,
    };
    layout.annotations.push({
      text: GATE_LABEL[g],
      xref: "paper",
      yref: "paper",
      x: x0 + (width - 0.024) / 2,
      y: 0.6,
      showarrow: false,
      font: { size: fontSize() },
    });
  });
  layout.yaxis2 = {
    domain: [0, 0.56],
    autorange: "reversed",
    title: { text: "unit" },
    showgrid: false,
    zeroline: false,
  };
  react(div, traces, layout);
  const means = Object.fromEntries(sigmoids.map((g) => [g, stepMeans(steps.gates[g])]));
  const avg = (v) => v.reduce((a, b) => a + b, 0) / v.length;
  note.textContent =
    `${CELL_NAME[data.cell]}, ${stackName()}, ${T} steps: on average ` +
    sigmoids.map((g) => `${GATE_LABEL[g]} ${fmt(avg(means[g]), 2)}`).join(", ") +
    (data.cell === "lstm"
      ? ". A forget gate near 1 carries the cell state (and its gradient) on to the next step; near 0 it wipes it."
      : ". An update gate near 1 keeps the old state; near 0 the candidate replaces it.");
}

// ---------------------------------------------------------------------------------------
// (c) the gradient norms (lib/rnnpanels.js: the lesson draws the same figure)
function gradientSeries() {
  return gradientsOf(data);
}

function renderGradients() {
  $("#gradients-note").textContent = drawGradients($("#gradients"), data, state.paths);
}

// ---------------------------------------------------------------------------------------
// (d) side by side
function transformerMatrix() {
  const layers = crossAttention.attention["decoder.cross"].map((heads) => meanHeads(heads));
  const L = layers.length;
  const layer = state.tlayer >= 0 && state.tlayer < L ? state.tlayer : -1;
  fillSelect(
    $("#tlayer-select"),
    [{ value: -1, label: "mean of all layers" }, ...layers.map((_, i) => ({ value: i, label: `layer ${i}` }))],
    layer,
  );
  if (layer >= 0) return { z: layers[layer], label: `layer ${layer}, mean of heads` };
  const z = layers[0].map((row, i) => row.map((_, j) => layers.reduce((acc, m) => acc + m[i][j], 0) / L));
  return { z, label: `mean of ${L} layers × heads` };
}

function renderSideBySide() {
  if (!data) return;
  const model = controls.current();
  const rows = data.tokens.target.map((t, i) => ({ ...t, index: i }));
  const cols = data.tokens.source.map((t, i) => ({ ...t, index: i }));
  const common = {
    zmin: 0,
    zmax: 1,
    rowTitle: "French position",
    colTitle: "English token",
    yLabel: "French (decoder input)",
    xLabel: "English source",
  };
  tokenHeatmap($("#align-rnn"), data.alignment, {
    ...common,
    rows,
    cols,
    title: `${data.model} (${CELL_NAME[data.cell]})`,
  });
  const box = $("#translations");
  clear(box);
  const line = (who, text) =>
    el("p", { class: "translation" }, el("span", { class: "who", text: who }), el("span", { text: text || "—" }));
  box.append(line(`${model.id} (${CELL_NAME[data.cell]}) translates:`, translations.rnn));
  const target = state.target || translations.rnn;
  if (crossAttention) {
    box.append(line(`${crossAttention.model} (transformer) translates:`, translations.transformer));
    const { z, label } = transformerMatrix();
    tokenHeatmap($("#align-transformer"), z, {
      ...common,
      rows: crossAttention.tokens.target.map((t, i) => ({ ...t, index: i })),
      cols: crossAttention.tokens.source.map((t, i) => ({ ...t, index: i })),
      title: `${crossAttention.model}: ${label}`,
    });
    $("#pair-note").textContent =
      `Both models read the same pair, teacher-forced: “${state.text}” → “${target}” ` +
      `(${state.target ? "the target you gave" : "the RNN's own translation"}). Row i: where each looked while predicting the French token after position i.`;
  } else {
    purge($("#align-transformer"));
    $("#pair-note").textContent = transformerId()
      ? "Loading the transformer…"
      : "No seq2seq transformer is loaded on this server to compare with.";
  }
}

// ---------------------------------------------------------------------------------------
for (const [name, key] of [
  ["stack", "stack"],
  ["show", "show"],
  ["paths", "paths"],
]) {
  for (const r of $$(`input[name="${name}"]`)) {
    r.addEventListener("change", () => {
      save({ [key]: r.value, ...(key === "paths" ? {} : { step: -1, unit: -1 }) });
      if (!data) return;
      if (key === "paths") renderGradients();
      else render();
    });
  }
}
$("#compare-select").addEventListener("change", (e) => {
  save({ compare: e.target.value });
  run();
});
$("#transformer-select").addEventListener("change", (e) => {
  save({ transformer: e.target.value, tlayer: -1 });
  run();
});
$("#tlayer-select").addEventListener("change", (e) => {
  save({ tlayer: Number(e.target.value) });
  renderSideBySide();
});
bindKeys({
  ArrowLeft: (e) => (e.target instanceof HTMLInputElement ? false : moveStep(-1)),
  ArrowRight: (e) => (e.target instanceof HTMLInputElement ? false : moveStep(1)),
});
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text", "target", "compare", "transformer"].includes(k))) run();
  else if (data) {
    render();
    renderSideBySide();
  }
});
onProjectorChange(() => {
  render();
  renderSideBySide();
});

const base = () => ({ model: state.model, text: state.text, target: state.target || null });
registerExport("states", {
  filename: () => `attnviz-${state.model}-rnn-${stackName()}-${state.show}`,
  plot: () => $("#states"),
  data: () =>
    data && {
      ...base(),
      cell: data.cell,
      stack: stackName(),
      shown: state.show,
      tokens: stackTokens(),
      chunks: data.chunks,
      steps: stackSteps(),
    },
});
registerExport("gates", {
  filename: () => `attnviz-${state.model}-rnn-gates-${stackName()}`,
  plot: () => $("#gates"),
  data: () =>
    data && { ...base(), cell: data.cell, stack: stackName(), tokens: stackTokens(), gates: stackSteps().gates },
});
registerExport("gradients", {
  filename: () => `attnviz-${state.model}-rnn-gradients`,
  plot: () => $("#gradients"),
  data: () => data && { ...base(), tokens: data.tokens, series: gradientSeries() },
});
registerExport("align-rnn", {
  filename: () => `attnviz-${state.model}-rnn-alignment`,
  plot: () => $("#align-rnn"),
  data: () => data && { ...base(), tokens: data.tokens, alignment: data.alignment, translation: translations.rnn },
});
registerExport("align-transformer", {
  filename: () => `attnviz-${state.transformer}-cross-attention-mean`,
  plot: () => $("#align-transformer"),
  data: () =>
    crossAttention && {
      ...base(),
      model: crossAttention.model,
      tokens: crossAttention.tokens,
      layer: state.tlayer,
      mean_cross_attention: transformerMatrix().z,
      translation: translations.transformer,
    },
});

if (controls.models.length) run();
