// The explorer's figures of an input's attention (lib/attnstore.js AttentionSource), as the
// explorer and the lesson both draw them: one head's heatmap (its options and notes, the mask
// greyed, special tokens hidden), a layer's heads for the head view, every head's thumbnail.
//
// A heatmap shows one of VALUES: the weights α, the pre-softmax scores, the value-weighted
// norms ‖α_ij f(x_j)‖ (Kobayashi et al. 2020) or the attention rollout (Abnar & Zuidema 2020).

import { SITE_LABEL, keepIndices, siteTokens } from "./attn.js";
import { maxAbs, selectMat } from "./tensor.js";

/** What a head's heatmap can show, and how the explorer's picker names each. */
export const VALUES = {
  weights: "weights α (after the softmax)",
  scores: "pre-softmax scores",
  norms: "value-weighted norms ‖α·f(x)‖",
  rollout: "attention rollout",
};

/** Rollout mixes a sequence with itself through the residual stream: self-attention only. */
export const rolloutApplies = (site) => site !== "decoder.cross";

/** An RNN's one attention is additive (Bahdanau), not a dot product. */
const additive = (model) => model.architecture === "rnn";

/** The caption of a choice, one honest line: what it is, and what it is not. */
export function valuesCaption(values, model) {
  if (values === "scores") {
    return additive(model)
      ? "The additive score eᵢⱼ = vᵀ tanh(W_a sᵢ₋₁ + U_a hⱼ) (Bahdanau): a small network scores each pair, no dot product, no √dₖ."
      : "The scores QKᵀ/√dₖ before the mask and the softmax: each row's softmax gives the weights.";
  }
  if (values === "norms") {
    return additive(model)
      ? "‖α_ij · h_j‖ (Kobayashi et al. 2020): the weight times the length of the encoder state it averages (the RNN's values are its states; it has no W_V, W_O)."
      : "‖α_ij · f(x_j)‖, f(x) = (x W_V + b_V) W_O of this head (Kobayashi et al. 2020): the weight times the length of what key j's value adds to the output. A large weight on a short vector moves little.";
  }
  if (values === "rollout") {
    return "Attention rollout (Abnar & Zuidema 2020): each layer's mean over heads plus the residual, ½A + ½I, multiplied through layers 0…l. Row i: how much of each token could reach position i. An approximation: heads are taken as equal and linear; the same matrix for every head.";
  }
  return "The attention weights α: each row (a query) sums to 1 over the keys it may see.";
}

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

/**
 * A head's matrix as shown: special tokens hidden (rows renormalised for weights and rollout),
 * masked NaN. `values`: one of VALUES (default: the weights, or the scores when `scores`).
 */
export function headMatrix(source, axes, site, layer, head, { scores: useScores = false, values, hide = false } = {}) {
  const shown = values || (useScores ? "scores" : "weights");
  const { queries, keys, qKeep, kKeep } = axes;
  const scores = source.scoresOf(site, layer, head);
  const masked = maskOf(site, scores, queries.length, keys.length);
  const m =
    shown === "rollout"
      ? source.rolloutOf(site, layer)
      : shown === "norms"
        ? source.normsOf(site, layer, head)
        : shown === "scores"
          ? scores
          : source.weightsOf(site, layer, head);
  const full = qKeep.length === m.rows && kKeep.length === m.cols;
  if (shown === "weights" && full && !masked) return m; // nothing to change: no copy
  const renorm = hide && (shown === "weights" || shown === "rollout");
  return selectMat(m, qKeep, kKeep, { renorm, masked });
}

/**
 * A head's heatmap: {z (the Mat shown), opts (for lib/heatmap.js draw), note (what the grey
 * cells, the values and the hidden tokens mean)}. The head must be loaded (with its scores
 * or norms when it shows them; the rollout fetched when it shows that). `values`: one of
 * VALUES (default: the weights, or the scores when `scores`).
 */
export function headHeatmap(source, axes, site, layer, head, { scores = false, values, hide = false } = {}) {
  const shown = values || (scores ? "scores" : "weights");
  const { left, right, queries, keys } = axes;
  const z = headMatrix(source, axes, site, layer, head, { values: shown, hide });
  const cross = site === "decoder.cross";
  const rnn = additive(source.model);
  const renormed = hide ? " (renormalised)" : "";
  const value = {
    weights: `weight${renormed}`,
    scores: rnn ? "score eᵢⱼ (additive)" : "score (QKᵀ/√dₖ)",
    norms: "‖α·f(x)‖",
    rollout: `rollout${renormed}`,
  }[shown];
  const signed = shown === "scores";
  const opts = {
    rows: left,
    cols: right,
    title:
      shown === "rollout"
        ? `rollout through layers 0–${layer} · all heads · ${SITE_LABEL[site] || site}`
        : `layer ${layer} · head ${head} · ${SITE_LABEL[site] || site}${shown === "norms" ? " · ‖α·f(x)‖" : ""}`,
    value,
    colorbarTitle: { weights: "weight", scores: "score", norms: "norm", rollout: "rollout" }[shown],
    diverging: signed,
    zmin: signed ? undefined : 0,
    zmax: signed ? undefined : shown === "norms" ? maxAbs(z, 1e-6) : 1,
    yLabel: cross ? "French token (query)" : "query (attending)",
    xLabel: cross ? "English token (key)" : "key (attended to)",
  };
  const notes = [];
  const mask = maskOf(site, source.scoresOf(site, layer, head), queries.length, keys.length);
  if (mask && z.rows > 1 && mask(0, z.cols - 1))
    notes.push("Grey cells are masked: the query may not attend there (−∞ before the softmax).");
  if (shown !== "weights") notes.push(valuesCaption(shown, source.model));
  if (hide) {
    notes.push(
      shown === "weights" || shown === "rollout"
        ? "Special tokens hidden; each row renormalised to sum to 1."
        : "Special tokens hidden.",
    );
  }
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
