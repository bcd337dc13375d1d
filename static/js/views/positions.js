// Positional encodings: the table (position × dimension), a few of its waves, and
// token embedding + positional vector for the current sentence (GET /models/{id}/positions).

import * as api from "../lib/api.js";
import { setupControls } from "../lib/controls.js";
import { $, fillSelect } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { drawCurves, drawEmbedding, drawSimilarity, drawTable, positionCaptions } from "../lib/positionpanels.js";
import { initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, str, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({ model: str(""), text: str(""), n: int(64) });
const save = (patch) => state.set(patch, { silent: true });
const N_CHOICES = [16, 32, 64, 128, 256];
let data = null;

const controls = await setupControls(state, {
  prefer: (m) => m.positional === "sinusoidal",
  onRun: run,
});

function nPositions(model) {
  const choices = N_CHOICES.filter((n) => n <= model.max_len);
  return choices.includes(state.n) ? state.n : choices[choices.length - 1] >= 64 ? 64 : choices[choices.length - 1];
}

async function run() {
  const model = controls.current();
  if (!model) return;
  const n = nPositions(model);
  fillSelect(
    $("#n-select"),
    N_CHOICES.filter((x) => x <= model.max_len).map((x) => ({ value: x, label: String(x) })),
    n,
  );
  const result = await withStatus(status(), "Loading the table…", () =>
    api.get(`/models/${encodeURIComponent(model.id)}/positions?n=${n}&text=${encodeURIComponent(state.text)}`),
  );
  if (!result) return;
  data = result;
  render();
}
const status = () => $("#status");
const fmtScale = (x) => (x >= 0.1 ? x.toFixed(3) : x.toPrecision(3));

function render() {
  const kind = data.positional;
  $("#kind-note").textContent =
    kind === "sinusoidal"
      ? "sinusoidal: computed from the formula, not learned."
      : kind === "learned"
        ? "learned: one trained vector per position (BERT-style)."
        : kind === "rope"
          ? "RoPE: no vector is added. The table shows cos of the rotation angles; see the RoPE view."
          : "This model has no positional information.";
  const captions = positionCaptions(data);
  $("#table-sub").textContent = captions.table;
  $("#curves-sub").textContent = captions.curves;
  $("#similarity-sub").textContent = captions.similarity;
  const top = drawTable($("#table"), data);
  $("#table-note").textContent =
    top === null ? "" : `Colour scale ±${fmtScale(top)}: symmetric around 0, to the table's largest |value|.`;
  if (top !== null) {
    drawCurves($("#curves"), data);
    drawSimilarity($("#similarity"), data);
  }
  const shapes = drawEmbedding({ token: $("#emb-token"), position: $("#emb-pos"), sum: $("#emb-sum") }, data);
  $("#emb-scale").textContent = shapes ? shapes.scale : "";
  if (shapes) {
    $("#shape-token").textContent = shapes.token;
    $("#shape-pos").textContent = shapes.position;
    $("#shape-sum").textContent = shapes.sum;
  }
}

$("#n-select").addEventListener("change", (e) => {
  save({ n: Number(e.target.value) });
  run();
});
state.subscribe(() => run());
onProjectorChange(() => data && render());

registerExport("table", {
  filename: () => `attnviz-${state.model}-positions`,
  plot: () => $("#table"),
  data: () => ({ model: state.model, positional: data && data.positional, table: data && (data.table || data.rope) }),
});
registerExport("curves", {
  filename: () => `attnviz-${state.model}-positions-curves`,
  plot: () => $("#curves"),
  data: () => ({ model: state.model, table: data && data.table }),
});
registerExport("sum", {
  filename: () => `attnviz-${state.model}-embedding-plus-pe`,
  plot: () => $("#emb-sum"),
  data: () => ({ model: state.model, text: state.text, embedding: data && data.embedding }),
});
registerExport("similarity", {
  filename: () => `attnviz-${state.model}-positions-similarity`,
  plot: () => $("#similarity"),
  data: () => ({ model: state.model, table: data && data.table }),
});

run();
