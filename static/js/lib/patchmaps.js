// Activation patching's maps (POST /patch): an effect grid — layers × positions or layers ×
// heads — as a heatmap on a diverging scale centred on 0, the exact value on hover, a cell
// click handed to the view. The /patch view draws them; one component for every site.

import { DIVERGING, MASKED } from "./palette.js";
import { fontSize, plotlyText, reactPickable } from "./plots.js";

/** Past this many columns the map drops its cell gaps and labels every few columns only. */
const MANY = 64;

/** The largest |value| of a grid (at least `floor`): the scale runs from −top to +top. */
export function maxAbsGrid(z, floor = 1e-6) {
  let top = floor;
  for (const row of z) for (const v of row) if (v !== null && Number.isFinite(v)) top = Math.max(top, Math.abs(v));
  return top;
}

/**
 * z [L][N] effects (or raw metrics) in `div`, layer 0 on top. opts: {columns: the column
 * labels (tokens or "H0".."Hn"), columnTitle ("position" | "head"), value (the hover's name of
 * a value), rowLabel(l) (the row's name: "layer 0"), onPick(row, col)}. Resolves once drawn.
 */
export async function effectHeatmap(
  div,
  z,
  { columns, columnTitle, value = "effect", rowLabel = (l) => `layer ${l}`, onPick = null },
) {
  const L = z.length;
  const N = L ? z[0].length : 0;
  const size = fontSize();
  const top = maxAbsGrid(z);
  const labels = columns.map((c) => plotlyText(c));
  const hover = z.map((row, l) =>
    row.map(
      (v, n) => `${plotlyText(rowLabel(l))} · ${columnTitle} ${n} (${labels[n]})<br>${value}: ${v === null ? "—" : v}`,
    ),
  );
  const text = z.map((row) => row.map((v) => (v === null ? "" : v.toFixed(2))));
  const step = N > MANY ? Math.ceil(N / MANY) : 1;
  const ticks = Array.from({ length: Math.ceil(N / step) }, (_, k) => k * step);
  const trace = {
    type: "heatmap",
    z,
    x: Array.from({ length: N }, (_, n) => n),
    y: Array.from({ length: L }, (_, l) => l),
    colorscale: DIVERGING,
    zmin: -top,
    zmax: top,
    zmid: 0,
    text,
    texttemplate: N <= 24 ? "%{text}" : "",
    textfont: { size: size - 2 },
    customdata: hover,
    hovertemplate: "%{customdata}<extra></extra>",
    // many columns (a long input's positions): no gaps, which Plotly draws cell by cell
    xgap: N > MANY ? 0 : 1,
    ygap: N > MANY ? 0 : 1,
    colorbar: { title: { text: value, side: "right" }, thickness: 14, len: 0.9 },
  };
  const layout = {
    height: Math.max(170, Math.min(560, L * size * 2.6 + 110)),
    margin: { l: 70, r: 10, t: 10, b: 80 },
    plot_bgcolor: MASKED,
    font: { size },
    xaxis: {
      title: { text: columnTitle, font: { size } },
      tickmode: "array",
      // a label per column up to MANY; past it every step-th (the hover names each cell):
      // Plotly measures every label it is given, 480 of them per map took seconds
      tickvals: ticks,
      ticktext: ticks.map((n) => labels[n]),
      tickangle: N > 8 ? -45 : 0,
      showgrid: false,
      zeroline: false,
    },
    yaxis: {
      title: { text: "layer", font: { size } },
      tickmode: "array",
      tickvals: trace.y,
      ticktext: trace.y.map((l) => plotlyText(rowLabel(l))),
      autorange: "reversed",
      showgrid: false,
      zeroline: false,
    },
  };
  await reactPickable(div, [trace], layout, onPick);
}
