// Step 4: multi-head attention, every head of a layer and every layer × head.

import { el } from "../dom.js";
import { registerExport } from "../export.js";
import { renderGrid } from "../grid.js";
import { gridLayers, siteAxes } from "../headpanels.js";
import { panel } from "../panel.js";
import {
  atSelfHead,
  attentionOf,
  headOptions,
  headPicks,
  isTransformer,
  layerHeadView,
  POOL,
  selfSite,
  sharpestHead,
} from "./common.js";

export const heads = {
  slug: "heads",
  title: "Multi-head attention",
  text: [
    "A layer runs several heads side by side, each with its own, smaller projections (dₖ = d_model / heads). With their own weights, heads can learn different relations: one follows the previous word, another links a verb to its subject, another looks at the end of the sentence.",
    "The heads' outputs are concatenated and mixed by one more matrix, W_O, back to d_model. Below, every head of a layer as lines from each token to the ones it attends to (one colour per head; hover a token to isolate its lines, click it to hold them), and every layer × head as a thumbnail: click one to see its layer.",
  ],
  needs: "a transformer",
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
