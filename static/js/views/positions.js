// Positional encodings: the table (position × dimension), a few of its waves, and
// token embedding + positional vector for the current sentence (GET /models/{id}/positions).

import * as api from "../lib/api.js";
import { setupControls } from "../lib/controls.js";
import { $, fillSelect } from "../lib/dom.js";
import { canvasHeatmap } from "../lib/heatcanvas.js";
import { PLOTLY_MAX } from "../lib/heatmap.js";
import { fromNested } from "../lib/tensor.js";
import { displayToken, labelTokens } from "../lib/tokens.js";
import { initExports, registerExport } from "../lib/export.js";
import { OKABE_ITO } from "../lib/palette.js";
import { charPx, fontSize, matrixHeatmap, plotlyText, react, tokenTicks } from "../lib/plots.js";
import { initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, str, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({ model: str(""), text: str(""), n: int(64) });
const save = (patch) => state.set(patch, { silent: true });
const N_CHOICES = [16, 32, 64, 128, 256];
let data = null;
const canvases = new Map(); // div -> the canvas heatmap drawn there (long sentences)

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

/** Whether a sinusoidal dimension is a cosine: odd ones (Vaswani et al.), or the second half
 * (Marian's layout, `pairing: "halves"`). */
function isCos(dim, d) {
  return data.pairing === "halves" ? dim >= d / 2 : dim % 2 === 1;
}

function render() {
  const model = controls.current();
  const kind = data.positional;
  $("#kind-note").textContent =
    kind === "sinusoidal"
      ? "sinusoidal: computed from the formula, not learned."
      : kind === "learned"
        ? "learned: one trained vector per position (BERT-style)."
        : kind === "rope"
          ? "RoPE: no vector is added. The table shows cos of the rotation angles; see the RoPE view."
          : "This model has no positional information.";
  let table = data.table;
  let xLabel = "dimension";
  if (!table && data.rope) {
    table = data.rope.angles.map((row) => row.map(Math.cos));
    xLabel = "pair i (cos θᵢ·m)";
  }
  if (table) {
    matrixHeatmap($("#table"), table, {
      diverging: true,
      zmin: -1,
      zmax: 1,
      value: "value",
      xLabel,
      yLabel: "position",
      height: 420,
    });
    const d = table[0].length;
    // fast to slow: the wavelength grows geometrically with the dimension
    const dims = [
      ...new Set(
        [0, 1, 2 * Math.floor(d / 16), 2 * Math.floor(d / 8), 2 * Math.floor(d / 4), d - 2].filter(
          (x) => x >= 0 && x < d,
        ),
      ),
    ];
    react(
      $("#curves"),
      dims.map((dim, i) => ({
        type: "scatter",
        mode: "lines",
        name: `dim ${dim}${data.table && kind === "sinusoidal" ? (isCos(dim, d) ? " (cos)" : " (sin)") : ""}`,
        x: table.map((_, p) => p),
        y: table.map((row) => row[dim]),
        line: { color: OKABE_ITO[i % OKABE_ITO.length], width: 2 },
      })),
      {
        height: 420,
        margin: { l: 50, r: 10, t: 10, b: 50 },
        xaxis: { title: { text: "position" }, gridcolor: "#eceef2" },
        yaxis: { title: { text: "value" }, gridcolor: "#eceef2" },
        legend: { orientation: "h", y: -0.2 },
      },
    );
    const sim = table.map((a) => table.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
    matrixHeatmap($("#similarity"), sim, {
      value: "PE(m)·PE(n)",
      xLabel: "position n",
      yLabel: "position m",
      height: 460,
      square: true,
      hovertemplate: "m = %{y}, n = %{x}<br>PE(m)·PE(n) = %{z:.3f}<extra></extra>",
    });
  }
  const emb = data.embedding;
  if (emb) {
    const tokens = labelTokens(emb.tokens || []);
    const h = Math.max(200, Math.min(560, tokens.length * 24 + 70));
    let zmax = 0; // (no Math.max(...array): 512 tokens × 768 dimensions overflow the call stack)
    for (const row of emb.sum) for (const v of row) zmax = Math.max(zmax, Math.abs(v));
    const plotRows = (div, m, name, showTicks) => {
      if (tokens.length > PLOTLY_MAX) {
        // a long sentence: a canvas, zoomable to a window of tokens and dimensions
        const dims = m[0].map((_, j) => ({ text: String(j), index: j }));
        if (!canvases.has(div)) canvases.set(div, canvasHeatmap(div));
        return canvases.get(div).draw(fromNested(m), {
          rows: tokens,
          cols: dims,
          value: name,
          diverging: true,
          zmin: -zmax,
          zmax,
          rowTitle: "token",
          colTitle: "dimension",
          xLabel: "dimension",
          yLabel: "token",
          maxHeight: 560,
        });
      }
      if (canvases.has(div)) {
        canvases.get(div).destroy();
        canvases.delete(div);
      }
      return matrixHeatmap(div, m, {
        diverging: true,
        value: name,
        xLabel: "dimension",
        height: h,
        zmin: -zmax,
        zmax,
        yaxis: showTicks
          ? {
              tickmode: "array",
              tickvals: tokens.map((_, i) => i),
              ticktext: tokenTicks(tokens),
              tickfont: { family: "ui-monospace, monospace", size: fontSize() },
            }
          : { showticklabels: false },
        margin: {
          l: showTicks
            ? 24 + charPx() * Math.min(14, Math.max(3, ...tokens.map((t) => displayToken(t.text).length + 2)))
            : 10,
          t: 8,
        },
        customdata: m.map((row, i) => row.map(() => plotlyText(displayToken(tokens[i] ? tokens[i].text : "")))),
        hovertemplate: `%{customdata} (position %{y})<br>dimension %{x}<br>${name}: %{z:.4f}<extra></extra>`,
      });
    };
    const T = emb.token.length;
    const d = emb.token[0].length;
    $("#shape-token").textContent = `(${T} × ${d})`;
    $("#shape-pos").textContent = emb.position ? `(${T} × ${d})` : "none (RoPE)";
    $("#shape-sum").textContent = `(${T} × ${d})`;
    plotRows($("#emb-token"), emb.token, "embedding", true);
    if (emb.position) plotRows($("#emb-pos"), emb.position, "position", false);
    else {
      if (canvases.has($("#emb-pos"))) canvases.get($("#emb-pos")).destroy();
      canvases.delete($("#emb-pos"));
      $("#emb-pos").replaceChildren(document.createTextNode("RoPE adds no vector here."));
    }
    plotRows($("#emb-sum"), emb.sum, "sum", false);
  }
  if (!model) return;
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
