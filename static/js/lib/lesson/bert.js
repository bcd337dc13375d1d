// Step 10: BERT's [MASK] and [CLS].

import { el } from "../dom.js";
import { modelSays } from "../modelsays.js";
import { attentionOf, framed, headFigure, headOptions, headPicks, isTransformer, viewUrl } from "./common.js";

export const bert = {
  slug: "bert",
  title: "BERT: masked words and [CLS]",
  text: [
    "An encoder-only model such as BERT reads the whole sentence in both directions. It is trained by hiding some tokens behind [MASK] and predicting them from both sides, with the same linear layer and softmax over the vocabulary, read at the masked positions.",
    "BERT also puts a [CLS] token in front of every sentence. Attention lets it gather from every word, so its last vector can stand for the whole sentence: a small classifier reads it to say whether a sentence is positive, negative or neutral. The heatmap shows where [CLS] (the first row) looks in the last layer.",
  ],
  needs: "an encoder",
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
