// The residual stream across the stack: ‖x‖ of each token after every sublayer, and the size
// of what each sublayer added.

import { clear, el } from "../dom.js";
import { registerExport } from "../export.js";
import { OKABE_ITO } from "../palette.js";
import { figure, panel } from "../panel.js";
import { matrixHeatmap, plotlyText, react } from "../plots.js";
import { tokenLabel } from "../tokens.js";
import { blockTokens } from "./common.js";

/** Up to this many tokens the residual stream is drawn as one line per token; past it, a heatmap. */
const LINES_MAX = 16;
const POINT_LABEL = { embed: "embed", attn: "attn", cross_attn: "cross", ffn: "FFN" };

/** The colour scale's top for a [points][tokens] matrix: its largest value, or its 99th
 * percentile where the largest is over four times that (a few outlier tokens). */
function robustMax(m) {
  const values = [];
  let max = -Infinity;
  let at = 0;
  for (const row of m)
    row.forEach((v, j) => {
      if (v === null || !Number.isFinite(v)) return;
      values.push(v);
      if (v > max) [max, at] = [v, j];
    });
  values.sort((x, y) => x - y);
  const q = values.length ? values[Math.floor(0.99 * (values.length - 1))] : max;
  return { zmax: q > 0 && max > 4 * q ? q : max, max, at };
}

const fmtNorm = (v) => (v >= 1000 ? Math.round(v).toLocaleString("en") : v.toPrecision(3));

/** ‖stream‖ of each token after every sublayer of the stack, and ‖what each one added‖. */
export function renderResidual(container, data, { prefix = "", level = 2 } = {}) {
  clear(container);
  const r = data.residual;
  const tokens = blockTokens(data);
  const { root, body } = panel({
    title: `The residual stream across the ${data.stack}`,
    subtitle:
      data.norm.position === "pre" || data.norm.type === "none"
        ? "Left: the size ‖x‖ of each token's stream after every sublayer. Nothing normalises the stream itself, so each sublayer's output piles up on it. Right: the size of what each sublayer added."
        : "Left: the size ‖x‖ of each token's stream after every sublayer's Add & Norm: post-norm brings it back to about the same size each time. Right: the size of what each sublayer added before the norm — every block adds something.",
    exportId: `${prefix}residual`,
    level,
  });
  container.append(root);
  const labels = r.points.map((p) => (p.layer === null ? "embed" : `${p.layer}·${POINT_LABEL[p.after]}`));
  const here = r.points.map((p, i) => (p.layer === data.layer ? i : -1)).filter((i) => i >= 0);
  const band = here.length
    ? [
        {
          type: "rect",
          xref: "x",
          yref: "paper",
          x0: here[0] - 0.5,
          x1: here[here.length - 1] + 0.5,
          y0: 0,
          y1: 1,
          fillcolor: "rgba(230,159,0,0.12)",
          line: { width: 0 },
        },
      ]
    : [];
  const a = figure("‖stream‖ after each sublayer");
  const b = figure("‖added‖ by each sublayer");
  body.append(el("div", { class: "matrices" }, a.box, b.box));
  if (tokens.length <= LINES_MAX) {
    const lines = (m) =>
      tokens.map((t, j) => ({
        type: "scatter",
        mode: "lines+markers",
        name: plotlyText(`${j}: ${tokenLabel(t)}`),
        x: labels.map((_, i) => i),
        y: m.map((row) => row[j]),
        line: { color: OKABE_ITO[j % OKABE_ITO.length], width: 1.5 },
        marker: { size: 5 },
        hovertemplate: `${plotlyText(tokenLabel(t))} · %{customdata}: %{y:.3f}<extra></extra>`,
        customdata: labels,
      }));
    const layout = (title, legend) => ({
      height: legend ? 420 : 340,
      shapes: band,
      margin: { l: 55, r: 10, t: 10, b: 60 },
      xaxis: {
        tickmode: "array",
        tickvals: labels.map((_, i) => i),
        ticktext: labels,
        tickangle: -45,
        gridcolor: "#eceef2",
      },
      yaxis: { title: { text: title }, gridcolor: "#eceef2", rangemode: "tozero" },
      showlegend: legend,
      legend: { orientation: "h", y: -0.32, font: { family: "ui-monospace, monospace" } },
    });
    react(a.plot, lines(r.l2), layout("‖x‖", true));
    react(b.plot, lines(r.added), layout("‖sublayer output‖", false));
    body.append(
      el("p", {
        class: "plot-note",
        text: `One line per token (colours repeat after ${OKABE_ITO.length}: hover a point for its token); the shaded band is block ${data.layer}.`,
      }),
    );
  } else {
    // a long input: one row per token, one column per point of the stream
    const byToken = (m) => tokens.map((_, j) => m.map((row) => row[j]));
    const capped = [];
    const heat = (div, m, value) => {
      // a real LLM's first token (its attention sink) can carry a stream a hundred times the
      // others' ‖x‖: a colour scale up to it paints every other token the same dark colour
      const { zmax, max, at } = robustMax(m);
      if (zmax < max) capped.push(`${value} reaches ${fmtNorm(max)} at token ${at} (${tokenLabel(tokens[at])})`);
      return matrixHeatmap(div, byToken(m), {
        value,
        x: labels,
        xLabel: "after",
        yLabel: "token",
        height: 460,
        zmin: 0,
        zmax,
        margin: { b: 70 },
        xaxis: { nticks: 10, tickangle: -45, automargin: true },
        customdata: tokens.map((t) => labels.map(() => plotlyText(tokenLabel(t)))),
        hovertemplate: `%{customdata} (%{y}) after %{x}<br>${value}: %{z:.3f}<extra></extra>`,
      });
    };
    heat(a.plot, r.l2, "‖x‖");
    heat(b.plot, r.added, "‖sublayer output‖");
    body.append(
      el("p", {
        class: "plot-note",
        text:
          `One row per token (${tokens.length} tokens), one column per point of the stream.` +
          (capped.length
            ? ` The colours stop at the 99th percentile, brighter is as bright: ${capped.join("; ")} (an attention sink's massive activations).`
            : ""),
      }),
    );
  }
  registerExport(`${prefix}residual`, {
    filename: () => `attnviz-${data.model}-${data.stack}-residual`,
    plot: () => a.plot,
    data: () => ({ model: data.model, stack: data.stack, tokens, points: labels, l2: r.l2, added: r.added }),
  });
}
