// One input's attention, fetched as it is shown: a head at full resolution when the heatmap
// shows it, a layer's heads when the head view does, every head pooled for the grid. The
// server keeps what a forward pass left (its trace store), so each of these after the first
// costs one attention module, not a forward pass; here each answer is kept (within a byte
// budget) so that going back to a head costs nothing at all. Everything travels in the binary
// transport (half floats, no JSON numbers).

import { attentionBinary, inputBody, post } from "./api.js";
import { SITE_ORDER } from "./attn.js";
import { fromBase64 } from "./tensor.js";
import { labelTokens } from "./tokens.js";

/** Keep at most this many bytes of matrices per input (least recently used go first). */
const BUDGET_BYTES = 320 << 20;
/** The most attention cells one pooled request covers (MiniLM at 512 tokens: all 72 heads). */
const POOL_REQUEST_CELLS = 20_000_000;

/** The number of layers a site has in a model (ModelInfo `sites`: site -> layers). */
export function siteDepth(model, site) {
  if (model.sites && site in model.sites) return model.sites[site];
  if (site === "encoder.self") return model.n_layers;
  return model.kind === "seq2seq" ? (model.n_decoder_layers ?? model.n_layers) : model.n_layers;
}

/** The sites a model has, in the order the views list them (an RNN: decoder.cross alone). */
export function modelSites(model) {
  if (model.sites && Object.keys(model.sites).length) return SITE_ORDER.filter((s) => s in model.sites);
  if (model.kind === "encoder") return ["encoder.self"];
  if (model.kind === "decoder") return ["decoder.self"];
  return ["encoder.self", "decoder.self", "decoder.cross"];
}

export class AttentionSource {
  /** model: ModelInfo; input: {text, target}; ablate: the heads ablated in every forward pass
   * (the API's `Ablation` objects), or undefined. */
  constructor(model, input, { ablate } = {}) {
    this.model = model;
    this.body = { ...inputBody(model, input), ...(ablate ? { ablate } : {}) };
    this.tokens = null; // {source, target?}, labelled (lib/tokens.js)
    this.sites = modelSites(model);
    this.weights = new Map(); // "site/layer/head" -> Mat
    this.scores = new Map();
    this.norms = new Map(); // value-weighted norms ‖α_ij f(x_j)‖ (include "norms")
    // under an ablation: how far each head's attention moved (total variation, mean over
    // queries), "site/layer/head" -> number, from every answer so far
    this.changed = new Map();
    this.rolloutAnswer = null; // Promise<{site: Tensor [L][T][T]}>
    this.pooledAnswers = new Map(); // pool -> Promise<{attention: {site: Tensor}, edges}>
    this.inflight = new Map(); // request key -> Promise
    this.bytes = 0;
  }

  /** {queries, keys} token counts of a site (once the first answer is in). */
  lengths(site) {
    const src = this.tokens.source.length;
    const tgt = this.tokens.target ? this.tokens.target.length : src;
    if (site === "encoder.self") return { q: src, k: src };
    if (site === "decoder.cross") return { q: tgt, k: src };
    return { q: tgt, k: tgt };
  }

  has(site, layer, head, { scores = false, norms = false } = {}) {
    const key = `${site}/${layer}/${head}`;
    return this.weights.has(key) && (!scores || this.scores.has(key)) && (!norms || this.norms.has(key));
  }

  /** A head's weights (Mat, full resolution), or undefined when not fetched. */
  weightsOf(site, layer, head) {
    return this.touch(this.weights, `${site}/${layer}/${head}`);
  }

  scoresOf(site, layer, head) {
    return this.touch(this.scores, `${site}/${layer}/${head}`);
  }

  normsOf(site, layer, head) {
    return this.touch(this.norms, `${site}/${layer}/${head}`);
  }

  /** Rollout after `layer` at a self-attention site (a Mat), once rollout() has resolved. */
  rolloutOf(site, layer) {
    const r = this.rolloutDone && this.rolloutDone[site];
    return r ? r.matrix(layer) : undefined;
  }

  /**
   * Attention rollout (POST /rollout, Abnar & Zuidema 2020) of every self-attention site:
   * resolves to {site: Tensor [L][T][T]}; fetched once per input.
   */
  rollout({ signal } = {}) {
    if (!this.rolloutAnswer) {
      this.rolloutAnswer = post("/rollout", { ...this.body, format: "f16" }, { signal }).then((answer) => {
        const out = {};
        for (const [site, t] of Object.entries(answer.rollout)) out[site] = fromBase64(t);
        this.rolloutDone = out;
        return out;
      });
      this.rolloutAnswer.catch(() => (this.rolloutAnswer = null));
    }
    return this.rolloutAnswer;
  }

  touch(map, key) {
    const m = map.get(key);
    if (m) {
      map.delete(key); // most recently used last
      map.set(key, m);
    }
    return m;
  }

  /**
   * Fetch the heads of `layer` not held yet (every site of the model that has the layer), with
   * their pre-softmax scores when `scores`. Resolves once they are held; a request already on
   * its way for the same heads is shared.
   */
  async load(layer, heads, { scores = false, norms = false, signal } = {}) {
    const sites = this.tokens ? this.sites.filter((s) => layer < siteDepth(this.model, s)) : this.sites;
    const missing = heads.filter((h) => sites.some((s) => !this.has(s, layer, h, { scores, norms })));
    if (!missing.length) return;
    const key = `${layer}:${missing.join(",")}:${scores ? "s" : ""}${norms ? "n" : ""}`;
    if (!this.inflight.has(key)) {
      const include = [...(scores ? ["scores"] : []), ...(norms ? ["norms"] : [])];
      const body = { ...this.body, layers: [layer], heads: missing, include };
      const job = attentionBinary(body, { signal })
        .then((answer) => this.keep(answer, layer, missing))
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, job);
    }
    return this.inflight.get(key);
  }

  keep(answer, layer, heads) {
    if (!this.tokens) {
      const { source, target } = answer.tokens;
      this.tokens = { source: labelTokens(source), ...(target ? { target: labelTokens(target) } : {}) };
      this.sites = this.sites.filter((s) => s in answer.attention || layer >= siteDepth(this.model, s));
    }
    for (const [site, tensor] of Object.entries(answer.attention)) {
      heads.forEach((h, hi) => this.put(this.weights, `${site}/${layer}/${h}`, tensor.matrix(0, hi)));
    }
    for (const [site, tensor] of Object.entries(answer.scores || {})) {
      heads.forEach((h, hi) => this.put(this.scores, `${site}/${layer}/${h}`, tensor.matrix(0, hi)));
    }
    for (const [site, tensor] of Object.entries(answer.norms || {})) {
      heads.forEach((h, hi) => this.put(this.norms, `${site}/${layer}/${h}`, tensor.matrix(0, hi)));
    }
    this.keepChanged(answer, [layer], heads);
    this.evict();
  }

  /** An answer's `ablation.changed` ([L][H] per site of the layers and heads it returned). */
  keepChanged(answer, layers, heads) {
    const changed = answer.ablation && answer.ablation.changed;
    if (!changed) return;
    for (const [site, perLayer] of Object.entries(changed)) {
      const siteLayers = layers.filter((l) => l < siteDepth(this.model, site));
      perLayer.forEach((row, li) =>
        row.forEach((v, hi) => this.changed.set(`${site}/${siteLayers[li]}/${heads[hi]}`, v)),
      );
    }
  }

  /** How far a head's attention moved under the ablation (undefined: not known, or none). */
  changedOf(site, layer, head) {
    return this.changed.get(`${site}/${layer}/${head}`);
  }

  put(map, key, mat) {
    if (map.has(key)) this.bytes -= map.get(key).data.byteLength;
    map.set(key, mat);
    this.bytes += mat.data.byteLength;
  }

  /** Drop the least recently used matrices beyond the budget (never the ones just stored). */
  evict() {
    for (const map of [this.norms, this.scores, this.weights]) {
      for (const [key, mat] of map) {
        if (this.bytes <= BUDGET_BYTES || map.size <= 1) break;
        map.delete(key);
        this.bytes -= mat.data.byteLength;
      }
    }
  }

  /**
   * Every layer and head of every site reduced to at most `pool` × `pool` blocks (for the grid):
   * {edges: {source, target?}, sites: {site: [L][H] of Mats}}. Long inputs ask for it in parts
   * of at most POOL_REQUEST_CELLS attention cells (some layers, or a few heads of one), one
   * request after the other: each stays short, and the server pools no more full matrices at
   * once than that (a layer of 12 heads at 2048 tokens, pooled in float64, took its peak RSS
   * from 2.2 to 3.1 GB).
   */
  pooled(pool, { signal } = {}) {
    if (!this.pooledAnswers.has(pool)) {
      const job = this.fetchPooled(pool, signal);
      job.catch(() => this.pooledAnswers.delete(pool));
      this.pooledAnswers.set(pool, job);
    }
    return this.pooledAnswers.get(pool);
  }

  async fetchPooled(pool, signal) {
    const H = this.model.n_heads;
    const L = Math.max(...this.sites.map((s) => siteDepth(this.model, s)));
    const perHead = this.sites.reduce((n, s) => n + this.lengths(s).q * this.lengths(s).k, 0);
    const headsPer = Math.max(1, Math.min(H, Math.floor(POOL_REQUEST_CELLS / perHead)));
    const layersPer = headsPer < H ? 1 : Math.max(1, Math.floor(POOL_REQUEST_CELLS / (perHead * H)));
    const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);
    const parts = [];
    for (let l0 = 0; l0 < L; l0 += layersPer) {
      const layers = range(l0, Math.min(L, l0 + layersPer));
      for (let h0 = 0; h0 < H; h0 += headsPer) parts.push({ layers, heads: range(h0, Math.min(H, h0 + headsPer)) });
    }
    const sites = {};
    let edges = null;
    for (const part of parts) {
      const body = { ...this.body, pool, layers: part.layers };
      if (part.heads.length < H) body.heads = part.heads;
      const answer = await attentionBinary(body, { signal });
      edges = answer.pool.edges;
      this.keepChanged(answer, answer.layers, answer.heads);
      for (const [site, tensor] of Object.entries(answer.attention)) {
        sites[site] = sites[site] || [];
        // the site's layers among those asked (a seq2seq encoder may have fewer than its decoder)
        answer.layers
          .filter((l) => l < siteDepth(this.model, site))
          .forEach((l, li) => {
            sites[site][l] = sites[site][l] || [];
            part.heads.forEach((h, hi) => (sites[site][l][h] = tensor.matrix(li, hi)));
          });
      }
    }
    return { edges, sites };
  }
}
