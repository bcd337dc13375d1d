// Every layer × head as a thumbnail (after BertViz's model view), drawn on <canvas> so a
// 6 × 4 grid paints in a few milliseconds. Click (or Enter) a thumbnail to zoom on it.

import { el, svg } from "./dom.js";
import { MASKED, rgb, viridis } from "./palette.js";

function paint(canvas, matrix, mask) {
  const rows = matrix.length;
  const cols = rows ? matrix[0].length : 0;
  const px = Math.max(2, Math.floor(184 / Math.max(rows, cols, 1)));
  canvas.width = Math.max(1, cols * px);
  canvas.height = Math.max(1, rows * px);
  const ctx = canvas.getContext("2d");
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const masked = mask && mask[i] && mask[i][j] === 0;
      ctx.fillStyle = masked ? MASKED : rgb(viridis(matrix[i][j]));
      ctx.fillRect(j * px, i * px, px, px);
    }
  }
}

/**
 * att: [L][H][Tq][Tk]; mask: [Tq][Tk] of 0/1 or null; selected: {layer, head};
 * onPick(layer, head). Returns {toSVG()} for export.
 */
export function renderGrid(container, { att, mask, selected, onPick }) {
  const L = att.length;
  const H = L ? att[0].length : 0;
  // A group of buttons, laid out with CSS grid (not an ARIA grid: no rows, no cells).
  const grid = el("div", { class: "thumb-grid", role: "group", "aria-label": "All layers and heads" });
  grid.style.gridTemplateColumns = `auto repeat(${H}, auto)`;
  grid.append(el("span", { class: "axis-label" }));
  for (let h = 0; h < H; h++) grid.append(el("span", { class: "axis-label", text: `head ${h}` }));
  for (let l = 0; l < L; l++) {
    grid.append(el("span", { class: "axis-label row-label", text: `layer ${l}` }));
    for (let h = 0; h < H; h++) {
      const canvas = el("canvas", { width: 1, height: 1 });
      paint(canvas, att[l][h], mask);
      const on = selected && selected.layer === l && selected.head === h;
      const button = el(
        "button",
        {
          type: "button",
          class: "thumb",
          "aria-pressed": String(!!on),
          "aria-label": `layer ${l}, head ${h}`,
          title: `layer ${l}, head ${h} — click to zoom`,
          "data-layer": l,
          "data-head": h,
        },
        canvas,
      );
      button.addEventListener("click", () => onPick(l, h));
      grid.append(button);
    }
  }
  container.replaceChildren(grid);
  // thumbnails as large as the panel allows (72–150 px), larger still on a projector
  const room = (container.clientWidth || 900) - 90;
  const size = Math.max(72, Math.min(150, Math.floor(room / Math.max(H, 1)) - 16));
  grid.style.setProperty("--thumb", `${size}px`);

  return {
    /** An SVG of the whole grid (rects), for SVG/PNG export. */
    toSVG() {
      const cell = 120;
      const gap = 12;
      const lab = 60;
      const W = lab + H * (cell + gap);
      const Hh = 24 + L * (cell + gap);
      const root = svg("svg", { width: W, height: Hh, viewBox: `0 0 ${W} ${Hh}` });
      root.append(svg("rect", { x: 0, y: 0, width: W, height: Hh, fill: "#ffffff" }));
      for (let h = 0; h < H; h++) {
        root.append(
          svg("text", {
            x: lab + h * (cell + gap) + cell / 2,
            y: 16,
            "text-anchor": "middle",
            "font-size": 12,
            "font-family": "sans-serif",
            text: `head ${h}`,
          }),
        );
      }
      for (let l = 0; l < L; l++) {
        root.append(
          svg("text", {
            x: lab - 8,
            y: 24 + l * (cell + gap) + cell / 2,
            "text-anchor": "end",
            "font-size": 12,
            "font-family": "sans-serif",
            text: `layer ${l}`,
          }),
        );
        for (let h = 0; h < H; h++) {
          const m = att[l][h];
          const rows = m.length;
          const cols = rows ? m[0].length : 0;
          const s = cell / Math.max(rows, cols, 1);
          const g = svg("g", { transform: `translate(${lab + h * (cell + gap)},${24 + l * (cell + gap)})` });
          for (let i = 0; i < rows; i++) {
            for (let j = 0; j < cols; j++) {
              const masked = mask && mask[i] && mask[i][j] === 0;
              g.append(
                svg("rect", {
                  x: (j * s).toFixed(2),
                  y: (i * s).toFixed(2),
                  width: s.toFixed(2),
                  height: s.toFixed(2),
                  fill: masked ? MASKED : rgb(viridis(m[i][j])),
                }),
              );
            }
          }
          root.append(g);
        }
      }
      return root;
    },
  };
}
