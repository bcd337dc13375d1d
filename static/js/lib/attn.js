// Helpers over an /attention response: which tokens sit on each axis of a site, masks,
// and "hide special tokens and renormalise".

export const SITE_ORDER = ["encoder.self", "decoder.self", "decoder.cross"];
export const SITE_LABEL = {
  "encoder.self": "encoder self-attention",
  "decoder.self": "decoder self-attention (masked)",
  "decoder.cross": "cross-attention (decoder → encoder)",
};

export function sitesOf(data) {
  return SITE_ORDER.filter((s) => data.attention && data.attention[s]);
}

/** The site to show: `wanted` when the response has it, else cross-attention, else the first. */
export function pickSite(data, wanted) {
  const sites = sitesOf(data);
  if (sites.includes(wanted)) return wanted;
  return sites.includes("decoder.cross") ? "decoder.cross" : sites[0];
}

/** Tokens with their original position kept as `index`. */
function indexed(tokens) {
  return (tokens || []).map((t, index) => ({ ...t, index }));
}

/** {queries, keys}: the token lists on the rows and columns of a site's matrices. */
export function siteTokens(data, site) {
  const source = indexed(data.tokens.source);
  const target = data.tokens.target ? indexed(data.tokens.target) : null;
  if (site === "encoder.self") return { queries: source, keys: source };
  if (site === "decoder.cross") return { queries: target, keys: source };
  // decoder.self: the target of a seq2seq model, the prompt of a decoder
  const t = target || source;
  return { queries: t, keys: t };
}

/** [Tq][Tk] of 0/1: from the server when it sent masks, else inferred (causal for decoder.self). */
export function siteMask(data, site, nq, nk) {
  let m = data.masks && data.masks[site];
  if (m && Array.isArray(m) && Array.isArray(m[0]) && Array.isArray(m[0][0])) m = m[0]; // (B, Tq, Tk)
  if (m && m.length === nq) return m.map((row) => row.map((v) => (v ? 1 : 0)));
  if (site === "decoder.self")
    return Array.from({ length: nq }, (_, i) => Array.from({ length: nk }, (_, j) => (j <= i + (nk - nq) ? 1 : 0)));
  return null;
}

/** Rows/columns to keep (original indices). */
export function keepIndices(tokens, hideSpecial) {
  return tokens.map((t, i) => (hideSpecial && t.special ? -1 : i)).filter((i) => i >= 0);
}

export function pick(matrix, rows, cols) {
  return rows.map((i) => cols.map((j) => (matrix[i] ? matrix[i][j] : null)));
}

/** Each row divided by its sum (rows summing to 0 stay 0); nulls stay null. */
export function renormalise(matrix) {
  return matrix.map((row) => {
    let s = 0;
    for (const v of row) if (v !== null && Number.isFinite(v)) s += v;
    return row.map((v) => (v === null ? null : s > 0 ? v / s : 0));
  });
}

/** A head's matrix for display: special tokens dropped (and rows renormalised for weights). */
export function view(matrix, qKeep, kKeep, { renorm = true } = {}) {
  const m = pick(matrix, qKeep, kKeep);
  return renorm ? renormalise(m) : m;
}

/** Mean over heads, [H][Tq][Tk] -> [Tq][Tk]. */
export function meanHeads(heads) {
  const H = heads.length;
  return heads[0].map((row, i) => row.map((_, j) => heads.reduce((s, h) => s + (h[i][j] ?? 0), 0) / H));
}

/** Decode an f16 {dtype, shape, data} tensor or pass nested lists through. */
export function tensor(x) {
  if (!x || Array.isArray(x) || typeof x !== "object" || !x.data || !x.shape) return x;
  const bytes = Uint8Array.from(atob(x.data), (c) => c.charCodeAt(0));
  const n = bytes.length / 2;
  const view16 = new DataView(bytes.buffer);
  const flat = new Array(n);
  for (let i = 0; i < n; i++) flat[i] = halfToFloat(view16.getUint16(2 * i, true));
  const build = (dims, offset) => {
    if (dims.length === 1) return flat.slice(offset, offset + dims[0]);
    const stride = dims.slice(1).reduce((a, b) => a * b, 1);
    return Array.from({ length: dims[0] }, (_, i) => build(dims.slice(1), offset + i * stride));
  };
  return build(x.shape, 0);
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
