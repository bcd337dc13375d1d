// How strongly a block's FFN units fire, per token: the share of its hidden units in each
// decade of |activation|. ReLU's bottom band is its exact zeros; a smooth activation (GELU,
// SiLU, SwiGLU's product) is never exactly 0 and only damps a negative input, so its bottom
// band is the units that pass almost nothing, not a share "shut".

import { OKABE_ITO } from "../palette.js";
import { figure, panel } from "../panel.js";
import { LEGEND_ABOVE, react } from "../plots.js";
import { ACT_LABEL, bars, exportFigure, tokenAxis, tokenMargin } from "./common.js";

/** The bands of |activation| the units of a token are counted in: [name, holds(|a|)]. ReLU's
 * first band is its exact zeros; a smooth activation is never exactly 0, so its first band is
 * the units that pass almost nothing. */
const BANDS = {
  relu: [
    ["exactly 0 (shut)", (a) => a === 0],
    ["0 < a < 0.1", (a) => a < 0.1],
    ["0.1 ≤ a < 1", (a) => a < 1],
    ["a ≥ 1", () => true],
  ],
  smooth: [
    ["|a| < 0.01", (a) => a < 0.01],
    ["0.01 ≤ |a| < 0.1", (a) => a < 0.1],
    ["0.1 ≤ |a| < 1", (a) => a < 1],
    ["|a| ≥ 1", () => true],
  ],
};
const BAND_COLORS = ["#c4cad5", OKABE_ITO[2], OKABE_ITO[0], OKABE_ITO[5]];

/** The share of each token's units (rows of `post`, the activations) in each band: [{name,
 * share (T)}], bottom band first. */
export function activationBands(post, relu) {
  const bands = relu ? BANDS.relu : BANDS.smooth;
  const share = bands.map(() => new Array(post.rows).fill(0));
  for (let i = 0; i < post.rows; i++) {
    for (let j = 0; j < post.cols; j++) {
      const a = Math.abs(post.data[i * post.cols + j]);
      share[bands.findIndex(([, holds]) => holds(a))][i] += 1 / post.cols;
    }
  }
  return bands.map(([name], b) => ({ name, share: share[b] }));
}

/** The bands panel into `parent`: tokens × bands stacked, token `t` outlined (onToken(i) on a
 * click). */
export function renderBands(parent, data, post, tokens, t, { onToken = () => {}, prefix = "", level = 2 } = {}) {
  const f = data.ffn;
  const act = ACT_LABEL[f.activation] || f.activation;
  const swiglu = f.activation === "swiglu";
  const relu = f.activation === "relu";
  const shut = panel({
    title: "How strongly the units fire, per token",
    subtitle: relu
      ? "The share of the hidden units in each band of activation a. ReLU sets every unit whose W₁x was negative to exactly 0: the bottom band is the units it shut."
      : `${swiglu ? "SwiGLU's gate silu" : act} is a soft switch: no unit is ever exactly 0, and a negative input is damped rather than shut. So the bars show how the ${f.d_ff} |activations| spread over decades; the bottom band is the units that pass almost nothing (|a| < 0.01).`,
    exportId: `${prefix}ffn-bands`,
    level,
  });
  const zf = figure("");
  shut.body.append(zf.box);
  parent.append(shut.root);
  const bands = activationBands(post, relu);
  react(
    zf.plot,
    bands.map((band, b) =>
      bars(band.name, band.share, BAND_COLORS[b], tokens, {
        // the token whose units are listed beside it, outlined
        marker: {
          color: BAND_COLORS[b],
          line: { color: "#1b2130", width: tokens.map((_, i) => (i === t ? 2 : 0)) },
        },
        hovertemplate: `%{customdata} (%{x})<br>${band.name}: %{y:.1%}<extra></extra>`,
      }),
    ),
    {
      height: 320,
      barmode: "stack",
      margin: tokenMargin(tokens),
      xaxis: tokenAxis(tokens),
      yaxis: { range: [0, 1], gridcolor: "#eceef2", tickformat: ".0%", title: { text: "share of units" } },
      legend: { ...LEGEND_ABOVE, traceorder: "normal" },
    },
  );
  zf.plot.on("plotly_click", (ev) => ev.points && ev.points[0] && onToken(ev.points[0].x));
  exportFigure(
    prefix,
    "ffn-bands",
    zf.plot,
    () => `attnviz-${data.model}-ffn-bands`,
    () => ({ tokens, activation: f.activation, bands }),
  );
}
