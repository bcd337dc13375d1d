// What the model says about a sentence, as small probability bars: the explorer shows it under
// the tokens; the lesson's BERT step shows it on its own. With heads ablated (lib/ablation.js),
// each answer is shown before → after: the server answers the ablated request and carries the
// unablated answer beside it (`ablation.baseline`).

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
 * "before → after" as a line of text (the values also in data-before / data-after, for export
 * and tests), marked in words: `verdict`, else "unchanged" or "changed" by `same` (default:
 * the two texts are equal).
 */
export function beforeAfter(what, before, after, { same = before === after, verdict } = {}) {
  return el(
    "p",
    { class: `before-after${same ? "" : " moved"}`, dataset: { before, after } },
    el("span", { class: "ba-what", text: `${what}: ` }),
    el("span", { class: "ba-before", text: before }),
    el("span", { class: "ba-arrow", text: " → " }),
    el("strong", { class: "ba-after", text: after }),
    el("span", { class: "ba-verdict", text: ` (${verdict || (same ? "unchanged" : "changed")})` }),
  );
}

/** Two sets of bars side by side: the whole model's and the ablated one's. */
const barsBeforeAfter = (before, after) =>
  el(
    "div",
    { class: "bars-before-after" },
    el("div", {}, el("span", { class: "ba-label", text: "all heads" }), ...probRows(before, before[0].label)),
    el("div", {}, el("span", { class: "ba-label", text: "✂ ablated" }), ...probRows(after, after[0].label)),
  );

const fmt = (p) => p.toFixed(3);
const signed = (d) => `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(3)}`;
const quoted = (label) => `“${label}”`;

/**
 * What the model itself outputs for `text` (its sentiment and [MASK] fills for an encoder, the
 * next token for a decoder, the translation for a seq2seq), for the heads the model has, in
 * `box`. `tokens`: the sentence's tokens (an encoder's [MASK] is looked for there); a head the
 * model lacks is said plainly, other errors go to the banner. `ablate`: the heads to ablate
 * (the API's objects); then each answer is shown before → after.
 */
export async function modelSays(box, model, text, tokens, signal, { ablate } = {}) {
  clear(box);
  const blocks = [];
  const ablated = Boolean(ablate && ablate.length);
  const extra = ablated ? { ablate } : {};
  // a candidate continues the word before it only for a tokenizer that marks word starts
  // (byte-level BPE, SentencePiece); WordPiece's "went" is a word, not "##went"
  const marksStarts = marksWordStarts(tokens);
  const ask = async (path, body, describe) => {
    try {
      describe(await api.post(path, { ...body, ...extra }, { signal }));
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
        await ask("/classify", { model: model.id, text: text }, (c) => {
          if (!ablated) return blocks.push(says("Sentiment ([CLS] head)", probRows(c.labels, c.label)));
          const base = c.ablation.baseline;
          const pOf = (labels, label) => labels.find((l) => l.label === label).prob;
          blocks.push(
            says(
              "Sentiment ([CLS] head), before → after",
              beforeAfter("label", base.label, c.label),
              beforeAfter(`P(${base.label})`, fmt(pOf(base.labels, base.label)), fmt(pOf(c.labels, base.label)), {
                verdict: signed(pOf(c.labels, base.label) - pOf(base.labels, base.label)),
              }),
              barsBeforeAfter(base.labels, c.labels),
            ),
          );
        });
      }
      const hasMask = tokens.some((t) => t.special && /mask/i.test(t.text));
      if (api.can(model, "fill-mask") && hasMask) {
        await ask("/fill-mask", { model: model.id, text: text, top_k: 5 }, (f) => {
          const rowsOf = (m) =>
            m.predictions.map((p) => ({
              label: candidateLabel({ id: p.id, text: p.token }, { marksStarts }),
              prob: p.prob,
            }));
          f.masks.forEach((m, i) => {
            const after = rowsOf(m);
            if (!ablated) return blocks.push(says(`[MASK] at position ${m.index}`, probRows(after, after[0].label)));
            const before = rowsOf(f.ablation.baseline.masks[i]);
            blocks.push(
              says(
                `[MASK] at position ${m.index}, before → after`,
                beforeAfter(
                  "top fill",
                  `${quoted(before[0].label)} ${fmt(before[0].prob)}`,
                  `${quoted(after[0].label)} ${fmt(after[0].prob)}`,
                  { same: before[0].label === after[0].label },
                ),
                barsBeforeAfter(before, after),
              ),
            );
          });
        });
      }
    } else if (model.kind === "decoder" && api.can(model, "generate") && tokens.length >= model.max_len) {
      blocks.push(
        says("Next token", `The prompt fills all ${model.max_len} positions: there is no room for one more.`),
      );
    } else if (model.kind === "decoder" && api.can(model, "generate")) {
      const body = { model: model.id, text: text, max_new_tokens: 1 };
      const topOf = (g) => g.steps[0].top.map((c) => ({ label: candidateLabel(c, { marksStarts }), prob: c.prob }));
      // the baseline says which token the whole model picks; its probabilities come from the
      // same request without the ablation (answered from the server's cache when seen before)
      const before = ablated
        ? await api.post("/generate", body, { signal }).catch((error) => {
            if (error && error.name === "AbortError") throw error;
            showError(error);
            return null;
          })
        : null;
      await ask("/generate", body, (g) => {
        const after = topOf(g);
        if (!before) return blocks.push(says("Next token", probRows(after, after[0].label)));
        const b = topOf(before);
        blocks.push(
          says(
            "Next token, before → after",
            beforeAfter(
              "next token",
              `${quoted(b[0].label)} ${fmt(b[0].prob)}`,
              `${quoted(after[0].label)} ${fmt(after[0].prob)}`,
              { same: b[0].label === after[0].label },
            ),
            barsBeforeAfter(b, after),
          ),
        );
      });
    } else if (model.kind === "seq2seq" && (api.can(model, "translate") || api.can(model, "generate"))) {
      await ask("/generate", { model: model.id, text: text, max_new_tokens: 48 }, (g) => {
        const link = el("a", {
          href: `/decode?model=${encodeURIComponent(model.id)}&text=${encodeURIComponent(text)}`,
          text: "watch it decode step by step →",
        });
        if (!ablated) {
          return blocks.push(
            says("The model's translation (greedy)", el("span", { class: "says-text", text: g.output.text }), link),
          );
        }
        blocks.push(
          says(
            "The model's translation (greedy), before → after",
            beforeAfter("translation", g.ablation.baseline.output.text, g.output.text),
            link,
          ),
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
