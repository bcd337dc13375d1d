// Compare: the explorer's head on a second input B beside the first (A), and A − B on a
// diverging scale; a layers × heads map of how far each head's attention moved between them
// (total variation, as the ablation table measures it). B is the URL's `compare` (a text) read
// by the model `compare_model` (another model with the same vocabulary; "": the same one); the
// /patch view opens a cell here with its corrupted input as B.

import * as api from "./api.js";
import { siteTokens } from "./attn.js";
import { $, fillSelect, fmt } from "./dom.js";
import { registerExport } from "./export.js";
import { effectHeatmap } from "./patchmaps.js";
import { purge, tokenHeatmap } from "./plots.js";
import { labelTokens } from "./tokens.js";

/** Past this many tokens a side the comparison is not drawn (three Plotly heatmaps). */
const MAX_TOKENS = 128;

/** Total variation between two attention matrices, averaged over their query rows. */
export function totalVariation(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    let row = 0;
    for (let j = 0; j < a[i].length; j++) row += Math.abs((a[i][j] ?? 0) - (b[i][j] ?? 0));
    sum += row / 2;
  }
  return a.length ? sum / a.length : 0;
}

const sameShape = (a, b) => a.length === b.length && a.every((row, i) => row.length === b[i].length);

/** The models B may be read by: those with A's kind and vocabulary (the same token ids). */
export const comparable = (model, models) =>
  models.filter((m) => m.id !== model.id && m.kind === model.kind && m.vocab_size === model.vocab_size);

/**
 * state: the explorer's urlState (with `compare`, `compare_model`); models(): the models
 * loaded; onOpen(layer, head) opens a head (the TV map's click). Returns update({model, site,
 * layer, head}) to call on every render.
 */
export function comparePanel(state, { models, onOpen }) {
  const cache = new Map(); // request key -> the /attention answer (json)
  const note = $("#compare-note");
  const divs = ["#compare-a", "#compare-b", "#compare-diff", "#compare-tv"].map((s) => $(s));
  let shown = null; // {a, b, diff, tv, site, layer, head} for the export

  function fetchOf(model, text, target) {
    const body = { ...api.inputBody(model, { text, target }) };
    const key = JSON.stringify(body);
    if (!cache.has(key))
      cache.set(
        key,
        api.attention(body).catch((e) => (cache.delete(key), Promise.reject(e))),
      );
    return cache.get(key);
  }

  /** The most tokens either input has (text or target), by /tokenize: a long input is refused
   * before its whole attention (every layer and head, as JSON) is fetched and parsed. */
  const lengths = new Map(); // JSON [model, text] -> its token count
  function tokensOf(model, text) {
    if (!text) return Promise.resolve(0);
    const key = JSON.stringify([model.id, text]);
    if (!lengths.has(key))
      lengths.set(
        key,
        api.tokenize(model.id, text).then(
          (r) => r.tokens.length,
          (e) => (lengths.delete(key), Promise.reject(e)),
        ),
      );
    return lengths.get(key);
  }

  function empty(text) {
    note.textContent = text;
    for (const div of divs) {
      purge(div);
      div.hidden = true;
    }
    shown = null;
  }

  function fillModels(model) {
    const others = comparable(model, models());
    fillSelect(
      $("#compare-model"),
      [{ value: "", label: `${model.id} (the same)` }, ...others.map((m) => ({ value: m.id, label: m.id }))],
      others.some((m) => m.id === state.compare_model) ? state.compare_model : "",
    );
    return others.find((m) => m.id === state.compare_model) || model;
  }

  async function update({ model, site, layer, head }) {
    $("#compare-input").value = state.compare;
    const modelB = fillModels(model);
    if (!state.compare && modelB === model)
      return empty("Type a second input (B), or pick a second model, to see this head's attention on both, and A − B.");
    const counts = await Promise.all([
      tokensOf(model, state.text),
      tokensOf(model, state.target),
      tokensOf(modelB, state.compare || state.text),
      tokensOf(modelB, state.target),
    ]);
    if (Math.max(...counts) > MAX_TOKENS)
      return empty(`The comparison draws inputs up to ${MAX_TOKENS} tokens (here ${Math.max(...counts)}).`);
    const [A, B] = await Promise.all([
      fetchOf(model, state.text, state.target),
      fetchOf(modelB, state.compare || state.text, state.target),
    ]);
    const depthB = B.attention[site] ? B.attention[site].length : 0;
    if (layer >= depthB || head >= modelB.n_heads)
      return empty(`${modelB.id} has no ${site} layer ${layer}, head ${head} to compare with.`);
    const ta = siteTokens(A, site);
    const tb = siteTokens(B, site);
    if (Math.max(ta.queries.length, ta.keys.length, tb.queries.length, tb.keys.length) > MAX_TOKENS)
      return empty(`The comparison draws inputs up to ${MAX_TOKENS} tokens.`); // specials added
    const a = A.attention[site][layer][head];
    const b = B.attention[site][layer][head];
    for (const div of divs) div.hidden = false;
    const label = (t) => labelTokens(t);
    await tokenHeatmap(divs[0], a, { rows: label(ta.queries), cols: label(ta.keys), title: "A", zmin: 0, zmax: 1 });
    await tokenHeatmap(divs[1], b, { rows: label(tb.queries), cols: label(tb.keys), title: "B", zmin: 0, zmax: 1 });
    if (!sameShape(a, b)) {
      purge(divs[2]);
      purge(divs[3]);
      divs[2].hidden = true;
      divs[3].hidden = true;
      note.textContent = `A has ${ta.keys.length} tokens and B ${tb.keys.length}: A − B needs inputs of the same length.`;
      shown = { a, b, site, layer, head };
      return;
    }
    const diff = a.map((row, i) => row.map((v, j) => (v === null || b[i][j] === null ? null : v - b[i][j])));
    const rows = label(ta.queries);
    await tokenHeatmap(divs[2], diff, { rows, cols: label(ta.keys), title: "A − B", diverging: true, value: "A − B" });
    if (A.attention[site].length !== depthB || modelB.n_heads !== model.n_heads) {
      purge(divs[3]);
      divs[3].hidden = true;
      note.textContent = "The two models differ in layers or heads: only the head shown is compared.";
      shown = { a, b, diff, site, layer, head };
      return;
    }
    const tv = A.attention[site].map((heads, l) => heads.map((m, h) => totalVariation(m, B.attention[site][l][h])));
    await effectHeatmap(divs[3], tv, {
      columns: tv[0].map((_, h) => `H${h}`),
      columnTitle: "head",
      value: "total variation",
      onPick: (l, h) => onOpen(l, h),
    });
    note.textContent = `Layer ${layer}, head ${head}: total variation between A and B ${fmt(tv[layer][head], 3)} (0: the same attention, 1: disjoint).`;
    shown = { a, b, diff, tv, site, layer, head };
  }

  registerExport("compare", {
    filename: () => `attnviz-${state.model}-compare-L${shown ? shown.layer : 0}H${shown ? shown.head : 0}`,
    plot: () => divs[2],
    data: () => ({
      model: state.model,
      model_b: state.compare_model || state.model,
      a_text: state.text,
      b_text: state.compare || state.text,
      ...shown,
    }),
  });
  return update;
}
