// Inside a block (POST /block): the block drawn in the order it ran, Add & Norm per token, the
// three normalisations side by side over a batch of lecture sentences, the FFN's hidden units
// and the residual stream across the stack. The panels are lib/block/ components,
// which the lesson mounts too.

import * as api from "../lib/api.js";
import { pickNorm, renderAddNorm } from "../lib/block/addnorm.js";
import { NORM_LABEL, blockTokens } from "../lib/block/common.js";
import { batchChoices, droppedFrom, renderComparison } from "../lib/block/comparison.js";
import { renderFFN } from "../lib/block/ffn.js";
import { renderOrder } from "../lib/block/order.js";
import { renderResidual } from "../lib/block/residual.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, fillSelect } from "../lib/dom.js";
import { initExports } from "../lib/export.js";
import { tokenOptions } from "../lib/pickers.js";
import { bindKeys, initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, intList, str, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({
  ...INPUT_STATE,
  stack: str(""),
  layer: int(0),
  norm: str(""),
  token: int(-1), // the token whose FFN units are listed (-1: the last)
  unit: int(-1), // the FFN unit followed across the sentence (-1: that token's strongest)
  drop: intList([]), // lecture sentences left out of the comparison's batch (preset indices)
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
const nextRequest = api.latestOnly();
let data = null;

const controls = await setupControls(state, {
  filter: (m) => m.architecture !== "rnn",
  prefer: (m) => m.kind === "encoder",
  allowTarget: true,
  onRun: run,
  onModelChange: () => save({ stack: "", layer: 0, norm: "", token: -1, unit: -1, drop: [] }),
});

const stacksOf = (model) => ({ encoder: ["encoder"], decoder: ["decoder"] })[model.kind] || ["encoder", "decoder"];
const depthOf = (model, stack) =>
  stack === "decoder" && model.kind === "seq2seq" ? (model.n_decoder_layers ?? model.n_layers) : model.n_layers;

const choices = () => batchChoices(controls.current(), state.text, state.drop);

function fillPickers(model) {
  const stacks = stacksOf(model);
  const stack = stacks.includes(state.stack) ? state.stack : stacks[0];
  $("#stack-field").hidden = stacks.length < 2;
  fillSelect(
    $("#stack-select"),
    stacks.map((s) => ({ value: s, label: s })),
    stack,
  );
  const depth = depthOf(model, stack);
  const layer = Math.min(Math.max(0, state.layer), depth - 1);
  fillSelect(
    $("#layer-select"),
    Array.from({ length: depth }, (_, i) => ({ value: i, label: String(i) })),
    layer,
  );
  save({ stack: stacks.length > 1 ? stack : "", layer });
  return { stack, layer };
}

async function run() {
  const model = controls.current();
  if (!model) return;
  const { stack, layer } = fillPickers(model);
  const batch = choices()
    .filter((c) => c.checked)
    .map((c) => c.text);
  const signal = nextRequest();
  const result = await withStatus(status, "Reading the block…", () =>
    api.block(model, { text: state.text, target: state.target, stack, layer, batch }, { signal }),
  );
  if (!result || signal.aborted) return;
  data = result;
  render();
}

function fillDetailPickers() {
  const norms = Object.keys(data.normalization);
  const norm = pickNorm(data, state.norm);
  $("#norm-select").closest("label").hidden = !norms.length;
  fillSelect(
    $("#norm-select"),
    norms.map((n) => ({ value: n, label: `${n} (${NORM_LABEL[data.normalization[n].kind]})` })),
    norm,
  );
  const tokens = blockTokens(data);
  const token = state.token >= 0 && state.token < tokens.length ? state.token : tokens.length - 1;
  $("#token-select").closest("label").hidden = !data.ffn;
  fillSelect($("#token-select"), tokenOptions(tokens), token);
  return { norm, token };
}

/** Each panel in its own task on long inputs (a real LLM's 512 tokens make each a few hundred ms of Plotly):
 * the page answers input in between, and no task runs for seconds. A newer render stops an
 * older one between panels. */
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
const LONG = 64; // tokens: up to this many every panel is drawn in one go, as before
let renders = 0;

async function render() {
  if (!data) return;
  const mine = ++renders;
  const shown = data;
  const { norm, token } = fillDetailPickers();
  const panels = [
    () => renderOrder($("#order-panel"), shown, { norm, onNorm: (n) => pick({ norm: n }) }),
    () => renderResidual($("#residual-panel"), shown),
    () => renderAddNorm($("#norm-panel"), shown, { norm }),
    () =>
      renderComparison($("#compare-panel"), shown, {
        choices: choices(),
        onBatch: (kept) => {
          state.set({ drop: droppedFrom(choices(), kept) }, { push: true, silent: true });
          run();
        },
      }),
    () =>
      renderFFN($("#ffn-panel"), shown, {
        token,
        unit: state.unit,
        onUnit: (u) => pick({ unit: u }, ["ffn"]),
        onToken: (t) => pick({ token: t, unit: -1 }, ["ffn"]),
      }),
  ];
  const long = blockTokens(shown).length > LONG;
  for (const [i, draw] of panels.entries()) {
    if (i > 0 && long) {
      await nextTask();
      if (mine !== renders) return;
    }
    draw();
  }
}

/** Change a detail (norm, token, unit) without a request; redraw what shows it. */
function pick(patch, only = null) {
  state.set(patch, { push: true, silent: true });
  if (!data) return;
  if (only && only.includes("ffn")) {
    const { token } = fillDetailPickers();
    renderFFN($("#ffn-panel"), data, {
      token,
      unit: state.unit,
      onUnit: (u) => pick({ unit: u }, ["ffn"]),
      onToken: (t) => pick({ token: t, unit: -1 }, ["ffn"]),
    });
    return;
  }
  render();
}

function stepSelect(select, key, delta, extra = {}) {
  const i = select.selectedIndex + delta;
  if (select.selectedIndex < 0 || i < 0 || i >= select.options.length) return;
  select.selectedIndex = i;
  state.set({ [key]: Number(select.value), ...extra }, { push: true, silent: true });
}

$("#stack-select").addEventListener("change", (e) => {
  state.set({ stack: e.target.value, layer: 0, norm: "", token: -1, unit: -1 }, { push: true, silent: true });
  run();
});
$("#layer-select").addEventListener("change", (e) => {
  state.set({ layer: Number(e.target.value), unit: -1 }, { push: true, silent: true });
  run();
});
$("#norm-select").addEventListener("change", (e) => pick({ norm: e.target.value }));
$("#token-select").addEventListener("change", (e) => pick({ token: Number(e.target.value), unit: -1 }, ["ffn"]));
bindKeys({
  "[": () => {
    stepSelect($("#layer-select"), "layer", -1, { unit: -1 });
    run();
  },
  "]": () => {
    stepSelect($("#layer-select"), "layer", 1, { unit: -1 });
    run();
  },
  ",": () => {
    stepSelect($("#token-select"), "token", -1, { unit: -1 });
    pick({}, ["ffn"]);
  },
  ".": () => {
    stepSelect($("#token-select"), "token", 1, { unit: -1 });
    pick({}, ["ffn"]);
  },
});
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text", "target", "stack", "layer", "drop"].includes(k))) run();
  else render();
});
onProjectorChange(() => render());

run();
