// Attention arithmetic for one head: X → Q, K, V → QKᵀ → ÷√dₖ → mask → softmax → ×V → W_O,
// one card per step (lib/mathsteps.js), from the server's captured tensors. Click a cell, or
// pick a query token, to see the arithmetic of its row.

import * as api from "../lib/api.js";
import { pickSite, siteTokens } from "../lib/attn.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, clear, el, fillSelect } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { drawSteps, headTensors, rowArithmetic } from "../lib/mathsteps.js";
import { PICKER_STATE, attentionPickers, tokenOptions } from "../lib/pickers.js";
import { initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({
  ...INPUT_STATE,
  ...PICKER_STATE,
  row: int(-1), // the query token whose arithmetic is spelled out (-1: the last one)
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
let data = null; // the last /attention response
let shown = null; // the head on the page: headTensors()
const nextRequest = api.latestOnly();

const pickers = attentionPickers(state, {
  siteReset: { row: -1 },
  onChange: (key) => data && (key === "site" ? refresh() : render()),
});

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "decoder",
  allowTarget: true,
  onRun: run,
  onModelChange: () => save({ site: "", layer: 0, head: 0, row: -1 }),
});

async function run() {
  const model = controls.current();
  if (!model) return;
  const signal = nextRequest();
  const include = ["qkv", "scores", "masks"];
  const result = await withStatus(status, "Capturing Q, K, V and scores…", () =>
    api.attentionOn(model, state, include, { signal }),
  );
  if (!result || signal.aborted) return;
  data = result;
  refresh();
}

/** Refill the pickers (a new response, a new site, back / forward), then draw. */
function refresh() {
  setupSelectors();
  render();
}

function setupSelectors() {
  const { site } = pickers.fillFrom(data);
  const { queries } = siteTokens(data, site);
  const row = state.row >= 0 && state.row < queries.length ? state.row : queries.length - 1;
  fillSelect($("#row-select"), tokenOptions(queries), row);
  save({ row: state.row >= 0 ? row : -1 });
}

// ---------------------------------------------------------------------------------------
function render() {
  if (!data) return;
  const pipeline = $("#pipeline");
  clear(pipeline);
  const site = pickSite(data, state.site);
  shown = headTensors(data, controls.current(), site, state.layer, state.head);
  if (!shown) {
    pipeline.append(el("p", { class: "empty", text: "The server sent no Q, K, V for this model." }));
    return;
  }
  const { layer, head } = shown;
  for (const step of drawSteps(pipeline, shown)) {
    if (step.cells) step.drawn.then(() => pickRowOnClick(step.plot));
    registerExport(step.id, {
      filename: () => `attnviz-${state.model}-math-${step.id}-L${state.layer}H${state.head}`,
      plot: () => step.plot,
      data: () => ({ model: state.model, text: state.text, site, layer, head, ...step.data }),
    });
  }
  renderDetail(-1);
}

/** The arithmetic of the picked query row; highlightKey: the column clicked, or -1. */
function renderDetail(highlightKey) {
  const box = $("#row-detail");
  if (!box || !shown) return;
  box.replaceChildren(...rowArithmetic(shown, Number($("#row-select").value), highlightKey));
}

function pickRowOnClick(div) {
  div.on("plotly_click", (ev) => {
    const pt = ev.points && ev.points[0];
    if (!pt) return;
    $("#row-select").value = String(pt.y);
    save({ row: Number(pt.y) });
    renderDetail(Number(pt.x));
  });
}

// ---------------------------------------------------------------------------------------
$("#row-select").addEventListener("change", (e) => {
  save({ row: Number(e.target.value) });
  renderDetail(-1);
});
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text", "target"].includes(k))) run();
  else if (data) refresh();
});
onProjectorChange(() => render());

run();
