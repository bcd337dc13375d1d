// The relative-position figure of POST /rope/relative, as the RoPE view and the lesson draw it:
// one query and one key placed at every pair of positions (m, n). With RoPE the score depends
// on m − n alone, so the matrix is constant along its diagonals; with positions added to the
// embeddings it is not.

import { fmt } from "./dom.js";
import { matrixHeatmap } from "./plots.js";

/** The largest change along any diagonal m − n = const (0 up to rounding for RoPE). */
export function diagonalSpread(matrix) {
  const by = new Map();
  matrix.forEach((row, m) =>
    row.forEach((v, n) => {
      if (v === null) return;
      const d = m - n;
      const cur = by.get(d) || [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      by.set(d, [Math.min(cur[0], v), Math.max(cur[1], v)]);
    }),
  );
  let spread = 0;
  for (const [lo, hi] of by.values()) spread = Math.max(spread, hi - lo);
  return spread;
}

/** The scores [m][n] as a square heatmap, m − n in the hover. */
export function relativePlot(div, scores, title, { height = 420 } = {}) {
  return matrixHeatmap(div, scores, {
    diverging: true,
    value: "score",
    xLabel: "key position n",
    yLabel: "query position m",
    height,
    square: true,
    title,
    customdata: scores.map((row, m) => row.map((_, n) => m - n)),
    hovertemplate: "m = %{y}, n = %{x}<br>m − n = %{customdata}<br>score: %{z:.4f}<extra></extra>",
  });
}

/** What a RoPE model's matrix shows, measured on it. */
export const relativeNote = (scores) =>
  `Largest change along any diagonal: ${fmt(diagonalSpread(scores), 4)} (only rounding): ` +
  "the score is a function of m − n alone.";

/** What a model with added positions shows, measured on it. */
export const additiveNote = (scores) =>
  `Largest change along a diagonal: ${fmt(diagonalSpread(scores), 4)}. With positions added ` +
  "to the embeddings the score depends on m and n themselves, not only on their distance.";
