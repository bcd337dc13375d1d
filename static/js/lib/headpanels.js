// The explorer's figures of an input's attention (lib/attnstore.js AttentionSource), as the
// explorer and the lesson both draw them: one head's heatmap (its options and notes, the mask
// greyed, special tokens hidden), a layer's heads for the head view, every head's thumbnail.

import { SITE_LABEL, keepIndices, siteTokens } from "./attn.js";
import { selectMat } from "./tensor.js";

/** The tokens on each axis of a site, and which stay when special tokens are hidden. */
export function siteAxes(source, site, hide) {
  const { queries, keys } = siteTokens(source, site);
  const qKeep = keepIndices(queries, hide);
  const kKeep = keepIndices(keys, hide);
  return { queries, keys, qKeep, kKeep, left: qKeep.map((i) => queries[i]), right: kKeep.map((i) => keys[i]) };
}

/**
 * Which cells of a site may not be attended to (null: none). Taken from the pre-softmax
 * scores when they were fetched (masked cells are NaN there); otherwise a decoder's
 * self-attention is causal and the others attend everywhere.
 */
export function maskOf(site, scores, nq, nk) {
  if (scores) return (i, j) => Number.isNaN(scores.data[i * scores.cols + j]);
  if (site === "decoder.self") return (i, j) => j > i + (nk - nq);
  return null;
}

/** A head's matrix as shown: special tokens hidden (rows renormalised for weights), masked NaN. */
export function headMatrix(source, axes, site, layer, head, { scores: useScores = false, hide = false } = {}) {
  const { queries, keys, qKeep, kKeep } = axes;
  const weights = source.weightsOf(site, layer, head);
  const scores = source.scoresOf(site, layer, head);
  const masked = maskOf(site, scores, queries.length, keys.length);
  const full = qKeep.length === weights.rows && kKeep.length === weights.cols;
  if (!useScores && full && !masked) return weights; // nothing to change: no copy
  return selectMat(useScores ? scores : weights, qKeep, kKeep, { renorm: hide && !useScores, masked });
}

/**
 * A head's heatmap: {z (the Mat shown), opts (for lib/heatmap.js draw), note (what the grey
 * cells, the scores and the hidden tokens mean)}. The head must be loaded (with its scores
 * when `scores`).
 */
export function headHeatmap(source, axes, site, layer, head, { scores = false, hide = false } = {}) {
  const { left, right, queries, keys } = axes;
  const z = headMatrix(source, axes, site, layer, head, { scores, hide });
  const cross = site === "decoder.cross";
  const opts = {
    rows: left,
    cols: right,
    title: `layer ${layer} · head ${head} · ${SITE_LABEL[site] || site}`,
    value: scores ? "score (QKᵀ/√dₖ)" : hide ? "weight (renormalised)" : "weight",
    colorbarTitle: scores ? "score" : "weight",
    diverging: scores,
    zmin: scores ? undefined : 0,
    zmax: scores ? undefined : 1,
    yLabel: cross ? "French token (query)" : "query (attending)",
    xLabel: cross ? "English token (key)" : "key (attended to)",
  };
  const notes = [];
  const mask = maskOf(site, source.scoresOf(site, layer, head), queries.length, keys.length);
  if (mask && z.rows > 1 && mask(0, z.cols - 1))
    notes.push("Grey cells are masked: the query may not attend there (−∞ before the softmax).");
  if (scores) notes.push("Pre-softmax: QKᵀ/√dₖ, before the mask. Each row's softmax gives the weights.");
  if (hide) notes.push(scores ? "Special tokens hidden." : "Special tokens hidden; each row renormalised to sum to 1.");
  return { z, opts, note: notes.join(" ") };
}

/** Each head's weights in a layer, as the head view draws them (null: a head not fetched). */
export function layerWeights(source, axes, site, layer, hide) {
  const { qKeep, kKeep } = axes;
  return Array.from({ length: source.model.n_heads }, (_, h) => {
    const w = source.has(site, layer, h) ? source.weightsOf(site, layer, h) : null;
    if (!w) return null;
    const full = qKeep.length === w.rows && kKeep.length === w.cols;
    return full && !hide ? w : selectMat(w, qKeep, kKeep, { renorm: hide });
  });
}

/** The pooled blocks a site's thumbnails have on each axis. */
function blockEdges(edges, site) {
  const target = edges.target || edges.source;
  if (site === "encoder.self") return { q: edges.source, k: edges.source };
  if (site === "decoder.cross") return { q: target, k: edges.source };
  return { q: target, k: target };
}

/**
 * The grid's thumbnails of a site from a pooled answer (AttentionSource.pooled): {layers
 * ([L][H] Mats), masked (a block every cell of which is masked: grey), edges, pooled (blocks
 * are not single tokens), note}.
 */
export function gridLayers(source, axes, site, thumbs, pooledEdges, hide) {
  const edges = blockEdges(pooledEdges, site);
  const { queries, keys, qKeep, kKeep } = axes;
  const exactTokens = edges.q.length - 1 === queries.length && edges.k.length - 1 === keys.length;
  const hidden = hide && exactTokens;
  const layers = thumbs.map((heads) => heads.map((m) => (hidden ? selectMat(m, qKeep, kKeep, { renorm: true }) : m)));
  const nq = queries.length;
  const nk = keys.length;
  const rowsOf = hidden ? qKeep : null;
  const colsOf = hidden ? kKeep : null;
  const masked =
    site === "decoder.self"
      ? (a, b) => {
          const lastQuery = rowsOf ? rowsOf[a] : edges.q[a + 1] - 1;
          const firstKey = colsOf ? colsOf[b] : edges.k[b];
          return firstKey > lastQuery + (nk - nq);
        }
      : null;
  const blocks = edges.q.length - 1;
  const note = exactTokens
    ? ""
    : `${nq} tokens pooled into ${blocks} blocks a side (each block: about ${Math.round(nq / blocks)} ` +
      "tokens; a row of blocks still sums to 1)." +
      (hide ? " Special tokens stay in the pooled thumbnails." : "");
  return { layers, masked, edges, pooled: !exactTokens, note };
}
