// Step 1: tokens, their ids and each one's embedding.

import * as api from "../api.js";
import { el } from "../dom.js";
import { drawEmbedding } from "../positionpanels.js";
import { labelTokens } from "../tokens.js";
import { renderTokenStrip } from "../tokenstrip.js";
import { exported, framed, isTransformer, viewUrl } from "./common.js";

export const tokens = {
  slug: "tokens",
  title: "Tokens, ids and embeddings",
  text: [
    "A network never sees letters. A tokenizer cuts the sentence into pieces from a fixed vocabulary (whole words, pieces of words, and markers such as [CLS], <s> or </s> that the model adds itself) and replaces every piece by its number in that vocabulary: its id.",
    "The first layer is a lookup table with one learned row per id. The row is the token's embedding: d_model numbers (128 in the small models), almost all of them non-zero. Training places tokens that are used alike near each other, which a one-hot code, where every pair of words is equally far apart, cannot do.",
    "Below: the pieces and ids of the sentence, then the embedding row of each one, before anything else has happened to it.",
  ],
  needs: "a transformer",
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
