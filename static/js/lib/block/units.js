// One FFN unit at a time: a token's strongest units (pick one), and the unit picked across the
// sentence, in the parts it is computed from (SwiGLU: W₁x, silu(W₁x), W₃x and their product).

import { el, fmt } from "../dom.js";
import { OKABE_ITO } from "../palette.js";
import { figure, panel } from "../panel.js";
import { LEGEND_ABOVE, react } from "../plots.js";
import { tokenLabel } from "../tokens.js";
import { ACT_LABEL, bars, column, exportFigure, mat, tokenAxis, tokenMargin } from "./common.js";

const UNIT_COLORS = [OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[3], OKABE_ITO[1]];

/** The k units of a token with the largest |activation| after the non-linearity. */
export function topUnits(post, token, k = 12) {
  const row = token >= 0 && token < post.rows ? post.data.subarray(token * post.cols, (token + 1) * post.cols) : [];
  return Array.from(row, (v, u) => ({ u, v }))
    .sort((a, b) => Math.abs(b.v) - Math.abs(a.v))
    .slice(0, k);
}

/** Unit u across the tokens, each part named by what it computes: [[name, values (T)]]. */
function unitParts(f, pre, post, u) {
  if (f.activation !== "swiglu") {
    const act = ACT_LABEL[f.activation] || f.activation;
    return [
      ["W₁x", column(pre, u)],
      [`${act}(W₁x)`, column(post, u)],
    ];
  }
  return [
    ["W₁x", column(pre, u)],
    ["silu(W₁x)", column(mat(f.gate), u)],
    ["W₃x", column(mat(f.up), u)],
    ["silu(W₁x)·W₃x", column(post, u)],
  ];
}

/** Token t's strongest units `top` (topUnits) into `parent`, `u` the one followed (onUnit(u)
 * when another is picked). */
export function renderTopUnits(parent, data, tokens, t, top, u, { onUnit = () => {}, prefix = "", level = 2 } = {}) {
  const tp = panel({
    title: `The strongest units for “${tokenLabel(tokens[t])}”`,
    subtitle:
      "Its units with the largest activation after the non-linearity; pick one (click a bar or a button) to follow it across the sentence.",
    exportId: `${prefix}ffn-top`,
    level,
  });
  const tf = figure("");
  const chips = el(
    "div",
    { class: "unit-chips", role: "group", "aria-label": "Pick a unit" },
    top.map(({ u: id }) => {
      const b = el("button", { type: "button", class: "preset", "aria-pressed": String(id === u), text: `unit ${id}` });
      b.addEventListener("click", () => onUnit(id));
      return b;
    }),
  );
  tp.body.append(tf.box, chips);
  parent.append(tp.root);
  const labels = top.map(({ u: id }) => `unit ${id}`);
  react(
    tf.plot,
    [
      {
        type: "bar",
        orientation: "h",
        x: top.map((x) => x.v),
        y: labels,
        customdata: top.map((x) => x.u),
        marker: { color: top.map((x) => (x.u === u ? OKABE_ITO[1] : x.v >= 0 ? OKABE_ITO[0] : OKABE_ITO[5])) },
        hovertemplate: "unit %{customdata}: %{x:.4f}<extra></extra>",
      },
    ],
    {
      height: 320,
      margin: { l: 80, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "activation" }, gridcolor: "#eceef2", zerolinecolor: "#9aa0aa" },
      yaxis: { autorange: "reversed", type: "category" },
    },
  );
  tf.plot.on("plotly_click", (ev) => ev.points && ev.points[0] && onUnit(ev.points[0].customdata));
  exportFigure(
    prefix,
    "ffn-top",
    tf.plot,
    () => `attnviz-${data.model}-ffn-top-units-${t}`,
    () => ({ token: tokens[t], units: top }),
  );
}

/** Unit u across the sentence into `parent`, in the parts it is computed from. */
export function renderUnit(parent, data, pre, post, tokens, u, { prefix = "", level = 2 } = {}) {
  const f = data.ffn;
  const act = ACT_LABEL[f.activation] || f.activation;
  const swiglu = f.activation === "swiglu";
  const one = panel({
    title: `Unit ${u} across the sentence`,
    subtitle: `${swiglu ? "Its gate input W₁x, the gate silu(W₁x), the up projection W₃x and their product silu(W₁x)·W₃x, the unit's activation (a negative W₃x flips its sign)" : `Its input W₁x and its activation ${act}(W₁x)`} at every token. Each unit of activation moves the stream by ‖W₂[:, ${u}]‖ = ${fmt(f.unit_write[u], 3)} along its own direction.`,
    exportId: `${prefix}ffn-unit`,
    level,
  });
  const of = figure("");
  one.body.append(of.box);
  parent.append(one.root);
  react(
    of.plot,
    unitParts(f, pre, post, u).map(([name, y], i) => bars(name, y, UNIT_COLORS[i], tokens)),
    {
      height: 300,
      barmode: "group",
      margin: tokenMargin(tokens),
      xaxis: tokenAxis(tokens),
      yaxis: { gridcolor: "#eceef2", zerolinecolor: "#9aa0aa" },
      legend: LEGEND_ABOVE,
    },
  );
  exportFigure(
    prefix,
    "ffn-unit",
    of.plot,
    () => `attnviz-${data.model}-ffn-unit-${u}`,
    () => ({
      unit: u,
      tokens,
      ...Object.fromEntries(unitParts(f, pre, post, u)),
      write: f.unit_write[u],
    }),
  );
}
