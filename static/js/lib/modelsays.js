// What the model says about a sentence, as small probability bars: the explorer shows it under
// the tokens; the lesson's BERT step shows it on its own.

import * as api from "./api.js";
import { clear, el } from "./dom.js";
import { showError } from "./shell.js";
import { candidateLabel, marksWordStarts } from "./tokens.js";

/** Probability bars, the `chosen` label highlighted. */
export function probRows(items, chosen) {
  return items.map(({ label, prob }) => {
    const fill = el("div", { class: "prob-fill" });
    fill.style.width = `${Math.round(100 * prob)}%`;
    return el(
      "div",
      { class: `prob-row${label === chosen ? " top" : ""}` },
      el("span", { text: label }),
      el("div", { class: "prob-track" }, fill),
      el("span", { class: "p", text: prob.toFixed(3) }),
    );
  });
}

const says = (title, ...body) =>
  el("div", { class: "says-block" }, el("span", { class: "says-title", text: title }), ...body);

/**
 * What the model itself outputs for `text` (its sentiment and [MASK] fills for an encoder, the
 * next token for a decoder, the translation for a seq2seq), for the heads the model has, in
 * `box`. `tokens`: the sentence's tokens (an encoder's [MASK] is looked for there); a head the
 * model lacks is said plainly, other errors go to the banner.
 */
export async function modelSays(box, model, text, tokens, signal) {
  clear(box);
  const blocks = [];
  // a candidate continues the word before it only for a tokenizer that marks word starts
  // (byte-level BPE, SentencePiece); WordPiece's "went" is a word, not "##went"
  const marksStarts = marksWordStarts(tokens);
  const ask = async (path, body, describe) => {
    try {
      describe(await api.post(path, body, { signal }));
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      // a head the model lacks: said plainly, not as an error
      if (error && error.code === "unsupported_task") blocks.push(says("Not available", error.message));
      else showError(error);
    }
  };
  try {
    if (model.kind === "encoder") {
      if (api.can(model, "classify")) {
        await ask("/classify", { model: model.id, text: text }, (c) =>
          blocks.push(says("Sentiment ([CLS] head)", probRows(c.labels, c.label))),
        );
      }
      const hasMask = tokens.some((t) => t.special && /mask/i.test(t.text));
      if (api.can(model, "fill-mask") && hasMask) {
        await ask("/fill-mask", { model: model.id, text: text, top_k: 5 }, (f) => {
          for (const m of f.masks) {
            const rows = m.predictions.map((p) => ({
              label: candidateLabel({ id: p.id, text: p.token }, { marksStarts }),
              prob: p.prob,
            }));
            blocks.push(says(`[MASK] at position ${m.index}`, probRows(rows, rows[0].label)));
          }
        });
      }
    } else if (model.kind === "decoder" && api.can(model, "generate") && tokens.length >= model.max_len) {
      blocks.push(
        says("Next token", `The prompt fills all ${model.max_len} positions: there is no room for one more.`),
      );
    } else if (model.kind === "decoder" && api.can(model, "generate")) {
      await ask("/generate", { model: model.id, text: text, max_new_tokens: 1 }, (g) => {
        const top = g.steps[0].top.map((c) => ({ label: candidateLabel(c, { marksStarts }), prob: c.prob }));
        blocks.push(says("Next token", probRows(top, top[0].label)));
      });
    } else if (model.kind === "seq2seq" && (api.can(model, "translate") || api.can(model, "generate"))) {
      await ask("/generate", { model: model.id, text: text, max_new_tokens: 48 }, (g) => {
        const link = el("a", {
          href: `/decode?model=${encodeURIComponent(model.id)}&text=${encodeURIComponent(text)}`,
          text: "watch it decode step by step →",
        });
        blocks.push(
          says("The model's translation (greedy)", el("span", { class: "says-text", text: g.output.text }), link),
        );
      });
    }
  } catch (error) {
    if (error && error.name === "AbortError") return;
    throw error;
  }
  if (!blocks.length && model.tasks && model.tasks.length === 1) {
    blocks.push(
      says(
        "What the model says",
        `${model.id} has no output head (it was imported without one): its attention is all there is to see.`,
      ),
    );
  }
  if (!signal.aborted) box.replaceChildren(...blocks);
}
