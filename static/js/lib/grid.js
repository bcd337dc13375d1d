// Every layer × head as a thumbnail (after BertViz's model view). Each thumbnail is a small
// matrix (for long inputs pooled by the server to at most 64 × 64 blocks of tokens: rows still
// sum to 1) put on a <canvas> as pixels, one per cell, and scaled up by CSS: 144 thumbnails
// paint in a few milliseconds. Click (or Enter) a thumbnail to zoom on that head.

import { el, svg } from "./dom.js";
import { LUT, MASKED_RGB, headStyle } from "./palette.js";

/** The pixels of a Mat (values in [0, 1]); `masked(a, b)` cells grey. */
function paint(canvas, m, masked) {
  canvas.width = Math.max(1, m.cols);
  canvas.height = Math.max(1, m.rows);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  const lut = LUT.sequential;
  for (let i = 0; i < m.rows; i++) {
    for (let j = 0; j < m.cols; j++) {
      const p = (i * m.cols + j) * 4;
      const v = m.data[i * m.cols + j];
      if ((masked && masked(i, j)) || Number.isNaN(v)) {
        img.data.set(MASKED_RGB, p);
      } else {
        const k = Math.round(Math.min(1, Math.max(0, v)) * 255) * 4;
        img.data[p] = lut[k];
        img.data[p + 1] = lut[k + 1];
        img.data[p + 2] = lut[k + 2];
      }
      img.data[p + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** The swatch of a head's colour and pattern (as in the head view), for labels. */
export function headSwatch(h) {
  const style = headStyle(h);
  const dot = el("span", { class: `dot swatch-${style.swatch}`, "aria-hidden": "true" });
  dot.style.setProperty("--head", style.color);
  return dot;
}

/**
 * layers: [L][H] of Mats (one per thumbnail); masked(a, b): a cell of every thumbnail is masked
 * (or null); selected: {layer, head}; onPick(layer, head); note: what a thumbnail's cells are;
 * ablated(layer, head): whether that head is ablated (marked ✂ and named so, not by colour).
 * Returns {toSVG()} for export.
 */
export function renderGrid(container, { layers, masked = null, selected, onPick, note = "", ablated = () => false }) {
  const L = layers.length;
  const H = L ? layers[0].length : 0;
  // A group of buttons, laid out with CSS grid (not an ARIA grid: no rows, no cells).
  const grid = el("div", { class: "thumb-grid", role: "group", "aria-label": "All layers and heads" });
  grid.style.gridTemplateColumns = `auto repeat(${H}, auto)`;
  grid.append(el("span", { class: "axis-label" }));
  for (let h = 0; h < H; h++) grid.append(el("span", { class: "axis-label" }, headSwatch(h), ` head ${h}`));
  const canvases = [];
  for (let l = 0; l < L; l++) {
    grid.append(el("span", { class: "axis-label row-label", text: `layer ${l}` }));
    for (let h = 0; h < H; h++) {
      const canvas = el("canvas", { width: 1, height: 1 });
      paint(canvas, layers[l][h], masked);
      canvases.push(canvas);
      const on = selected && selected.layer === l && selected.head === h;
      const off = ablated(l, h);
      const name = `layer ${l}, head ${h}${off ? " (ablated)" : ""}`;
      const button = el(
        "button",
        {
          type: "button",
          class: off ? "thumb ablated" : "thumb",
          "aria-pressed": String(!!on),
          "aria-label": name,
          title: `${name} — click to zoom`,
          "data-layer": l,
          "data-head": h,
        },
        canvas,
        ...(off ? [el("span", { class: "thumb-badge", "aria-hidden": "true", text: "✂" })] : []),
      );
      button.addEventListener("click", () => onPick(l, h));
      grid.append(button);
    }
  }
  // thumbnails as large as the panel allows (56–150 px), larger still on a projector; the width
  // read before the grid changes (after, it would force a layout of the new grid)
  const room = (container.clientWidth || 900) - 90;
  const size = Math.max(56, Math.min(150, Math.floor(room / Math.max(H, 1)) - 16));
  grid.style.setProperty("--thumb", `${size}px`);
  container.replaceChildren(grid, ...(note ? [el("p", { class: "plot-note", text: note })] : []));

  return {
    /** An SVG of the whole grid: each thumbnail's pixels as an image, for SVG/PNG export. */
    toSVG() {
      const cell = 120;
      const gap = 12;
      const lab = 60;
      const W = lab + H * (cell + gap);
      const Hh = 24 + L * (cell + gap);
      const root = svg("svg", { width: W, height: Hh, viewBox: `0 0 ${W} ${Hh}` });
      root.append(svg("rect", { x: 0, y: 0, width: W, height: Hh, fill: "#ffffff" }));
      const label = (x, y, anchor, text) =>
        svg("text", { x, y, "text-anchor": anchor, "font-size": 12, "font-family": "sans-serif", text });
      for (let h = 0; h < H; h++) root.append(label(lab + h * (cell + gap) + cell / 2, 16, "middle", `head ${h}`));
      for (let l = 0; l < L; l++) {
        root.append(label(lab - 8, 24 + l * (cell + gap) + cell / 2, "end", `layer ${l}`));
        for (let h = 0; h < H; h++) {
          const image = svg("image", {
            x: lab + h * (cell + gap),
            y: 24 + l * (cell + gap),
            width: cell,
            height: cell,
            preserveAspectRatio: "none",
            href: canvases[l * H + h].toDataURL("image/png"),
          });
          image.style.setProperty("image-rendering", "pixelated");
          root.append(image);
        }
      }
      return root;
    },
  };
}
