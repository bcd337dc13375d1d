// Step 9: linear + softmax, the translation or continuation one token at a time.

import * as api from "../api.js";
import { siteDepth } from "../attnstore.js";
import { chosenToken, drawTopK, matOf, stepRow } from "../decodepanels.js";
import { el } from "../dom.js";
import { registerExport } from "../export.js";
import { adaptiveHeatmap } from "../heatmap.js";
import { panel } from "../panel.js";
import { continuesWord, displayToken, labelTokens } from "../tokens.js";
import { framed, isTransformer, viewUrl } from "./common.js";

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

export const decoding = {
  slug: "decoding",
  title: "Linear + softmax: decoding step by step",
  text: [
    "At the top of the decoder, a linear layer turns the last vector into one score per word of the vocabulary, the logits, and a softmax turns the scores into probabilities. Greedy decoding takes the most likely word; sampling draws from the distribution, which temperature, top-k and top-p reshape.",
    "The chosen word is appended to the decoder's input and the decoder runs again, until it writes the end token. Step through the translation below: at each step, the candidates and their probabilities, and where the decoder looked in the English.",
  ],
  needs: "a model that generates or translates",
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
