// A token heatmap that stays fast at any size: a Plotly figure up to PLOTLY_MAX tokens a side
// (hover labels, vector export, the look of every other figure), a canvas past it
// (lib/heatcanvas.js: painted off the main thread, zoom and pan to a window of tokens).

import { canvasHeatmap } from "./heatcanvas.js";
import { purge, rowsHeatmap, tokenHeatmap } from "./plots.js";
import { maxAbs, toNested } from "./tensor.js";

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
    /** Empty the div (a choice with nothing to draw). */
    clear() {
      if (canvas) canvas.destroy();
      canvas = null;
      purge(div);
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

const featureCanvases = new WeakMap(); // div -> its canvas heatmap of tokens × features

/**
 * Tokens × features (embeddings, a norm's input and output, an FFN's units), a Mat (lib/
 * tensor.js): a Plotly figure (plots.rowsHeatmap, with its options) up to PLOTLY_MAX tokens, a
 * canvas past it, zoomable to a window of tokens and features. Signed values, on a scale
 * symmetric around 0 unless opts.zmin / zmax say otherwise.
 */
export function featureHeatmap(div, mat, tokens, opts = {}) {
  let canvas = featureCanvases.get(div);
  if (tokens.length <= PLOTLY_MAX) {
    if (canvas) {
      canvas.destroy();
      featureCanvases.delete(div);
    }
    return rowsHeatmap(div, toNested(mat), tokens, opts);
  }
  if (!canvas) {
    purge(div);
    canvas = canvasHeatmap(div);
    featureCanvases.set(div, canvas);
  }
  const top = maxAbs(mat, 1e-6);
  const feature = opts.xLabel || "feature";
  return canvas.draw(mat, {
    rows: tokens,
    cols: Array.from({ length: mat.cols }, (_, j) => ({ text: String(j), index: j })),
    value: opts.value || "value",
    diverging: true,
    zmin: opts.zmin ?? -top,
    zmax: opts.zmax ?? top,
    rowTitle: "token",
    colTitle: feature,
    xLabel: feature,
    yLabel: "token",
    maxHeight: 560,
  });
}

/** Empty a div featureHeatmap drew in (its canvas destroyed, its Plotly figure purged). */
export function clearFeatureHeatmap(div) {
  const canvas = featureCanvases.get(div);
  if (canvas) canvas.destroy();
  featureCanvases.delete(div);
  purge(div);
}
