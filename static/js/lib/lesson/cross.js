// Step 8: cross-attention, French queries over English keys.

import { el } from "../dom.js";
import { registerExport } from "../export.js";
import { siteAxes } from "../headpanels.js";
import { panel } from "../panel.js";
import { attentionOf, headFigure, headOptions, headPicks, isTransformer, layerHeadView, viewUrl } from "./common.js";

/**
 * The token each decoder position writes: position i reads token i of the decoder's input
 * (<s> first) and is trained to write token i + 1; the last one writes the end token, the
 * source's own (the shared vocabulary's </s>).
 */
function written(inputs, source) {
  const last = source[source.length - 1];
  const end = last && last.special ? last : { text: "</s>", special: true };
  return [...inputs.slice(1), end];
}

export const cross = {
  slug: "cross",
  title: "Cross-attention and the encoder–decoder",
  text: [
    "A translator has two stacks. The encoder reads the whole English sentence and leaves one vector per token. Each decoder block adds a second attention after its masked self-attention, in which the queries come from the French written so far and the keys and values from the encoder's output.",
    "The decoder reads the French written so far, <s> first, and each position chooses the next word: so each row below is labelled by the French word its position writes, and shows where it looked in the English to write it. French puts most adjectives after the noun: where the English reads “black cat”, the decoder writes “chat” first, and cross-attention lets it look wherever it has to, whatever the word order.",
  ],
  needs: "an encoder–decoder",
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
    const one = panel({
      title: `Head ${picks.head}`,
      subtitle:
        "Rows: the French token each position writes (it reads the token before it, <s> first); columns: English tokens.",
    });
    two.append(hv.root, one.root);
    const read = siteAxes(source, site, false);
    const axes = { ...read, left: written(read.left, read.right) };
    const drawnView = layerHeadView(hv.body, source, axes, site, picks.layer, {
      leftTitle: "French written (query)",
      rightTitle: "English (key)",
    });
    registerExport("lesson-cross-heads", {
      filename: () => `attnviz-${model.id}-cross-L${picks.layer}`,
      svg: () => drawnView && drawnView.toSVG(),
      data: () => ({ model: model.id, site, layer: picks.layer, queries: axes.left, keys: axes.right }),
    });
    await headFigure(one.body, source, site, picks.layer, picks.head, {
      id: "lesson-cross",
      axes,
      labels: { yLabel: "French token written", rowTitle: "writes" },
    });
  },
};
