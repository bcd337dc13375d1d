// What the lesson's steps share: its URL state, the model a step opens on, a view's URL with
// the step's state, option rows, panels and figures, the head a step shows (the sharpest one
// until the reader picks), an input's attention, one head's heatmap and a layer's head view.
//
// ctx: {model, models (all loaded), state (the lesson's URL state: model, text, target and
// LESSON_STATE), save(patch), signal, redraw()}. The components draw only what the server
// sent; a step never copies a view's drawing code.

import * as api from "../api.js";
import { AttentionSource, siteDepth } from "../attnstore.js";
import { el, fillSelect } from "../dom.js";
import { registerExport } from "../export.js";
import { headHeatmap, layerWeights, siteAxes } from "../headpanels.js";
import { renderHeadView } from "../headview.js";
import { adaptiveHeatmap } from "../heatmap.js";
import { figure, panel } from "../panel.js";
import { int, intList, str } from "../state.js";

/** The picks a step's panels keep in the lesson's URL (each step starts from the defaults). */
export const LESSON_STATE = {
  site: str(""),
  stack: str(""),
  layer: int(-1),
  head: int(-1),
  row: int(-1),
  norm: str(""),
  token: int(-1),
  unit: int(-1),
  drop: intList([]),
  paths: str("recurrence"),
};

export const isTransformer = (m) => m.architecture !== "rnn";
/** The grid's thumbnails: every head pooled to at most this many blocks a side. */
export const POOL = 64;

/** The model a step opens on: the first of its `prefer` loaded, else the first it can show. */
export function startOf(step, models) {
  const fit = models.filter(step.models);
  for (const id of step.prefer || []) {
    const m = fit.find((x) => x.id === id);
    if (m) return m;
  }
  return fit[0] || null;
}

/** A view's URL holding the step's model and sentence, and `extra` picks (unset ones left out). */
export function viewUrl(path, ctx, extra = {}) {
  const params = new URLSearchParams({ model: ctx.model.id, text: ctx.state.text });
  if (ctx.state.target) params.set("target", ctx.state.target);
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null || v === "" || v === -1 || (Array.isArray(v) && !v.length)) continue;
    params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  return `${path}?${params}`;
}

/** A row of labelled selects inside a step: [{label, name, options, value, onChange}]. */
export function optionsRow(fields) {
  return el(
    "section",
    { class: "card options", "aria-label": "What this step shows" },
    fields.map((f) => {
      const select = el("select", { name: f.name });
      fillSelect(select, f.options, f.value);
      select.addEventListener("change", () => f.onChange(select.value));
      return el("label", { class: "inline-field" }, el("span", { class: "field-label", text: f.label }), select);
    }),
  );
}

export const numbered = (n, label = String) => Array.from({ length: n }, (_, i) => ({ value: i, label: label(i) }));
export const stacksOf = (model) =>
  ({ encoder: ["encoder"], decoder: ["decoder"] })[model.kind] || ["encoder", "decoder"];
export const depthOf = (model, stack) =>
  stack === "decoder" && model.kind === "seq2seq" ? (model.n_decoder_layers ?? model.n_layers) : model.n_layers;

/** A panel in `body`: its inner element (figures go there). */
export function framed(body, { title, subtitle = "", exportId = null, label = title }) {
  const { root, body: inner } = panel({ title, subtitle, exportId, label });
  body.append(root);
  return inner;
}

/** A figure in `box`, exported as `id` with `data()`. */
export function exported(box, id, filename, data, title = "") {
  const f = figure(title);
  box.append(f.box);
  registerExport(id, { filename: () => filename, plot: () => f.plot, data });
  return f;
}

/** The layer and head a step shows: the URL's when the model has them, else `layer` (-1: the
 * last) and head 0. */
export function headPicks(ctx, site, { layer: defaultLayer = 0 } = {}) {
  const { model, state } = ctx;
  const depth = siteDepth(model, site);
  const fallback = defaultLayer < 0 ? depth - 1 : Math.min(defaultLayer, depth - 1);
  const layer = state.layer >= 0 && state.layer < depth ? state.layer : fallback;
  const head = state.head >= 0 && state.head < model.n_heads ? state.head : 0;
  return { layer, head, depth };
}

/**
 * Until the reader picks one, a step opens on the head that attends most sharply to this
 * sentence: the lowest mean entropy of its rows (POST /heads/scores), a head with a clear
 * pattern rather than a near-uniform one. Saves it in the URL.
 */
export async function sharpestHead(ctx, site) {
  const { model, state, save, signal } = ctx;
  if (state.layer >= 0) return;
  const body = { ...api.inputBody(model, state), scores: ["entropy"] };
  const answer = await api.post("/heads/scores", body, { signal });
  const entropy = answer.scores[site] && answer.scores[site].entropy;
  if (!entropy) return;
  let best = { layer: 0, head: 0, value: Number.POSITIVE_INFINITY };
  entropy.forEach((row, layer) =>
    row.forEach((value, head) => {
      if (value !== null && value < best.value) best = { layer, head, value };
    }),
  );
  save({ layer: best.layer, head: best.head });
}

/** Layer (and head) pickers for a step that shows one head of `site`. */
export function headOptions(ctx, site, picks, { heads = true } = {}) {
  const { save, redraw, model } = ctx;
  const fields = [
    {
      label: "Layer",
      name: "layer",
      options: numbered(picks.depth),
      value: picks.layer,
      onChange: (v) => (save({ layer: Number(v) }), redraw()),
    },
  ];
  if (heads) {
    fields.push({
      label: "Head",
      name: "head",
      options: numbered(model.n_heads),
      value: picks.head,
      onChange: (v) => (save({ head: Number(v) }), redraw()),
    });
  }
  return optionsRow(fields);
}

/** The first self-attention site of a model (its encoder's, else its decoder's). */
export const selfSite = (model) => (model.kind === "decoder" ? "decoder.self" : "encoder.self");

/** An input's attention, its first heads loaded (lib/attnstore.js, as the explorer fetches). */
export async function attentionOf(ctx, layer, heads, { scores = false } = {}) {
  const { model, state, signal } = ctx;
  const source = new AttentionSource(model, { text: state.text, target: state.target });
  await source.load(layer, heads, { scores, signal });
  return source;
}

/** One head's heatmap (the explorer's figure) into a new figure of `box`; `axes` (siteAxes,
 * its rows relabelled) and `labels` (its axis titles) where a step names them otherwise. */
export function headFigure(
  box,
  source,
  site,
  layer,
  head,
  { scores = false, id, title = "", axes = siteAxes(source, site, false), labels = {} },
) {
  const heatmap = headHeatmap(source, axes, site, layer, head, { scores });
  const { z, note } = heatmap;
  const opts = { ...heatmap.opts, ...labels };
  const f = figure(title);
  box.append(f.box);
  f.note.textContent = note;
  f.box.append(f.note);
  const drawn = adaptiveHeatmap(f.plot).draw(z, { ...opts, square: true });
  registerExport(id, {
    filename: () => `attnviz-${source.model.id}-${scores ? "scores" : "heatmap"}-L${layer}H${head}`,
    plot: () => f.plot,
    data: () => ({
      model: source.model.id,
      site,
      layer,
      head,
      queries: axes.left,
      keys: axes.right,
      values: scores ? "scores" : "weights",
    }),
  });
  return drawn;
}

/** Every head of one layer as the head view draws them (no lock), in a new box in `body`. */
export function layerHeadView(body, source, axes, site, layer, titles = {}) {
  const wrap = el("div", { class: "head-view-wrap" });
  body.append(wrap);
  return renderHeadView(wrap, {
    left: axes.left,
    right: axes.right,
    weights: layerWeights(source, axes, site, layer, false),
    active: Array.from({ length: source.model.n_heads }, () => true),
    lock: null,
    onLock: () => {},
    ...titles,
  });
}

/** "Open in full view" at the head this step shows, on the model's self-attention. */
export const atSelfHead = (path) => (ctx) => {
  const picks = headPicks(ctx, selfSite(ctx.model));
  return viewUrl(path, ctx, {
    site: ctx.model.kind === "seq2seq" ? selfSite(ctx.model) : "",
    layer: picks.layer,
    head: picks.head,
  });
};
