// Head scores (POST /heads/scores): one score of every head as a layers × heads heatmap, the
// table of every head (sortable), why a score is missing, and the links that open a head in the
// explorer, with it ablated for the "attention is not explanation" comparison.

import { SITE_LABEL } from "./attn.js";
import { clear, el, fmt } from "./dom.js";
import { DIVERGING, MASKED, SEQUENTIAL } from "./palette.js";
import { fontSize, reactPickable } from "./plots.js";
import { displayToken } from "./tokens.js";

/** Every score the server computes, in the order the pickers and the table show them. */
export const SCORES = ["previous_token", "induction", "duplicate_token", "first_token", "entropy", "importance"];
/** The scores read off the attention weights alone (importance is measured by ablation). */
export const WEIGHT_SCORES = SCORES.filter((s) => s !== "importance");
export const SCORE_LABEL = {
  previous_token: "previous token",
  induction: "induction",
  duplicate_token: "duplicate token",
  first_token: "first token (sink)",
  entropy: "entropy",
  importance: "importance",
};
const UNIT = { entropy: "nats", importance: "Δ log-prob" };

/** The tokens a site's keys are: the source for the encoder and cross-attention, else the
 * decoder's own (the target of a translator, the prompt of a decoder). */
function keysOf(data, site) {
  const { source, target } = data.tokens || {};
  return (site === "decoder.self" && target ? target : source) || [];
}

/**
 * What "first token" measures at a site: attention on key 0, a sink only where key 0 is a start
 * token (BOS, [CLS], <s>). A translator's source has none: there key 0 is a word.
 * {label, note}: the score's name there, and a sentence naming key 0.
 */
export function firstTokenAt(data, site) {
  const first = keysOf(data, site)[0];
  if (!first) return { label: SCORE_LABEL.first_token, note: "" };
  const name = displayToken(first.text);
  if (first.special) {
    return {
      label: SCORE_LABEL.first_token,
      note: `Here key 0 is “${name}”, a start token: no word, always visible, where heads park attention they do not need (the attention sink).`,
    };
  }
  const where = site === "decoder.cross" ? "The source" : "This sequence";
  return {
    label: `first token (“${name}”, no sink)`,
    note: `${where} has no start token: key 0 is the word “${name}”, so this score is attention on that word, not on a sink.`,
  };
}

/** A score's name at a site (the first token's says what key 0 is there). */
export const scoreLabel = (data, site, score) =>
  score === "first_token" ? firstTokenAt(data, site).label : SCORE_LABEL[score];

/** "L1 H0": a head's short name. */
export const headName = (layer, head) => `L${layer} H${head}`;

/** The [L][H] matrix of a score at a site, or null when the server sent none. */
export const matrixOf = (data, site, score) => (data.scores[site] && data.scores[site][score]) || null;

const allNull = (z) => z.every((row) => row.every((v) => v === null));

/** Whether a score has at least one value at a site. */
export const hasValues = (data, site, score) => {
  const z = matrixOf(data, site, score);
  return Boolean(z) && !allNull(z);
};

/**
 * Why a score shows nothing at a site, in a sentence (null when it has values). model: the
 * ModelInfo; probe: whether the heads were scored on the random probe.
 */
export function missingReason(data, site, score, model) {
  const z = matrixOf(data, site, score);
  if (z && !allNull(z)) return null;
  const label = SCORE_LABEL[score];
  if (score === "importance") {
    return "Importance needs the model's own prediction to measure a drop in, and this model has no output head (it is shown for its attention only).";
  }
  if (site === "decoder.cross" && !z) {
    const rnn =
      model && model.architecture === "rnn"
        ? " The RNN's one attention head is this kind: it still has a first-token score and an entropy, and an importance."
        : "";
    return `"${label}" does not apply to cross-attention: its queries (the target) and its keys (the source) are two different sequences, so there is no token "before" a query and no earlier copy of it among the keys.${rnn}`;
  }
  if (score === "previous_token") return "One token only: there is no token before it to look at.";
  if (score === "induction" || score === "duplicate_token") {
    return `Nothing to measure on this input: "${label}" looks at tokens that occurred earlier, and no token occurs twice here. Score the heads on random tokens, repeated, or type a sentence with a repeated word.`;
  }
  return "Nothing to measure on this input.";
}

/**
 * Decimals that show a matrix's values apart: 2 when its largest |value| is ≥ 0.1, more as it
 * shrinks (a confident translator's importances are all below 0.01), at most 5.
 */
export function digitsFor(values) {
  let top = 0;
  for (const v of values.flat()) if (v !== null && v !== undefined) top = Math.max(top, Math.abs(v));
  if (top === 0 || top >= 0.1) return 2;
  return Math.min(5, 1 + Math.ceil(-Math.log10(top)));
}

/** A value to `digits` decimals; one that rounds to zero shows as 0, never −0.00. */
function cellText(v, digits) {
  const text = fmt(v, digits);
  return /^−0\.0*$/.test(text) ? text.slice(1) : text;
}

/** The colour scale of a score: attention shares in [0, 1], entropy up to ln(keys), importance signed. */
function scaleOf(score, z, keys) {
  if (score === "importance") {
    let top = 1e-6;
    for (const row of z) for (const v of row) if (v !== null) top = Math.max(top, Math.abs(v));
    return { colorscale: DIVERGING, zmin: -top, zmax: top };
  }
  if (score === "entropy") return { colorscale: SEQUENTIAL, zmin: 0, zmax: Math.log(Math.max(2, keys)) };
  return { colorscale: SEQUENTIAL, zmin: 0, zmax: 1 };
}

/**
 * z [L][H] (null: nothing measured) as a heatmap, layer 0 on top. opts: {score, keys (the
 * number of keys: entropy's top), selected: {layer, head} outlined, onPick(layer, head) on a
 * click}. Resolves once drawn.
 */
export async function scoreHeatmap(
  div,
  z,
  { score, keys = 2, selected = null, onPick = null, label = SCORE_LABEL[score] },
) {
  const L = z.length;
  const H = L ? z[0].length : 0;
  const size = fontSize();
  const unit = UNIT[score] ? ` (${UNIT[score]})` : "";
  const digits = digitsFor(z);
  const text = z.map((row) => row.map((v) => (v === null ? "" : cellText(v, digits))));
  const hover = z.map((row) => row.map((v) => (v === null ? "nothing to measure" : fmt(v, 4))));
  const cell = size * (H > 8 ? 2.6 : 3.2);
  const outline = (color, width) => ({
    type: "rect",
    x0: selected.head - 0.5,
    x1: selected.head + 0.5,
    y0: selected.layer - 0.5,
    y1: selected.layer + 0.5,
    line: { color, width },
  });
  const trace = {
    type: "heatmap",
    z,
    x: Array.from({ length: H }, (_, h) => h),
    y: Array.from({ length: L }, (_, l) => l),
    ...scaleOf(score, z, keys),
    text,
    texttemplate: H <= 16 ? "%{text}" : "",
    textfont: { size: size - 1 },
    customdata: hover,
    hovertemplate: `layer %{y} · head %{x}<br>${label}${unit}: %{customdata}<extra></extra>`,
    hoverongaps: true,
    xgap: 2,
    ygap: 2,
    // importance's long name would not fit beside a half-width map: its unit says it
    colorbar: {
      title: { text: score === "importance" ? UNIT.importance : `${label}${unit}`, side: "right" },
      thickness: 14,
      len: 0.9,
    },
  };
  const layout = {
    height: Math.max(190, Math.min(620, L * cell + 90)),
    margin: { l: 64, r: 10, t: 10, b: 50 },
    plot_bgcolor: MASKED, // a cell with nothing measured is a gap: this grey
    xaxis: {
      title: { text: "head", font: { size } },
      tickmode: "array",
      tickvals: trace.x,
      showgrid: false,
      zeroline: false,
    },
    yaxis: {
      title: { text: "layer", font: { size } },
      tickmode: "array",
      tickvals: trace.y,
      autorange: "reversed",
      showgrid: false,
      zeroline: false,
    },
    shapes: selected ? [outline("#000000", 4), outline("#ffffff", 1.5)] : [],
  };
  await reactPickable(div, [trace], layout, onPick);
}

/** Every head of a site: [{layer, head, values: {score: value | null}}], layer by layer. */
export function headRows(data, site, scores) {
  const shown = scores.filter((s) => matrixOf(data, site, s));
  const any = matrixOf(data, site, shown[0]) || [];
  const rows = [];
  any.forEach((row, layer) =>
    row.forEach((_, head) => {
      const values = {};
      for (const s of shown) values[s] = matrixOf(data, site, s)[layer][head];
      rows.push({ layer, head, values });
    }),
  );
  return rows;
}

/** "importance" / "-importance" (descending) / "" (layer, head) → {key, desc}. */
export function parseSort(sort) {
  const desc = sort.startsWith("-");
  const key = desc ? sort.slice(1) : sort;
  return { key: key || "head", desc };
}

/** The rows in a sort's order; heads with nothing measured go last either way. */
export function sortRows(rows, sort) {
  const { key, desc } = parseSort(sort);
  const byHead = (a, b) => a.layer - b.layer || a.head - b.head;
  if (key === "head") return [...rows].sort((a, b) => (desc ? -byHead(a, b) : byHead(a, b)));
  return [...rows].sort((a, b) => {
    const x = a.values[key] ?? null;
    const y = b.values[key] ?? null;
    if (x === null || y === null) return (x === null) - (y === null) || byHead(a, b);
    return (desc ? y - x : x - y) || byHead(a, b);
  });
}

/** The sort a click on a column's header gives: the other way on the sorted column, else
 * scores highest first and heads in order. */
export function nextSort(sort, key) {
  const now = parseSort(sort);
  const desc = now.key === key ? !now.desc : key !== "head";
  const next = `${desc ? "-" : ""}${key}`;
  return next === "head" ? "" : next;
}

/**
 * The table of every head: a column per score (`scores`, each with values), a header button
 * per column that sorts (aria-sort on the sorted one), a row per head whose name links to
 * hrefOf(layer, head). selected: {layer, head} marked. onSort(sort) on a header click.
 */
export function renderHeadTable(
  table,
  { rows, scores, sort, selected, hrefOf, onSort, label = (s) => SCORE_LABEL[s] },
) {
  clear(table);
  const { key, desc } = parseSort(sort);
  const header = (column, label, title) => {
    const sorted = column === key;
    const arrow = sorted ? (desc ? " ▼" : " ▲") : "";
    const button = el(
      "button",
      { type: "button", class: "sort", "data-sort": column, title },
      label,
      el("span", { class: "sort-arrow", "aria-hidden": "true", text: arrow }),
    );
    button.addEventListener("click", () => onSort(nextSort(sort, column)));
    return el(
      "th",
      {
        scope: "col",
        class: column === "head" ? "" : "num",
        "aria-sort": sorted ? (desc ? "descending" : "ascending") : null,
      },
      button,
    );
  };
  table.append(
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        header("head", "head", "sort by layer, then head"),
        scores.map((s) => header(s, label(s), `sort by ${label(s)}${UNIT[s] ? ` (${UNIT[s]})` : ""}`)),
      ),
    ),
  );
  const digits = Object.fromEntries(scores.map((s) => [s, Math.max(3, digitsFor(rows.map((r) => r.values[s])))]));
  const body = el("tbody");
  for (const row of sortRows(rows, sort)) {
    const picked = selected && row.layer === selected.layer && row.head === selected.head;
    body.append(
      el(
        "tr",
        { class: picked ? "selected" : null, "data-layer": row.layer, "data-head": row.head },
        el(
          "th",
          { scope: "row" },
          el("a", {
            href: hrefOf(row.layer, row.head),
            text: headName(row.layer, row.head),
            title: `open layer ${row.layer}, head ${row.head} in the explorer`,
          }),
        ),
        scores.map((s) => {
          const v = row.values[s];
          return el("td", {
            class: "num",
            text: v === null ? "—" : cellText(v, digits[s]),
            title: v === null ? "nothing to measure" : null,
          });
        }),
      ),
    );
  }
  table.append(body);
}

/** The table as CSV text: site, layer, head, then a column per score. */
export function rowsCSV(rows, site, scores) {
  const lines = [["site", "layer", "head", ...scores].join(",")];
  for (const r of rows) lines.push([site, r.layer, r.head, ...scores.map((s) => r.values[s] ?? "")].join(","));
  return `${lines.join("\n")}\n`;
}

/** An ablation as the explorer's `ablate` URL value: "decoder.self:1:0:zero", comma-joined. */
export const ablateParam = (heads) => heads.map((a) => `${a.site}:${a.layer}:${a.head}:${a.mode}`).join(",");

/**
 * The explorer's URL (it is served at "/") on a head: model, text (and a seq2seq's target),
 * site (when the model has several), layer, head and, with `ablate` ([{site, layer, head,
 * mode}]), the heads to ablate.
 */
export function explorerHref(model, input, { site, layer, head, ablate = null }) {
  const params = new URLSearchParams({ model: model.id });
  if (input.text) params.set("text", input.text);
  if (model.kind === "seq2seq" && input.target) params.set("target", input.target);
  if (Object.keys(model.sites || {}).length > 1) params.set("site", site);
  params.set("layer", String(layer));
  params.set("head", String(head));
  if (ablate && ablate.length) params.set("ablate", ablateParam(ablate));
  return `/?${params}`;
}

/** The label of a site for a sentence: "decoder self-attention (masked)". */
export const siteLabel = (site) => SITE_LABEL[site] || site;

/** Ranks (1-based, ties averaged) of a list of numbers. */
function ranks(xs) {
  const order = xs.map((x, i) => [x, i]).sort((a, b) => a[0] - b[0]);
  const r = new Array(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/**
 * Spearman's rank correlation between two [L][H] matrices over the heads where both have a
 * value: {rho (null when it is undefined: fewer than 3 heads, or one side constant), n}.
 */
export function spearman(a, b) {
  const x = [];
  const y = [];
  a.forEach((row, l) =>
    row.forEach((v, h) => {
      const w = b[l][h];
      if (v !== null && w !== null) {
        x.push(v);
        y.push(w);
      }
    }),
  );
  const n = x.length;
  if (n < 3) return { rho: null, n };
  const rx = ranks(x);
  const ry = ranks(y);
  const mean = (n + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) ** 2;
    syy += (ry[i] - mean) ** 2;
  }
  return { rho: sxx && syy ? sxy / Math.sqrt(sxx * syy) : null, n };
}

/** The head with the largest value of an [L][H] matrix: {layer, head, value} or null. */
export function topHead(z) {
  let best = null;
  z.forEach((row, layer) =>
    row.forEach((value, head) => {
      if (value !== null && (!best || value > best.value)) best = { layer, head, value };
    }),
  );
  return best;
}
