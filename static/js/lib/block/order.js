// The block in the order it ran: its steps drawn top to bottom from the order in which its
// hook points fired, with each sublayer's residual path beside them.

import { clear, el, svg } from "../dom.js";
import { registerExport } from "../export.js";
import { panel } from "../panel.js";
import { ACT_LABEL, NORM_LABEL } from "./common.js";

const SUBLAYER_NORM = { attn: "attn_norm", cross_attn: "cross_norm", ffn: "ffn_norm" };

const BOX_W = 250;
const BOX_H = 36;
const GAP = 20;

function stepLabel(step, data) {
  const normName = NORM_LABEL[data.norm.type] || data.norm.type;
  if (step.step === "norm") return [`${normName}`, step.module];
  if (step.step === "attention") return [data.stack === "decoder" ? "Masked self-attention" : "Self-attention", "attn"];
  if (step.step === "cross_attention") return ["Cross-attention", "queries here, keys and values: the encoder"];
  if (step.step === "ffn") {
    const f = data.ffn;
    return [
      `FFN · ${ACT_LABEL[f.activation] || f.activation}`,
      `${data.d_model} → ${f.d_ff} → ${data.d_model}, per token`,
    ];
  }
  return ["+", ""];
}

const BOX_CLASS = { norm: "box-norm", attention: "box-attn", cross_attention: "box-cross", ffn: "box-ffn" };

/**
 * The block's steps top to bottom with the residual path beside them: the sublayer's branch
 * leaves the stream before its own norm (pre-norm) or before the sublayer (post-norm) and
 * joins again at its ⊕. Norm boxes are buttons: onNorm(name).
 */
export function renderOrder(container, data, { norm = "", onNorm = () => {}, prefix = "", level = 2 } = {}) {
  clear(container);
  const post = data.norm.type !== "none" && data.norm.position === "post";
  const how =
    data.norm.type === "none"
      ? "This model has no norms: each sublayer's output is simply added to the stream."
      : post
        ? "Post-norm (the original Transformer, BERT): each sublayer reads the stream, its output is added, and the sum is normalised."
        : "Pre-norm (GPT-2, LLaMA): each sublayer reads a normalised copy of the stream; its output is added to the stream itself, which is never normalised until the final norm.";
  const { root, body } = panel({
    title: `Block ${data.layer} of the ${data.stack}, in the order it ran`,
    subtitle: `${how} Drawn from the order in which the hook points fired.`,
    exportId: `${prefix}order`,
    level,
  });
  container.append(root);
  const steps = data.order;
  const cx = 40 + BOX_W / 2;
  const height = 70 + steps.length * (BOX_H + GAP) + 40;
  const width = 40 + BOX_W + 170;
  const drawing = svg("svg", {
    class: "arch block-order",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "group",
    "aria-label": `Block ${data.layer}: ${steps.map((s) => (s.step === "add" ? "add" : s.module)).join(", then ")}`,
  });
  const top = (i) => 50 + i * (BOX_H + GAP);
  const arrow = (y1, y2) =>
    drawing.append(
      svg("path", { class: "arrow", d: `M ${cx} ${y1} L ${cx} ${y2}`, "marker-end": "url(#block-arrow)" }),
    );
  drawing.append(
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "block-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#59616f" }),
      ),
    ),
  );
  drawing.append(
    svg("text", { x: cx, y: 22, "text-anchor": "middle", class: "note-text", text: "the stream in (hook_resid_pre)" }),
  );
  arrow(28, top(0) - 2);
  const centre = (i) => top(i) + BOX_H / 2;
  steps.forEach((s, i) => {
    const y = top(i);
    if (s.step === "add") {
      drawing.append(svg("circle", { cx, cy: y + BOX_H / 2, r: 13, class: "box-norm" }));
      drawing.append(svg("text", { x: cx, y: y + BOX_H / 2 + 5, "text-anchor": "middle", text: "+" }));
    } else {
      const [label, sub] = stepLabel(s, data);
      const isNorm = s.step === "norm";
      const g = svg(
        "g",
        isNorm
          ? {
              class: "norm-box",
              tabindex: 0,
              role: "button",
              "aria-pressed": String(s.module === norm),
            }
          : {},
      );
      g.append(svg("rect", { x: cx - BOX_W / 2, y, width: BOX_W, height: BOX_H, rx: 6, class: BOX_CLASS[s.step] }));
      g.append(svg("text", { x: cx, y: y + 15, "text-anchor": "middle", text: label }));
      if (sub) g.append(svg("text", { x: cx, y: y + 30, "text-anchor": "middle", class: "note-text", text: sub }));
      if (isNorm) {
        const pick = () => onNorm(s.module);
        g.addEventListener("click", pick);
        g.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            pick();
          }
        });
      }
      drawing.append(g);
    }
    if (i < steps.length - 1) arrow(y + (s.step === "add" ? BOX_H / 2 + 13 : BOX_H), top(i + 1) - 2);
  });
  // the residual path of each sublayer: from where its branch leaves the stream to its ⊕
  steps.forEach((s, i) => {
    if (s.step !== "add") return;
    const sub = steps.findIndex((t) => t.module === s.module && t.step !== "add");
    const own = steps[sub - 1];
    const from = own && own.step === "norm" && own.module === SUBLAYER_NORM[s.module] ? sub - 1 : sub;
    const y1 = top(from) - GAP / 2;
    const y2 = centre(i);
    const x2 = cx + BOX_W / 2 + 60;
    drawing.append(
      svg("path", {
        class: "arrow residual",
        d: `M ${cx} ${y1} L ${x2} ${y1} L ${x2} ${y2} L ${cx + 15} ${y2}`,
        "marker-end": "url(#block-arrow)",
      }),
    );
    drawing.append(svg("text", { x: x2 + 6, y: (y1 + y2) / 2, class: "note-text", text: "residual" }));
  });
  const end = top(steps.length) - GAP + 6;
  arrow(end - 4, end + 14);
  drawing.append(
    svg("text", {
      x: cx,
      y: end + 30,
      "text-anchor": "middle",
      class: "note-text",
      text: "the stream out (hook_resid_post)",
    }),
  );
  body.append(el("div", { class: "arch-wrap" }, drawing));
  registerExport(`${prefix}order`, {
    filename: () => `attnviz-${data.model}-${data.stack}-block${data.layer}-order`,
    svg: () => drawing,
    data: () => ({ model: data.model, stack: data.stack, layer: data.layer, norm: data.norm, order: data.order }),
  });
  return drawing;
}
