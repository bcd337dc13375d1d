// The lesson's eleven steps, in the lecture notes' order. Each step is {title, text (its
// explanation, written for this project), models (which models it can show), prefer (the
// models it opens on, best first), sentence (the preset it opens on), full(ctx) (its view's
// URL with the same state), show(body, ctx) (fetch, then mount the views' lib components)}.
//
// ctx: {model, models (all loaded), state (the lesson's URL state: model, text, target and
// LESSON_STATE), save(patch), signal, redraw()}. The components draw only what the server
// sent; a step never copies a view's drawing code.

import * as api from "./api.js";
import { siteTokens } from "./attn.js";
import { AttentionSource, siteDepth } from "./attnstore.js";
import {
  batchChoices,
  blockTokens,
  droppedFrom,
  renderAddNorm,
  renderComparison,
  renderFFN,
  renderOrder,
  renderResidual,
} from "./blockpanels.js";
import { chosenToken, drawTopK, matOf, stepRow } from "./decodepanels.js";
import { el, fillSelect } from "./dom.js";
import { renderGrid } from "./grid.js";
import { gridLayers, headHeatmap, layerWeights, siteAxes } from "./headpanels.js";
import { adaptiveHeatmap } from "./heatmap.js";
import { renderHeadView } from "./headview.js";
import { drawSteps, fetchHead, fetchLayerZ, headTensors, rowArithmetic } from "./mathsteps.js";
import { modelSays } from "./modelsays.js";
import { figure, panel } from "./panel.js";
import { drawCurves, drawEmbedding, drawTable } from "./positionpanels.js";
import { additiveNote, relativeNote, relativePlot } from "./ropepanels.js";
import { renderTokenStrip } from "./tokenstrip.js";
import { continuesWord, displayToken, labelTokens } from "./tokens.js";
import { registerExport } from "./export.js";
import { RNN_GRADIENT_PRESET } from "./presets.js";
import { drawGradients } from "./rnnpanels.js";
import { int, intList, str } from "./state.js";

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

const isTransformer = (m) => m.architecture !== "rnn";
/** The grid's thumbnails: every head pooled to at most this many blocks a side. */
const POOL = 64;

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
function viewUrl(path, ctx, extra = {}) {
  const params = new URLSearchParams({ model: ctx.model.id, text: ctx.state.text });
  if (ctx.state.target) params.set("target", ctx.state.target);
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null || v === "" || v === -1 || (Array.isArray(v) && !v.length)) continue;
    params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  return `${path}?${params}`;
}

/** A row of labelled selects inside a step: [{label, name, options, value, onChange}]. */
function optionsRow(fields) {
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

const numbered = (n, label = String) => Array.from({ length: n }, (_, i) => ({ value: i, label: label(i) }));
const stacksOf = (model) => ({ encoder: ["encoder"], decoder: ["decoder"] })[model.kind] || ["encoder", "decoder"];
const depthOf = (model, stack) =>
  stack === "decoder" && model.kind === "seq2seq" ? (model.n_decoder_layers ?? model.n_layers) : model.n_layers;

/** A panel in `body`: its inner element (figures go there). */
function framed(body, { title, subtitle = "", exportId = null, label = title }) {
  const { root, body: inner } = panel({ title, subtitle, exportId, label });
  body.append(root);
  return inner;
}

/** A figure in `box`, exported as `id` with `data()`. */
function exported(box, id, filename, data, title = "") {
  const f = figure(title);
  box.append(f.box);
  registerExport(id, { filename: () => filename, plot: () => f.plot, data });
  return f;
}

/** The layer and head a step shows: the URL's when the model has them, else `layer` (-1: the
 * last) and head 0. */
function headPicks(ctx, site, { layer: defaultLayer = 0 } = {}) {
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
async function sharpestHead(ctx, site) {
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
function headOptions(ctx, site, picks, { heads = true } = {}) {
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
const selfSite = (model) => (model.kind === "decoder" ? "decoder.self" : "encoder.self");

/** An input's attention, its first heads loaded (lib/attnstore.js, as the explorer fetches). */
async function attentionOf(ctx, layer, heads, { scores = false } = {}) {
  const { model, state, signal } = ctx;
  const source = new AttentionSource(model, { text: state.text, target: state.target });
  await source.load(layer, heads, { scores, signal });
  return source;
}

/** One head's heatmap (the explorer's figure) into a new figure of `box`. */
function headFigure(box, source, site, layer, head, { scores = false, id, title = "" }) {
  const axes = siteAxes(source, site, false);
  const { z, opts, note } = headHeatmap(source, axes, site, layer, head, { scores });
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

// ---------------------------------------------------------------------------------------
// steps 1 to 4: tokens, positions, one head's arithmetic, every head

const tokens = {
  slug: "tokens",
  title: "Tokens, ids and embeddings",
  text: [
    "A network never sees letters. A tokenizer cuts the sentence into pieces from a fixed vocabulary (whole words, pieces of words, and markers such as [CLS], <s> or </s> that the model adds itself) and replaces every piece by its number in that vocabulary: its id.",
    "The first layer is a lookup table with one learned row per id. The row is the token's embedding: d_model numbers (128 in the small models), almost all of them non-zero. Training places tokens that are used alike near each other, which a one-hot code, where every pair of words is equally far apart, cannot do.",
    "Below: the pieces and ids of the sentence, then the embedding row of each one, before anything else has happened to it.",
  ],
  models: isTransformer,
  prefer: ["seq2seq-en-fr", "encoder-mini", "decoder-mini"],
  sentence: "you are welcome",
  target: false,
  full: (ctx) => viewUrl("/", ctx),
  async show(body, ctx) {
    const { model, state, signal } = ctx;
    const [tok, pos] = await Promise.all([
      api.post("/tokenize", { model: model.id, text: state.text }, { signal }),
      api.get(`/models/${encodeURIComponent(model.id)}/positions?n=1&text=${encodeURIComponent(state.text)}`, {
        signal,
      }),
    ]);
    if (signal.aborted) return;
    const strip = el("div", {
      class: "token-rows",
      role: "region",
      tabindex: 0,
      "aria-label": "Tokens with their ids",
    });
    framed(body, {
      title: "Tokens and their ids",
      subtitle:
        "Each piece, with its id under it; dashed ★: a special token the model adds; ##: a piece that continues the word before it.",
    }).append(strip);
    renderTokenStrip(strip, [["source", labelTokens(tok.tokens)]]);
    const box = framed(body, {
      title: "Each token's embedding",
      subtitle: `Row i: the learned vector of token i (${model.d_model} numbers), looked up by its id.`,
      exportId: "lesson-embedding",
    });
    const f = exported(box, "lesson-embedding", `attnviz-${model.id}-embeddings`, () => ({
      model: model.id,
      tokens: pos.embedding.tokens,
      embedding: pos.embedding.token,
    }));
    drawEmbedding({ token: f.plot }, pos);
  },
};

const positions = {
  slug: "positions",
  title: "Positional encoding: sinusoidal, then RoPE",
  text: [
    "Attention compares every token with every other one at the same time, so by itself it cannot tell “the dog bites the man” from “the man bites the dog”. The order has to be written into the vectors.",
    "The original Transformer adds to each embedding a fixed vector that depends only on the position: the sine and cosine of the position at frequencies that shrink geometrically from one pair of dimensions to the next. Fast waves tell neighbours apart, slow ones tell the beginning of a sentence from its end; the values stay between −1 and 1, and the same table serves every sentence. BERT learns its table instead.",
    "RoPE, used by LLaMA-style decoders such as decoder-mini, adds nothing to the embeddings: it turns every query and key by an angle proportional to its position. The score of a query with a key then depends only on how far apart they are, which is why the RoPE matrix below repeats along its diagonals while the other one does not.",
  ],
  models: (m) => isTransformer(m) && ["sinusoidal", "learned"].includes(m.positional),
  prefer: ["seq2seq-en-fr", "encoder-mini"],
  sentence: "the dog bites the man",
  target: false,
  full: (ctx) => viewUrl("/positions", ctx),
  async show(body, ctx) {
    const { model, models, state, signal } = ctx;
    const n = Math.min(32, model.max_len);
    const rope =
      models.find((m) => isTransformer(m) && m.positional === "rope" && !m.attn_only) ||
      models.find((m) => isTransformer(m) && m.positional === "rope");
    const relative = async (m) => {
      const t = await api.post("/tokenize", { model: m.id, text: state.text }, { signal });
      const T = t.tokens.length;
      return api.post(
        "/rope/relative",
        {
          model: m.id,
          text: state.text,
          layer: 0,
          head: 0,
          query: T - 1,
          key: Math.max(0, T - 2),
          max_position: Math.min(24, m.max_len),
        },
        { signal },
      );
    };
    const [pos, ropeScores, addedScores] = await Promise.all([
      api.get(`/models/${encodeURIComponent(model.id)}/positions?n=${n}&text=${encodeURIComponent(state.text)}`, {
        signal,
      }),
      rope ? relative(rope) : null,
      rope ? relative(model) : null,
    ]);
    if (signal.aborted) return;
    const table = framed(body, {
      title: `${model.id}'s positional table`,
      subtitle:
        "Left: the vector added at each position (rows) over the dimensions; right: a few dimensions along the positions.",
      exportId: "lesson-table",
    });
    const row = el("div", { class: "matrices" });
    table.append(row);
    const t = exported(row, "lesson-table", `attnviz-${model.id}-positions`, () => ({
      model: model.id,
      table: pos.table,
    }));
    const c = figure("");
    row.append(c.box);
    drawTable(t.plot, pos, { height: 360 });
    drawCurves(c.plot, pos, { height: 360 });
    const sum = framed(body, {
      title: "What layer 0 reads: embedding + position",
      subtitle: "Each token's embedding, plus the vector of its position, on one colour scale.",
      exportId: "lesson-sum",
    });
    const three = el("div", { class: "matrices" });
    sum.append(three);
    const parts = ["token embedding", "positional vector", "their sum"].map((title) => {
      const f = figure(title);
      three.append(f.box);
      return f;
    });
    registerExport("lesson-sum", {
      filename: () => `attnviz-${model.id}-embedding-plus-pe`,
      plot: () => parts[2].plot,
      data: () => ({ model: model.id, text: state.text, embedding: pos.embedding }),
    });
    drawEmbedding({ token: parts[0].plot, position: parts[1].plot, sum: parts[2].plot }, pos);
    if (!rope) return;
    const rel = framed(body, {
      title: "RoPE: the score depends only on the distance",
      subtitle:
        "One query and one key of this sentence placed at every pair of positions (m, n): the score they would get there.",
      exportId: "lesson-relative",
    });
    const pair = el("div", { class: "matrices" });
    rel.append(pair);
    const [a, b] = [ropeScores, addedScores].map((r, i) => {
      const f = figure("", { note: " " });
      pair.append(f.box);
      f.note.textContent = i === 0 ? relativeNote(r.scores) : additiveNote(r.scores);
      return f;
    });
    registerExport("lesson-relative", {
      filename: () => `attnviz-${rope.id}-rope-relative`,
      plot: () => a.plot,
      data: () => ({ rope: ropeScores, added: addedScores }),
    });
    relativePlot(a.plot, ropeScores.scores, `${rope.id} (RoPE)`, { height: 380 });
    relativePlot(b.plot, addedScores.scores, `${model.id} (${model.positional})`, { height: 380 });
  },
};

/** Every head of one layer as the head view draws them (no lock), in a new box in `body`. */
function layerHeadView(body, source, axes, site, layer, titles = {}) {
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
const atSelfHead = (path) => (ctx) => {
  const picks = headPicks(ctx, selfSite(ctx.model));
  return viewUrl(path, ctx, {
    site: ctx.model.kind === "seq2seq" ? selfSite(ctx.model) : "",
    layer: picks.layer,
    head: picks.head,
  });
};

const qkv = {
  slug: "qkv",
  title: "Q, K, V: one head's arithmetic",
  text: [
    "Each token's vector is projected three times by learned matrices: a query (what this token is looking for), a key (what it can be found by) and a value (what it passes on when it is chosen).",
    "The head scores every query against every key with a dot product, divides by √dₖ so that the scores do not grow with the head's width and the softmax stays soft, hides what must not be seen, turns each row into weights that add up to 1, and gives each token the weighted average of the values.",
    "Follow one head below from X to its output, with the matrices the model computed for this sentence; the last card works one row out in numbers.",
  ],
  models: isTransformer,
  prefer: ["encoder-mini", "decoder-mini", "seq2seq-en-fr"],
  sentence: "i love machine learning",
  target: false,
  full: atSelfHead("/math"),
  async show(body, ctx) {
    const { model, state, signal } = ctx;
    const site = selfSite(model);
    await sharpestHead(ctx, site);
    const picks = headPicks(ctx, site);
    const request = { ...api.inputBody(model, state), layers: [picks.layer], heads: [picks.head] };
    const answer = await fetchHead(request, { signal });
    if (signal.aborted) return;
    body.append(headOptions(ctx, site, picks));
    const { queries, keys } = siteTokens(answer, site);
    const win = { r0: 0, r1: queries.length, c0: 0, c1: keys.length };
    const loadZ = () => fetchLayerZ(model, request, answer, site, 12 * 512 * 512).then((z) => (z ? z[site] : null));
    const shown = headTensors(answer, model, site, picks.layer, picks.head, win, loadZ);
    const pipeline = el("div", { class: "pipeline" });
    body.append(pipeline);
    for (const step of drawSteps(pipeline, shown)) {
      registerExport(step.id, {
        filename: () => `attnviz-${model.id}-math-${step.id}-L${picks.layer}H${picks.head}`,
        plot: () => step.plot,
        data: () => ({ model: model.id, text: state.text, site, layer: picks.layer, head: picks.head, ...step.data }),
      });
    }
    const detail = pipeline.querySelector(".cell-detail");
    if (detail) detail.replaceChildren(...rowArithmetic(shown, queries.length - 1, -1));
  },
};

const heads = {
  slug: "heads",
  title: "Multi-head attention",
  text: [
    "A layer runs several heads side by side, each with its own, smaller projections (dₖ = d_model / heads). With their own weights, heads can learn different relations: one follows the previous word, another links a verb to its subject, another looks at the end of the sentence.",
    "The heads' outputs are concatenated and mixed by one more matrix, W_O, back to d_model. Below, every head of a layer as lines from each token to the ones it attends to (one colour per head; hover a token to isolate its lines, click it to hold them), and every layer × head as a thumbnail: click one to see its layer.",
  ],
  models: isTransformer,
  prefer: ["encoder-mini", "decoder-mini", "seq2seq-en-fr"],
  sentence: "the dog bites the man",
  target: false,
  full: atSelfHead("/"),
  async show(body, ctx) {
    const { model, save, redraw, signal } = ctx;
    const site = selfSite(model);
    await sharpestHead(ctx, site);
    const picks = headPicks(ctx, site);
    const everyHead = Array.from({ length: model.n_heads }, (_, h) => h);
    const source = await attentionOf(ctx, picks.layer, everyHead);
    const pooled = await source.pooled(POOL, { signal });
    if (signal.aborted) return;
    body.append(headOptions(ctx, site, picks, { heads: false }));
    const axes = siteAxes(source, site, false);
    const two = el("div", { class: "two-col" });
    body.append(two);
    const hv = panel({
      title: `Layer ${picks.layer}: every head`,
      subtitle: "A line per query → key and head; its opacity is the weight.",
      exportId: "lesson-headview",
    });
    const grid = panel({
      title: "All layers × heads",
      subtitle: "Click a thumbnail to show its layer.",
      exportId: "lesson-grid",
    });
    two.append(hv.root, grid.root);
    const drawnView = layerHeadView(hv.body, source, axes, site, picks.layer);
    const thumbs = gridLayers(source, axes, site, pooled.sites[site], pooled.edges, false);
    const gridBox = el("div", { class: "grid-wrap" });
    grid.body.append(gridBox);
    const drawnGrid = renderGrid(gridBox, {
      layers: thumbs.layers,
      masked: thumbs.masked,
      selected: { layer: picks.layer, head: picks.head },
      note: thumbs.note,
      onPick: (layer, head) => {
        save({ layer, head });
        redraw();
      },
    });
    registerExport("lesson-headview", {
      filename: () => `attnviz-${model.id}-headview-L${picks.layer}`,
      svg: () => drawnView && drawnView.toSVG(),
      data: () => ({ model: model.id, site, layer: picks.layer, queries: axes.left, keys: axes.right }),
    });
    registerExport("lesson-grid", {
      filename: () => `attnviz-${model.id}-all-heads`,
      svg: () => drawnGrid && drawnGrid.toSVG(),
      data: () => ({ model: model.id, site, tokens: source.tokens }),
    });
  },
};

// ---------------------------------------------------------------------------------------
// steps 7 to 10: the mask, cross-attention, decoding, BERT

const mask = {
  slug: "mask",
  title: "The causal mask",
  text: [
    "A decoder learns to predict each next token from the ones before it. In training it reads whole sentences at once, so it has to be kept from looking ahead: before the softmax, the score of every query with a later key is set to −∞, and its weight becomes exactly 0.",
    "The attention matrix is then lower-triangular: the row of token i spreads its weight over tokens 0 … i only. That is what lets the trained model write one token at a time, seeing exactly what it saw in training.",
  ],
  models: (m) => isTransformer(m) && (m.kind === "decoder" || m.kind === "seq2seq"),
  prefer: ["decoder-mini", "induction-2l", "seq2seq-en-fr"],
  sentence: "the cat sat on the mat",
  full: (ctx) => {
    const picks = headPicks(ctx, "decoder.self");
    return viewUrl("/", ctx, {
      site: ctx.model.kind === "seq2seq" ? "decoder.self" : "",
      layer: picks.layer,
      head: picks.head,
      show: "scores",
    });
  },
  async show(body, ctx) {
    const { signal } = ctx;
    const site = "decoder.self";
    const picks = headPicks(ctx, site);
    const source = await attentionOf(ctx, picks.layer, [picks.head], { scores: true });
    if (signal.aborted) return;
    body.append(headOptions(ctx, site, picks));
    const box = framed(body, {
      title: `Masked self-attention: layer ${picks.layer}, head ${picks.head}`,
      subtitle:
        "Left: the scores QKᵀ/√dₖ, with the future masked (grey: −∞). Right: the weights after the softmax, 0 wherever the mask was.",
    });
    const two = el("div", { class: "matrices" });
    box.append(two);
    await Promise.all([
      headFigure(two, source, site, picks.layer, picks.head, {
        scores: true,
        id: "lesson-scores",
        title: "before the softmax",
      }),
      headFigure(two, source, site, picks.layer, picks.head, { id: "lesson-weights", title: "after the softmax" }),
    ]);
  },
};

const cross = {
  slug: "cross",
  title: "Cross-attention and the encoder–decoder",
  text: [
    "A translator has two stacks. The encoder reads the whole English sentence and leaves one vector per token. Each decoder block adds a second attention after its masked self-attention, in which the queries come from the French written so far and the keys and values from the encoder's output.",
    "Each row below is one French position looking over the English words. French puts most adjectives after the noun: where the English reads “black cat”, the decoder writes “chat” first, and cross-attention lets it look wherever it has to, whatever the word order.",
  ],
  models: (m) => isTransformer(m) && m.kind === "seq2seq",
  prefer: ["seq2seq-en-fr"],
  sentence: "the black cat ate the mouse",
  missing: "No encoder-decoder transformer is loaded on this server: the shipped seq2seq-en-fr shows this step.",
  full: (ctx) => {
    const picks = headPicks(ctx, "decoder.cross", { layer: -1 });
    return viewUrl("/", ctx, { site: "decoder.cross", layer: picks.layer, head: picks.head });
  },
  async show(body, ctx) {
    const { model, signal } = ctx;
    const site = "decoder.cross";
    const picks = headPicks(ctx, site, { layer: -1 });
    const everyHead = Array.from({ length: model.n_heads }, (_, h) => h);
    const source = await attentionOf(ctx, picks.layer, everyHead);
    if (signal.aborted) return;
    body.append(headOptions(ctx, site, picks));
    const two = el("div", { class: "two-col" });
    body.append(two);
    const hv = panel({
      title: `Layer ${picks.layer}: every head's cross-attention`,
      subtitle: "French (left) to English (right), one colour per head.",
      exportId: "lesson-cross-heads",
    });
    const one = panel({ title: `Head ${picks.head}`, subtitle: "Rows: French positions; columns: English tokens." });
    two.append(hv.root, one.root);
    const axes = siteAxes(source, site, false);
    const drawnView = layerHeadView(hv.body, source, axes, site, picks.layer, {
      leftTitle: "French (query)",
      rightTitle: "English (key)",
    });
    registerExport("lesson-cross-heads", {
      filename: () => `attnviz-${model.id}-cross-L${picks.layer}`,
      svg: () => drawnView && drawnView.toSVG(),
      data: () => ({ model: model.id, site, layer: picks.layer, queries: axes.left, keys: axes.right }),
    });
    await headFigure(one.body, source, site, picks.layer, picks.head, { id: "lesson-cross" });
  },
};

/** The decoding's output line: the prompt's tokens (decoders), then the chosen tokens, the
 * current one marked, the ones not reached faint; a click shows that step. */
function outputLine(run, pos, onPick) {
  const line = el("div", { class: "output-line", role: "group", "aria-label": "Generated tokens" });
  if (run.kind === "decoder") {
    for (const t of run.prompt)
      line.append(
        el("span", { class: `out-tok${t.special ? " special" : ""}`, text: displayToken(t.text), title: "prompt" }),
      );
    line.append(el("span", { class: "op", text: "→" }));
  }
  run.steps.forEach((s, i) => {
    const cls = ["out-tok"];
    if (i === pos - 1) cls.push("current");
    if (i >= pos) cls.push("future");
    if ((i > 0 || run.kind === "decoder") && continuesWord(s.token.text)) cls.push("cont");
    const chip = el("button", {
      type: "button",
      class: cls.join(" "),
      text: chosenToken(run, i).label,
      title: `step ${i + 1}: p = ${s.prob.toFixed(3)}`,
    });
    chip.addEventListener("click", () => onPick(i + 1));
    line.append(chip);
  });
  return line;
}

const decoding = {
  slug: "decoding",
  title: "Linear + softmax: decoding step by step",
  text: [
    "At the top of the decoder, a linear layer turns the last vector into one score per word of the vocabulary, the logits, and a softmax turns the scores into probabilities. Greedy decoding takes the most likely word; sampling draws from the distribution, which temperature, top-k and top-p reshape.",
    "The chosen word is appended to the decoder's input and the decoder runs again, until it writes the end token. Step through the translation below: at each step, the candidates and their probabilities, and where the decoder looked in the English.",
  ],
  models: (m) => isTransformer(m) && (api.can(m, "generate") || api.can(m, "translate")),
  prefer: ["seq2seq-en-fr", "decoder-mini"],
  sentence: "you are welcome",
  target: false,
  full: (ctx) => viewUrl("/decode", ctx, { step: ctx.state.row }),
  async show(body, ctx) {
    const { model, state, signal, save } = ctx;
    const g = await api.post("/generate", { model: model.id, text: state.text, max_new_tokens: 24 }, { signal });
    if (signal.aborted) return;
    const run = {
      kind: model.kind,
      prompt: labelTokens(g.prompt),
      steps: g.steps,
      done: { stop_reason: g.stop_reason, output: g.output },
      rows: g.rows || null,
    };
    const n = run.steps.length;
    let pos = state.row >= 1 && state.row <= n ? state.row : 1;
    const site = model.kind === "seq2seq" ? "decoder.cross" : "decoder.self";
    const L = siteDepth(model, site);
    const H = model.n_heads;
    const bar = el("div", { class: "player-bar", role: "group", "aria-label": "Steps" });
    const back = el("button", { type: "button", class: "secondary", text: "◀ back" });
    const next = el("button", { type: "button", class: "primary", text: "step ▶" });
    const slider = el("input", { type: "range", min: 1, max: n, step: 1, "aria-label": "Step" });
    const counter = el("span", { class: "step-counter", "aria-live": "polite" });
    bar.append(back, next, slider, counter);
    const player = framed(body, {
      title:
        model.kind === "seq2seq" ? "The translation, one token at a time" : "The continuation, one token at a time",
    });
    const lineBox = el("div");
    player.append(bar, lineBox);
    const two = el("div", { class: "split" });
    body.append(two);
    const topk = panel({
      title: "Top candidates at this step",
      subtitle: "The softmax over the vocabulary; the chosen token is orange.",
      exportId: "lesson-topk",
    });
    const att = panel({
      title: site === "decoder.cross" ? "Where it looked in the English" : "Where it looked",
      subtitle: `Row t: the attention of the query that chose token t (last layer, mean of its heads). It grows one row per step.`,
      exportId: "lesson-align",
    });
    two.append(topk.root, att.root);
    const topDiv = el("div", { class: "plot short" });
    const alignDiv = el("div", { class: "plot" });
    topk.body.append(topDiv);
    att.body.append(alignDiv);
    const heat = adaptiveHeatmap(alignDiv);
    registerExport("lesson-topk", {
      filename: () => `attnviz-${model.id}-topk-step${pos}`,
      plot: () => topDiv,
      data: () => run.steps[pos - 1],
    });
    registerExport("lesson-align", {
      filename: () => `attnviz-${model.id}-alignment`,
      plot: () => alignDiv,
      data: () => ({ model: model.id, prompt: run.prompt, steps: run.steps.slice(0, pos) }),
    });
    const show = (p) => {
      pos = Math.max(1, Math.min(n, p));
      save({ row: pos });
      slider.value = String(pos);
      counter.textContent = `step ${pos} / ${n}`;
      back.disabled = pos <= 1;
      next.disabled = pos >= n;
      lineBox.replaceChildren(outputLine(run, pos, show));
      drawTopK(topDiv, run, pos);
      const shown = run.steps.slice(0, pos);
      const rows = shown.map((s) => stepRow(s, run.rows, site, L - 1, -1, H) || []);
      const cols =
        site === "decoder.cross"
          ? run.prompt.map((t, i) => ({ ...t, index: i }))
          : [...run.prompt, ...run.steps.map((_, i) => chosenToken(run, i))].map((t, i) => ({ ...t, index: i }));
      const width = Math.max(...rows.map((r) => r.length), 1);
      heat.draw(matOf(rows, width), {
        rows: shown.map((_, i) => chosenToken(run, i)),
        cols: cols.slice(0, width),
        title: `layer ${L - 1} · mean of heads`,
        zmin: 0,
        zmax: 1,
        rowTitle: "token chosen",
        colTitle: site === "decoder.cross" ? "English token" : "key",
        yLabel: "chosen at step t",
        xLabel: site === "decoder.cross" ? "English source (key)" : "prompt and tokens so far (key)",
        height: Math.max(260, Math.min(560, pos * 30 + 170)),
      });
    };
    back.addEventListener("click", () => show(pos - 1));
    next.addEventListener("click", () => show(pos + 1));
    slider.addEventListener("input", () => show(Number(slider.value)));
    show(pos);
  },
};

const bert = {
  slug: "bert",
  title: "BERT: masked words and [CLS]",
  text: [
    "An encoder-only model such as BERT reads the whole sentence in both directions. It is trained by hiding some tokens behind [MASK] and predicting them from both sides, with the same linear layer and softmax over the vocabulary, read at the masked positions.",
    "BERT also puts a [CLS] token in front of every sentence. Attention lets it gather from every word, so its last vector can stand for the whole sentence: a small classifier reads it to say whether a sentence is positive, negative or neutral. The heatmap shows where [CLS] (the first row) looks in the last layer.",
  ],
  models: (m) => isTransformer(m) && m.kind === "encoder",
  prefer: ["encoder-mini"],
  sentence: "i [MASK] to the [MASK]",
  missing: "No encoder is loaded on this server: the shipped encoder-mini shows this step.",
  full: (ctx) => {
    const picks = headPicks(ctx, "encoder.self", { layer: -1 });
    return viewUrl("/", ctx, { layer: picks.layer, head: picks.head });
  },
  async show(body, ctx) {
    const { model, state, signal } = ctx;
    const site = "encoder.self";
    const picks = headPicks(ctx, site, { layer: -1 });
    const source = await attentionOf(ctx, picks.layer, [picks.head]);
    if (signal.aborted) return;
    const says = el("div", { class: "model-says", "aria-live": "polite" });
    framed(body, {
      title: "What the model says",
      subtitle:
        "Its [MASK] predictions (the vocabulary head at each masked position) and its sentiment (the [CLS] head), each with the probabilities of its top answers.",
    }).append(says);
    body.append(headOptions(ctx, site, picks));
    const box = framed(body, {
      title: `Layer ${picks.layer}, head ${picks.head}`,
      subtitle: "Row [CLS]: what the sentence's summary vector gathers from.",
    });
    await Promise.all([
      modelSays(says, model, state.text, source.tokens.source, signal),
      headFigure(box, source, site, picks.layer, picks.head, { id: "lesson-bert" }),
    ]);
  },
};

// ---------------------------------------------------------------------------------------
// steps 5 and 6: inside a block (lib/blockpanels.js, as /block draws them)

function blockPicks(ctx) {
  const { model, state } = ctx;
  const stacks = stacksOf(model);
  const stack = stacks.includes(state.stack) ? state.stack : stacks[0];
  const layer = Math.min(Math.max(0, state.layer), depthOf(model, stack) - 1);
  return { stack, layer };
}

async function blockAnswer(ctx) {
  const { model, state, signal } = ctx;
  const { stack, layer } = blockPicks(ctx);
  const batch = batchChoices(model, state.text, state.drop)
    .filter((c) => c.checked)
    .map((c) => c.text);
  return api.block(model, { text: state.text, target: state.target, stack, layer, batch }, { signal });
}

function blockOptions(body, ctx) {
  const { model, state, save, redraw } = ctx;
  const { stack, layer } = blockPicks(ctx);
  const fields = [];
  if (stacksOf(model).length > 1) {
    fields.push({
      label: "Stack",
      name: "stack",
      options: stacksOf(model).map((s) => ({ value: s, label: s })),
      value: stack,
      onChange: (v) => {
        save({ stack: v, layer: -1, norm: "", token: -1, unit: -1 });
        redraw();
      },
    });
  }
  fields.push({
    label: "Layer",
    name: "layer",
    options: numbered(depthOf(model, stack)),
    value: layer,
    onChange: (v) => {
      save({ layer: Number(v), unit: -1 });
      redraw();
    },
  });
  body.append(optionsRow(fields));
  return state;
}

const blockUrl = (ctx, extra = {}) => {
  const { stack, layer } = blockPicks(ctx);
  return viewUrl("/block", ctx, { stack: stacksOf(ctx.model).length > 1 ? stack : "", layer, ...extra });
};

function mount(body, cls = "stack-panels") {
  const div = el("div", { class: cls });
  body.append(div);
  return div;
}

const addNorm = {
  slug: "add-norm",
  title: "Add & Norm",
  text: [
    "Around each sublayer, two things happen. The residual connection adds the sublayer's output to what it read, so each block only has to learn a correction, and the gradient has a direct path through a deep stack.",
    "A norm then rescales each token on its own. LayerNorm subtracts the token's mean and divides by its standard deviation, so that every token has mean 0 and variance 1 over its features; a learned gain and bias per feature then give the model back the scale it wants. RMSNorm skips the mean and divides by the root mean square only. Where the norm sits differs: the original Transformer and BERT normalise after the addition (post-norm); GPT-2 and LLaMA normalise what each sublayer reads and leave the stream itself alone (pre-norm).",
    "Why not BatchNorm, which helps so much in image networks? It normalises each feature over the other examples of the batch, so the same sentence comes out differently depending on its neighbours, and a small batch or a long sentence gives poor statistics. Tick sentences in and out of the batch below: only BatchNorm's numbers move.",
  ],
  models: isTransformer,
  prefer: ["encoder-mini", "seq2seq-en-fr", "decoder-mini"],
  sentence: "i love machine learning",
  full: (ctx) => blockUrl(ctx, { norm: ctx.state.norm, drop: ctx.state.drop }),
  async show(body, ctx) {
    const data = await blockAnswer(ctx);
    if (!data || ctx.signal.aborted) return;
    const { state, save, redraw, model } = ctx;
    blockOptions(body, ctx);
    const top = mount(body, "two-col block-top");
    const order = mount(top);
    const residual = mount(top);
    const norm = mount(body);
    const compare = mount(body);
    const pickNormBox = (n) => {
      save({ norm: n });
      renderOrder(order, data, { norm: n, onNorm: pickNormBox, prefix: "lesson-" });
      renderAddNorm(norm, data, { norm: n, prefix: "lesson-" });
    };
    pickNormBox(state.norm);
    renderResidual(residual, data, { prefix: "lesson-" });
    const choices = batchChoices(model, state.text, state.drop);
    renderComparison(compare, data, {
      choices,
      prefix: "lesson-",
      onBatch: (kept) => {
        save({ drop: droppedFrom(choices, kept) });
        redraw();
      },
    });
  },
};

const ffn = {
  slug: "ffn",
  title: "The feed-forward network",
  text: [
    "Attention moves information between tokens. The feed-forward network then works on each token alone, with the same weights for all: a first matrix widens the vector (128 → 512 here), a non-linearity switches features on and off, and a second matrix brings it back to d_model. Its output is added to the stream.",
    "Without the non-linearity the two matrices would multiply into a single linear map. ReLU shuts every unit whose input is negative; GELU does it softly; SwiGLU lets a second projection decide, unit by unit, how much gets through. Below: the hidden units of one block, how much of each token's hidden layer is shut, and the strongest units of a token; pick one to see where else it fires.",
  ],
  models: (m) => isTransformer(m) && !m.attn_only,
  prefer: ["seq2seq-en-fr", "encoder-mini", "decoder-mini"],
  sentence: "the black cat ate the mouse",
  target: false,
  full: (ctx) => blockUrl(ctx, { token: ctx.state.token, unit: ctx.state.unit }),
  async show(body, ctx) {
    const data = await blockAnswer(ctx);
    if (!data || ctx.signal.aborted) return;
    const { state, save } = ctx;
    blockOptions(body, ctx);
    const panels = mount(body);
    const draw = () => {
      const tokens = blockTokens(data);
      const token = state.token >= 0 && state.token < tokens.length ? state.token : tokens.length - 1;
      renderFFN(panels, data, {
        token,
        unit: state.unit,
        prefix: "lesson-",
        onUnit: (u) => {
          save({ unit: u });
          draw();
        },
        onToken: (t) => {
          save({ token: t, unit: -1 });
          draw();
        },
      });
    };
    draw();
  },
};

// ---------------------------------------------------------------------------------------
// step 11: before transformers (lib/rnnpanels.js, as /rnn draws it)

const rnn = {
  slug: "rnn",
  title: "Before transformers: the RNN",
  text: [
    "Before transformers, a recurrent network read a sentence one token at a time and carried a single hidden vector along, mixing each new token into it. Step t cannot start before step t − 1 is finished, and whatever the decoder needs about the first words has to survive the whole chain of updates.",
    "Training pays for that chain. The gradient that reaches an early word is a product of one factor per step, and such products tend to shrink (vanish) or blow up. Below, measured on a trained RNN translator: how much gradient reaches each English word along the recurrence, for an LSTM and for a plain tanh RNN, whose curve falls much faster. A transformer links every pair of words in a single step, and runs all the steps at once.",
  ],
  models: (m) => m.architecture === "rnn",
  prefer: ["rnn-en-fr", "rnn-tanh-en-fr"],
  sentence: RNN_GRADIENT_PRESET.text,
  missing: "No recurrent model is loaded on this server: the shipped rnn-en-fr and rnn-tanh-en-fr show this step.",
  full: (ctx) => viewUrl("/rnn", ctx, { paths: ctx.state.paths === "recurrence" ? "" : ctx.state.paths }),
  async show(body, ctx) {
    const { model, models, state, signal, save } = ctx;
    const companion = models.find(
      (m) => m.architecture === "rnn" && m.id !== model.id && (m.cell === "tanh") !== (model.cell === "tanh"),
    );
    const request = { model: model.id, text: state.text };
    if (state.target) request.target = state.target;
    if (companion) request.compare = companion.id;
    const data = await api.unroll(request, { signal });
    if (!data || signal.aborted) return;
    const { root, body: inner } = panel({
      title: "Vanishing gradients, measured",
      subtitle:
        "‖∂loss/∂hₜ‖ for every English token t, by autograd, on a log scale: how much of the training signal reaches each state.",
      exportId: "lesson-gradients",
    });
    const paths = optionsRow([
      {
        label: "Paths",
        name: "paths",
        options: [
          { value: "recurrence", label: "along the recurrence only" },
          { value: "all", label: "every path (with the attention)" },
        ],
        value: state.paths,
        onChange: (v) => {
          save({ paths: v });
          note.textContent = drawGradients(fig.plot, data, v, { height: 480 });
        },
      },
    ]);
    const fig = figure("");
    const note = fig.note;
    inner.append(paths, fig.box, note);
    body.append(root);
    note.textContent = drawGradients(fig.plot, data, state.paths, { height: 480 });
    registerExport("lesson-gradients", {
      filename: () => `attnviz-${model.id}-rnn-gradients`,
      plot: () => fig.plot,
      data: () => ({
        model: model.id,
        text: state.text,
        tokens: data.tokens,
        gradients: data.gradients,
        compare: data.compare ?? null,
      }),
    });
  },
};

export const STEPS = [tokens, positions, qkv, heads, addNorm, ffn, mask, cross, decoding, bert, rnn];
