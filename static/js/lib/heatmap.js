// A token heatmap that stays fast at any size: a Plotly figure up to PLOTLY_MAX tokens a side
// (hover labels, vector export, the look of every other figure), a canvas past it
// (lib/heatcanvas.js: painted off the main thread, zoom and pan to a window of tokens).

import { canvasHeatmap } from "./heatcanvas.js";
import { purge, tokenHeatmap } from "./plots.js";
import { toNested } from "./tensor.js";

/** Past this many rows or columns a heatmap is drawn on a canvas. */
export const PLOTLY_MAX = 128;

/**
 * A heatmap in `div`: draw(mat, opts) shows a Mat (lib/tensor.js; NaN = masked) with the
 * options of plots.tokenHeatmap, and for the canvas `window` (the cells shown first) and
 * `square` (square cells); resolves once drawn.
 * `canvas` is the canvas heatmap while there is one (for export and its window);
 * onWindow(fn) hears the canvas's window changes.
 */
export function adaptiveHeatmap(div) {
  let canvas = null;
  const listeners = [];
  return {
    draw(mat, opts) {
      if (mat.rows <= PLOTLY_MAX && mat.cols <= PLOTLY_MAX) {
        if (canvas) {
          canvas.destroy();
          canvas = null;
        }
        const { window: _w, square: _s, ...plotly } = opts;
        return tokenHeatmap(div, toNested(mat), plotly);
      }
      if (!canvas) {
        purge(div);
        canvas = canvasHeatmap(div);
        for (const fn of listeners) canvas.onWindow(fn);
      }
      return canvas.draw(mat, opts);
    },
    get canvas() {
      return canvas;
    },
    onWindow(fn) {
      listeners.push(fn);
      if (canvas) canvas.onWindow(fn);
    },
  };
}
