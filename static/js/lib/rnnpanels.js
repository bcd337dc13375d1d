// Figures of a POST /rnn/unroll answer that the /rnn view and the lesson both draw.

import { fmt } from "./dom.js";
import { OKABE_ITO } from "./palette.js";
import { LEGEND_ABOVE, fontSize, plotlyText, react, tokenTicks } from "./plots.js";
import { CELL_NAME } from "./recurrence.js";
import { tokenLabel } from "./tokens.js";

const MONO = "ui-monospace, 'DejaVu Sans Mono', monospace";
const script = (chars) => (n) =>
  String(n)
    .split("")
    .map((c) => chars["-0123456789".indexOf(c)])
    .join("");
const superscript = script("⁻⁰¹²³⁴⁵⁶⁷⁸⁹");
const subscript = script("₋₀₁₂₃₄₅₆₇₈₉");

/** 0.000112 -> "1.1·10⁻⁴"; numbers near 1 as they are. */
export function sci(x) {
  if (!(x > 0)) return fmt(x, 3);
  if (x >= 0.01 && x < 100) return fmt(x, x < 1 ? 3 : 2);
  const [m, e] = x.toExponential(1).split("e");
  return `${m}·10${superscript(Number(e))}`;
}

/** The gradient norms of the answer's RNN, then of the RNN it was compared with. */
export function gradientsOf(data) {
  const series = [{ model: data.model, cell: data.cell, gradients: data.gradients }];
  if (data.compare) series.push(data.compare);
  return series;
}

/**
 * ‖∂loss/∂hₜ‖ per English token on a log scale, for the RNN and its companion; `paths`:
 * "recurrence" (the attention's read of the states cut) or "all". Returns the figure's note:
 * what the curves measure and how much the signal fades per step.
 */
export function drawGradients(div, data, paths = "recurrence", { height = 560 } = {}) {
  const tokens = data.tokens.source;
  const S = tokens.length;
  const which = paths === "all" ? "all" : "recurrence";
  const labels = tokens.map((tok) => plotlyText(tokenLabel(tok)));
  const series = gradientsOf(data);
  const traces = series.map((g, j) => ({
    type: "scatter",
    mode: "lines+markers",
    name: `${plotlyText(g.model)} (${CELL_NAME[g.cell] || g.cell})`,
    x: tokens.map((_, i) => i),
    y: g.gradients[which],
    line: { color: g.cell === "tanh" ? OKABE_ITO[1] : OKABE_ITO[0], width: 3, dash: j ? "dot" : "solid" },
    marker: { size: 7, symbol: g.cell === "tanh" ? "square" : "circle" },
    customdata: labels,
    hovertemplate: `${plotlyText(g.model)}<br>t = %{x} “%{customdata}”<br>‖∂loss/∂hₜ‖ = %{y:.3e}<extra></extra>`,
  }));
  const size = fontSize();
  react(div, traces, {
    height,
    margin: { l: 70, r: 10, t: 20, b: 90 },
    legend: LEGEND_ABOVE,
    xaxis: {
      tickmode: "array",
      tickvals: tokens.map((_, i) => i),
      ticktext: tokenTicks(tokens),
      tickangle: -50,
      tickfont: { family: MONO, size: size - (S > 24 ? 2 : 0) },
      title: { text: "English token t (the end of the sentence is on the right)" },
      gridcolor: "#eceef2",
    },
    yaxis: {
      type: "log",
      exponentformat: "power",
      dtick: "D2", // labels at 1, 2 and 5 of each decade: readable over 1 decade or 7
      title: { text: "‖∂loss/∂hₜ‖ (log scale)" },
      gridcolor: "#eceef2",
    },
  });
  const lines = series.map((g) => {
    const v = g.gradients[which];
    const ratio = v[0] / v[S - 1];
    const perStep = S > 1 ? ratio ** (1 / (S - 1)) : 1;
    return (
      `${g.model} (${CELL_NAME[g.cell] || g.cell}): ‖∂loss/∂h₁‖ / ‖∂loss/∂h${subscript(S)}‖ = ${sci(ratio)}` +
      ` over ${S - 1} steps, ×${fmt(perStep, 2)} per step on average.`
    );
  });
  const context =
    which === "recurrence"
      ? "Along the recurrence alone (the attention's read of the states cut): the chain that backpropagation through time multiplies."
      : "Every path counted: the attention reads each hₜ directly, so the first words are not out of reach.";
  const short = S < 12 ? " A short sentence leaves little distance to fade over: try the 20-token preset." : "";
  return `${context} ${lines.join(" ")}${short}`;
}
