// Step 7: the causal mask, one head's scores before and weights after the softmax.

import { el } from "../dom.js";
import { attentionOf, framed, headFigure, headOptions, headPicks, isTransformer, viewUrl } from "./common.js";

export const mask = {
  slug: "mask",
  title: "The causal mask",
  text: [
    "A decoder learns to predict each next token from the ones before it. In training it reads whole sentences at once, so it has to be kept from looking ahead: before the softmax, the score of every query with a later key is set to −∞, and its weight becomes exactly 0.",
    "The attention matrix is then lower-triangular: the row of token i spreads its weight over tokens 0 … i only. That is what lets the trained model write one token at a time, seeing exactly what it saw in training.",
  ],
  needs: "a decoder (causal self-attention)",
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
