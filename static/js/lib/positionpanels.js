// Figures of a GET /models/{id}/positions answer, as the positions view and the lesson draw
// them: the table (position × dimension), a few of its waves, how alike two positions are, and
// a sentence's token embeddings, positional vectors and their sum.

import { clearFeatureHeatmap, featureHeatmap } from "./heatmap.js";
import { OKABE_ITO } from "./palette.js";
import { matrixHeatmap, maxAbsOf, react } from "./plots.js";
import { fromNested } from "./tensor.js";
import { labelTokens } from "./tokens.js";

/** Whether a sinusoidal dimension is a cosine: odd ones (Vaswani et al.), or the second half
 * (Marian's layout, `pairing: "halves"`). */
function isCos(data, dim, d) {
  return data.pairing === "halves" ? dim >= d / 2 : dim % 2 === 1;
}

/** The table shown: the vectors added (sinusoidal, learned), or cos of RoPE's angles. */
export function positionTable(data) {
  if (data.table) return { table: data.table, xLabel: "dimension" };
  if (data.rope) return { table: data.rope.angles.map((row) => row.map(Math.cos)), xLabel: "pair i (cos θᵢ·m)" };
  return null;
}

/**
 * What the table, its waves and its similarity show, in words that hold for the model's kind of
 * positions (a learned table has no formula and no waves by design).
 */
export function positionCaptions(data) {
  const kind = data.positional;
  if (kind === "sinusoidal") {
    const layout =
      data.pairing === "halves"
        ? "The first half of the dimensions holds sines, the second half cosines; in each half, low dimensions oscillate fast, high ones slowly."
        : "Even dimensions are sines, odd ones cosines; low dimensions oscillate fast, high ones slowly.";
    return {
      table: `Each row is the vector added at that position, computed from the formula. ${layout}`,
      curves: "Each dimension is a sine or cosine wave; its wavelength grows with the dimension.",
      similarity: "PE(m)·PE(n) for every pair of positions: for sinusoids it depends mostly on the distance m − n.",
    };
  }
  if (kind === "learned") {
    return {
      table:
        "Each row is the vector added at that position, learned in training (one trained vector per position): no formula sets it, so no wave is built in.",
      curves:
        "A few dimensions of the learned vectors along the positions: trained values, not sine waves; any regularity is what training found.",
      similarity:
        "PE(m)·PE(n) for every pair of learned vectors: whether nearby positions are alike was learned, not built in.",
    };
  }
  if (kind === "rope") {
    return {
      table:
        "RoPE adds no vector: each row is cos(θᵢ·m) for the angle pair i of a query or key at position m is turned by. Low pairs turn fast, high ones slowly.",
      curves: "cos(θᵢ·m) of a few pairs along the positions: pair i turns by θᵢ per position.",
      similarity:
        "Σᵢ cos(θᵢ·m)·cos(θᵢ·n) over the pairs: a picture of the angles only; the RoPE view shows what a head's scores do.",
    };
  }
  return { table: "This model has no positional information.", curves: "", similarity: "" };
}

/**
 * The table as a heatmap on a colour scale symmetric around its own largest |value| (a learned
 * table's ±0.1 would look blank on ±1). Returns that largest |value|, or null when the model has
 * no positions.
 */
export function drawTable(div, data, { height = 420 } = {}) {
  const shown = positionTable(data);
  if (!shown) return null;
  const top = maxAbsOf(shown.table);
  matrixHeatmap(div, shown.table, {
    diverging: true,
    zmin: -top,
    zmax: top,
    value: "value",
    xLabel: shown.xLabel,
    yLabel: "position",
    height,
  });
  return top;
}

/** A few dimensions along the positions, fast to slow: the wavelength grows with the dimension. */
export function drawCurves(div, data, { height = 420 } = {}) {
  const { table } = positionTable(data);
  const d = table[0].length;
  const dims = [
    ...new Set(
      [0, 1, 2 * Math.floor(d / 16), 2 * Math.floor(d / 8), 2 * Math.floor(d / 4), d - 2].filter(
        (x) => x >= 0 && x < d,
      ),
    ),
  ];
  return react(
    div,
    dims.map((dim, i) => ({
      type: "scatter",
      mode: "lines",
      name: `dim ${dim}${data.table && data.positional === "sinusoidal" ? (isCos(data, dim, d) ? " (cos)" : " (sin)") : ""}`,
      x: table.map((_, p) => p),
      y: table.map((row) => row[dim]),
      line: { color: OKABE_ITO[i % OKABE_ITO.length], width: 2 },
    })),
    {
      height,
      margin: { l: 50, r: 10, t: 10, b: 50 },
      xaxis: { title: { text: "position" }, gridcolor: "#eceef2" },
      yaxis: { title: { text: "value" }, gridcolor: "#eceef2" },
      legend: { orientation: "h", y: -0.2 },
    },
  );
}

/** PE(m)·PE(n) for every pair of positions. */
export function drawSimilarity(div, data, { height = 460 } = {}) {
  const { table } = positionTable(data);
  const sim = table.map((a) => table.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
  return matrixHeatmap(div, sim, {
    value: "PE(m)·PE(n)",
    xLabel: "position n",
    yLabel: "position m",
    height,
    square: true,
    hovertemplate: "m = %{y}, n = %{x}<br>PE(m)·PE(n) = %{z:.3f}<extra></extra>",
  });
}

/**
 * The sentence's token embeddings, positional vectors and their sum (what layer 0 reads), one
 * colour range for the three, into the divs given ({token, position, sum}; any may be null).
 * Returns each one's shape as text, or null without a sentence.
 */
export function drawEmbedding(divs, data) {
  const emb = data.embedding;
  if (!emb) return null;
  const tokens = labelTokens(emb.tokens || []);
  const h = Math.max(200, Math.min(560, tokens.length * 24 + 70));
  let zmax = 0; // (no Math.max(...array): 512 tokens × 768 dimensions overflow the call stack)
  for (const row of emb.sum) for (const v of row) zmax = Math.max(zmax, Math.abs(v));
  const plotRows = (div, m, name, showTicks) =>
    featureHeatmap(div, fromNested(m), tokens, {
      value: name,
      xLabel: "dimension",
      zmin: -zmax,
      zmax,
      ticks: showTicks,
      height: h,
    });
  const T = emb.token.length;
  const d = emb.token[0].length;
  if (divs.token) plotRows(divs.token, emb.token, "embedding", true);
  if (divs.position) {
    if (emb.position) plotRows(divs.position, emb.position, "position", !divs.token);
    else {
      clearFeatureHeatmap(divs.position);
      divs.position.replaceChildren(document.createTextNode("RoPE adds no vector here."));
    }
  }
  if (divs.sum) plotRows(divs.sum, emb.sum, "sum", !divs.token && !divs.position);
  return {
    token: `(${T} × ${d})`,
    position: emb.position ? `(${T} × ${d})` : "none (RoPE)",
    sum: `(${T} × ${d})`,
    scale: embeddingScale(emb, d),
  };
}

/**
 * The token embedding's scale in words, where the model multiplies the table's rows before
 * adding positions (the original Transformer: by √d_model); "" where it does not.
 */
export function embeddingScale(emb, d) {
  if (!emb.scale || Math.abs(emb.scale - 1) < 1e-9) return "";
  const root = Math.abs(emb.scale - Math.sqrt(d)) < 1e-6 ? `√d_model = √${d} = ` : "";
  return `× ${root}${emb.scale.toFixed(2)}`;
}
