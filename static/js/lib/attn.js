// Helpers over an /attention response: its sites, which tokens sit on each axis of a site, and
// which of them stay when special tokens are hidden.

export const SITE_ORDER = ["encoder.self", "decoder.self", "decoder.cross"];
export const SITE_LABEL = {
  "encoder.self": "encoder self-attention",
  "decoder.self": "decoder self-attention (masked)",
  "decoder.cross": "cross-attention (decoder → encoder)",
};

export function sitesOf(data) {
  return SITE_ORDER.filter((s) => data.attention && data.attention[s]);
}

/** The site to show of `sites`: `wanted` when it is one, else cross-attention, else the first. */
export function pickSite(sites, wanted) {
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

/** Rows/columns to keep (original indices). */
export function keepIndices(tokens, hideSpecial) {
  return tokens.map((t, i) => (hideSpecial && t.special ? -1 : i)).filter((i) => i >= 0);
}

/** Mean over heads, [H][Tq][Tk] -> [Tq][Tk]. */
export function meanHeads(heads) {
  const H = heads.length;
  return heads[0].map((row, i) => row.map((_, j) => heads.reduce((s, h) => s + (h[i][j] ?? 0), 0) / H));
}
