// Plotly helpers: heatmaps over tokens with hover values, shared fonts and projector sizes.
// Plotly parses a few HTML-like tags in labels, so user text goes through plotlyText().

import { tokenLabel } from "./tokens.js";
import { DIVERGING, MASKED, SEQUENTIAL } from "./palette.js";
import { isProjector } from "./shell.js";

/** Escape text for Plotly's label markup: it is then shown literally, never parsed. */
export function plotlyText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Axis labels for tokens: escaped, with visible spaces; special tokens get a star. */
export function tokenTicks(tokens) {
  return tokens.map((t) => plotlyText(tokenLabel(t)) + (t.special ? " ★" : ""));
}

export function fontSize() {
  return isProjector() ? 17 : 12;
}

/** Roughly the width of one monospace character of the tick labels, in px. */
export function charPx() {
  return fontSize() * 0.66;
}

export function baseLayout(extra = {}) {
  const size = fontSize();
  return {
    font: { family: "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif", size, color: "#1b2130" },
    margin: { l: 70, r: 20, t: 36, b: 60 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: MASKED, // gaps (masked cells) show this grey
    hoverlabel: { font: { family: "ui-monospace, 'DejaVu Sans Mono', monospace", size } },
    ...extra,
  };
}

/**
 * A legend above the plot area, left-aligned and see-through: anchored at its bottom edge, it
 * grows upwards as it wraps onto more lines in a narrow panel and Plotly widens the top margin
 * to fit it, so it never hangs over the data.
 */
export const LEGEND_ABOVE = {
  orientation: "h",
  x: 0,
  xanchor: "left",
  y: 1.02,
  yanchor: "bottom",
  bgcolor: "rgba(0,0,0,0)",
};

// An offline classroom tool never offers to upload a student's chart: no "Share chart…"
// button, and no address to send it to. The CSP would not stop it (Plotly opens the cloud in
// a new window and posts the chart to it); the Cross-Origin-Opener-Policy the server sends
// would (the opened window and this page cannot message each other).
export const PLOT_CONFIG = {
  displaylogo: false,
  responsive: true,
  showSendToCloud: false,
  plotlyServerURL: "",
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines", "sendChartToCloud"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

function ready() {
  if (!window.Plotly) throw new Error("Plotly did not load (/vendor/plotly.min.js)");
  return window.Plotly;
}

/**
 * Plotly.react with the figure's height also set on its div. A responsive figure with a
 * height but no width loses its height on every resize (a window resize, projector mode):
 * Plotly then sizes it from its div, which must hold that height.
 */
function draw(div, traces, layout) {
  div.style.height = layout.height ? `${layout.height}px` : "";
  const drawn = ready().react(div, traces, layout, PLOT_CONFIG);
  followWidth(div);
  return drawn;
}

/**
 * Plotly's `responsive` follows the window only. A figure drawn before its neighbours join
 * its row (two figures side by side, a panel beside a panel) keeps its first, wider size and
 * is cut off by the next one; so every figure is resized whenever its own div's width changes.
 */
const widthWatcher =
  typeof ResizeObserver === "undefined"
    ? null
    : new ResizeObserver((entries) => {
        for (const { target } of entries) {
          if (!target.isConnected) {
            // a panel redrawn anew (its old figure removed): let the old div go
            widthWatcher.unobserve(target);
            watched.delete(target);
            continue;
          }
          const laid = target._fullLayout;
          if (laid && target.clientWidth > 0 && Math.abs(laid.width - target.clientWidth) > 1) {
            window.Plotly.Plots.resize(target);
          }
        }
      });
const watched = new WeakSet();

function followWidth(div) {
  if (!widthWatcher || watched.has(div)) return;
  watched.add(div);
  widthWatcher.observe(div);
}

/**
 * A heatmap of z [rows][cols] (null = masked, shown grey) with token axes.
 * opts: {rows, cols (token arrays), title, value: "weight" | "score" | …, diverging,
 *        zmin, zmax, rowTitle, colTitle, height, colorbarTitle}
 */
export function tokenHeatmap(div, z, opts) {
  const rows = opts.rows;
  const cols = opts.cols;
  const valueName = opts.value || "weight";
  const custom = z.map((row, i) =>
    row.map((v, j) => [
      plotlyText(tokenLabel(rows[i])) + ` (${rows[i].index ?? i})`,
      plotlyText(tokenLabel(cols[j])) + ` (${cols[j].index ?? j})`,
      v === null || v === undefined ? "masked (−∞ before softmax)" : Number(v).toFixed(4),
    ]),
  );
  let zmin = opts.zmin;
  let zmax = opts.zmax;
  if (opts.diverging && (zmin === undefined || zmax === undefined)) {
    let m = 0;
    for (const row of z) for (const v of row) if (v !== null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
    zmin = -m || -1;
    zmax = m || 1;
  }
  const size = fontSize();
  const trace = {
    type: "heatmap",
    z,
    x: cols.map((_, j) => j),
    y: rows.map((_, i) => i),
    customdata: custom,
    hovertemplate:
      `${opts.rowTitle || "query"}: %{customdata[0]}<br>${opts.colTitle || "key"}: %{customdata[1]}<br>` +
      `${valueName}: %{customdata[2]}<extra></extra>`,
    hoverongaps: true,
    colorscale: opts.colorscale || (opts.diverging ? DIVERGING : SEQUENTIAL),
    zmin,
    zmax,
    xgap: z[0] && z[0].length > 40 ? 0 : 1,
    ygap: z.length > 40 ? 0 : 1,
    colorbar: { title: { text: opts.colorbarTitle || valueName, side: "right" }, thickness: 14, len: 0.9 },
  };
  const tickFont = { family: "ui-monospace, 'DejaVu Sans Mono', monospace", size: size - (cols.length > 30 ? 2 : 0) };
  const cell = cols.length > 24 ? 18 : 30;
  const height = opts.height || Math.max(300, Math.min(760, rows.length * cell + 150));
  const layout = baseLayout({
    title: opts.title ? { text: plotlyText(opts.title), x: 0, xanchor: "left", font: { size: size + 2 } } : undefined,
    height,
    margin: {
      l: 44 + charPx() * Math.min(14, Math.max(...rows.map((t) => tokenLabel(t).length + (t.special ? 2 : 0)), 3)),
      r: 10,
      t: opts.title ? 40 : 12,
      b:
        40 +
        charPx() * 0.75 * Math.min(14, Math.max(...cols.map((t) => tokenLabel(t).length + (t.special ? 2 : 0)), 3)),
    },
    xaxis: {
      tickmode: "array",
      tickvals: cols.map((_, j) => j),
      ticktext: tokenTicks(cols),
      tickangle: -50,
      tickfont: tickFont,
      title: { text: opts.xLabel || "key (attended to)", standoff: 6, font: { size } },
      showgrid: false,
      zeroline: false,
      constrain: "domain",
    },
    yaxis: {
      tickmode: "array",
      tickvals: rows.map((_, i) => i),
      ticktext: tokenTicks(rows),
      tickfont: tickFont,
      autorange: "reversed",
      title: { text: opts.yLabel || "query (attending)", standoff: 6, font: { size } },
      showgrid: false,
      zeroline: false,
      scaleanchor: opts.square ? "x" : undefined,
    },
  });
  return draw(div, [trace], layout);
}

/** A plain numeric heatmap (e.g. positions × dimensions). */
export function matrixHeatmap(div, z, opts = {}) {
  const size = fontSize();
  const trace = {
    type: "heatmap",
    z,
    x: opts.x,
    y: opts.y,
    colorscale: opts.colorscale || (opts.diverging ? DIVERGING : SEQUENTIAL),
    zmin: opts.zmin,
    zmax: opts.zmax,
    zmid: opts.diverging && opts.zmin === undefined ? 0 : undefined,
    hovertemplate:
      opts.hovertemplate ||
      `${opts.yLabel || "row"} %{y}<br>${opts.xLabel || "column"} %{x}<br>` +
        `${opts.value || "value"}: %{z:.4f}<extra></extra>`,
    colorbar: { title: { text: opts.value || "", side: "right" }, thickness: 14, len: 0.9 },
    customdata: opts.customdata,
  };
  const layout = baseLayout({
    title: opts.title ? { text: plotlyText(opts.title), x: 0, xanchor: "left", font: { size: size + 2 } } : undefined,
    height: opts.height || 360,
    margin: { l: 60, r: 10, t: opts.title ? 40 : 12, b: 50, ...(opts.margin || {}) },
    plot_bgcolor: "#ffffff",
    xaxis: {
      title: { text: opts.xLabel || "", font: { size } },
      showgrid: false,
      zeroline: false,
      constrain: opts.square ? "domain" : undefined,
      ...(opts.xaxis || {}),
    },
    yaxis: {
      title: { text: opts.yLabel || "", font: { size } },
      showgrid: false,
      zeroline: false,
      autorange: opts.yReversed === false ? true : "reversed",
      scaleanchor: opts.square ? "x" : undefined,
      ...(opts.yaxis || {}),
    },
  });
  return draw(div, [trace], layout);
}

export function react(div, traces, layout) {
  return draw(div, traces, baseLayout({ plot_bgcolor: "#ffffff", ...layout }));
}

const pickHandlers = new WeakMap(); // div -> the latest onPick

/**
 * `react`, and a click on a cell calls onPick(row, column) (the point's y and x as numbers).
 * One listener per div however often it is redrawn: it calls the latest onPick (none: inert).
 */
export async function reactPickable(div, traces, layout, onPick) {
  pickHandlers.set(div, onPick);
  await react(div, traces, layout);
  if (!div.dataset.clickable) {
    div.dataset.clickable = "1";
    div.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      const pick = pickHandlers.get(div);
      if (point && pick) pick(Number(point.y), Number(point.x));
    });
  }
  div.classList.toggle("clickable", Boolean(onPick));
}

export function purge(div) {
  if (window.Plotly && div) window.Plotly.purge(div);
  if (div) div.style.height = "";
}

/**
 * Tokens × features (the residual stream, a norm's output, FFN units): one row per token,
 * signed values on the diverging scale, symmetric around 0 unless zmin / zmax are given.
 * opts: {value, xLabel, zmin, zmax, height, ticks (false: no token labels), title}
 */
export function rowsHeatmap(div, m, tokens, opts = {}) {
  const widest = Math.max(3, ...tokens.map((t) => tokenLabel(t).length + (t.special ? 2 : 0)));
  const value = opts.value || "value";
  const ticks = opts.ticks !== false;
  return matrixHeatmap(div, m, {
    diverging: true,
    zmin: opts.zmin,
    zmax: opts.zmax,
    title: opts.title,
    height: opts.height || Math.max(200, Math.min(560, tokens.length * 26 + 80)),
    value,
    xLabel: opts.xLabel || "feature",
    yLabel: "",
    y: tokens.map((_, i) => i),
    yaxis: ticks
      ? {
          tickmode: "array",
          tickvals: tokens.map((_, i) => i),
          ticktext: tokenTicks(tokens),
          tickfont: { family: "ui-monospace, monospace", size: fontSize() },
        }
      : { showticklabels: false },
    margin: { l: ticks ? 24 + charPx() * Math.min(14, widest) : 10, t: opts.title ? 40 : 10 },
    customdata: m.map((row, i) => row.map(() => plotlyText(tokens[i] ? tokenLabel(tokens[i]) : ""))),
    hovertemplate: `token: %{customdata} (%{y})<br>${opts.xLabel || "feature"} %{x}<br>${value}: %{z:.4f}<extra></extra>`,
  });
}

/** The largest |value| of a matrix (for shared colour ranges), at least `floor`. */
export function maxAbsOf(m, floor = 1e-6) {
  let top = floor;
  for (const row of m) for (const v of row) if (v !== null && Math.abs(v) > top) top = Math.abs(v);
  return top;
}
