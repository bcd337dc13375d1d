// Attention arithmetic for one head: X → Q, K, V → QKᵀ → ÷√dₖ → mask → softmax → ×V → W_O,
// one card per step (lib/mathsteps.js), from the server's captured tensors. Click a cell, or
// pick a query token, to see the arithmetic of its row.
//
// Only the head shown is fetched (binary: its Q, K, V, Z, scores and weights). Long inputs show
// a window of 24 query rows × 24 key columns, which follows the picked row; ◀ ▶ move it.

import * as api from "../lib/api.js";
import { pickSite, sitesOf, siteTokens } from "../lib/attn.js";
import { modelSites, siteDepth } from "../lib/attnstore.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, clear, el, fillSelect } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import {
  WINDOW,
  drawSteps,
  fetchHead,
  fetchLayerZ,
  headTensors,
  rowArithmetic,
  windowAround,
} from "../lib/mathsteps.js";
import { PICKER_STATE, attentionPickers, tokenOptions } from "../lib/pickers.js";
import { initShell, onProjectorChange, showError, withProgress } from "../lib/shell.js";
import { int, urlState } from "../lib/state.js";

initShell();
initExports(showError);

/** Every head's Z (the concat step) is fetched up to this many attention cells (12 × 512²). */
const LAYER_CELLS = 12 * 512 * 512;

const state = urlState({
  ...INPUT_STATE,
  ...PICKER_STATE,
  row: int(-1), // the query token whose arithmetic is spelled out (-1: the last one)
  keys: int(-1), // the first key column of the window (-1: where the picked row's keys are)
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
let answer = null; // the /attention answer of the head shown (binary, tensors)
let shown = null; // the head on the page: headTensors()
let fetched = null; // {key, answer}: the last answer, by model, input, layer and head
const nextRequest = api.latestOnly();

const pickers = attentionPickers(state, {
  siteReset: { row: -1, keys: -1 },
  onChange: () => answer && load(),
});

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "decoder",
  // an RNN's attention is additive: a small network scores each pair, there is no QKᵀ to spell out
  filter: (m) => m.architecture !== "rnn",
  unfit: (m) =>
    `${m.id} scores with additive attention, eᵢⱼ = vᵀ tanh(W_a sᵢ₋₁ + U_a hⱼ): a small network, not ` +
    "a dot product of queries and keys, so there is no QKᵀ / √dₖ to spell out here. Its steps are in the RNN " +
    "view; here is a transformer.",
  none: "No transformer is loaded on this server: the arithmetic here is a dot-product head's.",
  allowTarget: true,
  onRun: () => {
    fetched = null;
    load();
  },
  onModelChange: () => save({ site: "", layer: 0, head: 0, row: -1, keys: -1 }),
});

/** Fetch the head shown (unless it is the one already here), then draw. */
async function load() {
  const model = controls.current();
  if (!model) return;
  const sites = modelSites(model);
  const site = sites.includes(state.site) ? state.site : sites.includes("decoder.cross") ? "decoder.cross" : sites[0];
  const layer = Math.min(Math.max(0, state.layer), siteDepth(model, site) - 1);
  const head = Math.min(Math.max(0, state.head), model.n_heads - 1);
  const body = { ...api.inputBody(model, state), layers: [layer], heads: [head] };
  const key = JSON.stringify(body);
  if (!fetched || fetched.key !== key) {
    const signal = nextRequest();
    const result = await withProgress(status, "Capturing Q, K, V and scores…", () => fetchHead(body, { signal }));
    if (!result || signal.aborted) return;
    fetched = { key, answer: result, body, model, zAll: null };
  }
  answer = fetched.answer;
  pickers.fill({
    sites,
    site: pickSite(sitesOf(answer), site),
    layers: siteDepth(model, pickSite(sitesOf(answer), site)),
    heads: model.n_heads,
    layer,
    head,
  });
  setupRows();
  render();
}

/** The rows and columns shown: everything for short inputs, else a window around the row. */
function windowOf(site) {
  const { queries, keys } = siteTokens(answer, site);
  return windowAround(queries.length, keys.length, currentRow(queries.length), state.keys);
}

const currentRow = (n) => (state.row >= 0 && state.row < n ? state.row : n - 1);

function setupRows() {
  const site = pickSite(sitesOf(answer), state.site);
  const { queries } = siteTokens(answer, site);
  fillSelect($("#row-select"), tokenOptions(queries), currentRow(queries.length));
}

// ---------------------------------------------------------------------------------------
function render() {
  if (!answer) return;
  const pipeline = $("#pipeline");
  clear(pipeline);
  const site = pickSite(sitesOf(answer), state.site);
  const win = windowOf(site);
  const model = fetched.model;
  shown = headTensors(answer, model, site, state.layer, state.head, win, () => everyZ(site));
  if (!shown) {
    pipeline.append(el("p", { class: "empty", text: "The server sent no Q, K, V for this model." }));
    return;
  }
  renderWindowBar(win);
  const { layer, head } = shown;
  for (const step of drawSteps(pipeline, shown)) {
    if (step.cells) step.drawn.then(() => pickRowOnClick(step.plot, win));
    step.drawn.catch(showError);
    registerExport(step.id, {
      filename: () => `attnviz-${state.model}-math-${step.id}-L${state.layer}H${state.head}`,
      plot: () => step.plot,
      data: () => ({ model: state.model, text: state.text, site, layer, head, window: win, ...step.data }),
    });
  }
  renderDetail(-1);
}

/** Every head's Z of the layer for the concat step, fetched once; null past LAYER_CELLS. */
function everyZ(site) {
  const f = fetched;
  if (!f.zAll) f.zAll = fetchLayerZ(f.model, f.body, f.answer, site, LAYER_CELLS);
  return f.zAll.then((bySite) => (bySite ? bySite[site] : null));
}

function renderWindowBar(win) {
  const bar = $("#window-bar");
  bar.hidden = !shown.windowed;
  if (!shown.windowed) return;
  $("#window-text").textContent =
    `${shown.cross ? "French" : "query"} rows ${win.r0}–${win.r1 - 1} · ${shown.cross ? "English" : "key"} ` +
    `columns ${win.c0}–${win.c1 - 1} of ${shown.nq} × ${shown.nk}`;
}

function moveWindow(axis, delta) {
  if (!shown) return;
  if (axis === "rows") {
    const row = Math.max(0, Math.min(shown.nq - 1, currentRow(shown.nq) + delta));
    save({ row, keys: -1 });
    $("#row-select").value = String(row);
  } else {
    const c0 = Math.max(0, Math.min(shown.nk - (shown.win.c1 - shown.win.c0), shown.win.c0 + delta));
    save({ keys: c0 });
  }
  render();
}

/** The arithmetic of the picked query row; highlightKey: the column clicked (a token index), or -1. */
function renderDetail(highlightKey) {
  const box = $("#row-detail");
  if (!box || !shown) return;
  box.replaceChildren(...rowArithmetic(shown, Number($("#row-select").value), highlightKey));
}

function pickRowOnClick(div, win) {
  div.on("plotly_click", (ev) => {
    const pt = ev.points && ev.points[0];
    if (!pt) return;
    const row = win.r0 + Number(pt.y);
    $("#row-select").value = String(row);
    save({ row });
    renderDetail(win.c0 + Number(pt.x));
  });
}

// ---------------------------------------------------------------------------------------
$("#row-select").addEventListener("change", (e) => {
  const row = Number(e.target.value);
  save({ row, keys: -1 });
  if (shown && shown.windowed && (row < shown.win.r0 || row >= shown.win.r1)) render();
  else renderDetail(-1);
});
$("#rows-back").addEventListener("click", () => moveWindow("rows", -WINDOW));
$("#rows-next").addEventListener("click", () => moveWindow("rows", WINDOW));
$("#keys-back").addEventListener("click", () => moveWindow("keys", -WINDOW));
$("#keys-next").addEventListener("click", () => moveWindow("keys", WINDOW));
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text", "target"].includes(k))) {
    fetched = null;
    load();
  } else if (answer) load();
});
onProjectorChange(() => render());

load();
