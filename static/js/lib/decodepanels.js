// Figures of a decoding (the steps of POST /generate or its stream), as the decoding player
// and the lesson draw them: the top candidates of a step, and the attention rows that chose
// each token, stacked into a matrix that grows one row per step.
//
// A decoding here is {kind ("decoder" | "seq2seq"), steps, done ({stop_reason, output} once
// finished, else null)}; each step is {token, prob, top, attention, attention_edges?}.

import { post } from "./api.js";
import { el } from "./dom.js";
import { plotlyText, react } from "./plots.js";
import { candidateLabel, marksWordStarts } from "./tokens.js";

/** Whether step i chose the end of the sentence. */
export const eosAt = (run, i) => Boolean(run.done && run.done.stop_reason === "eos" && i === run.steps.length - 1);

/**
 * Whether texts mark word starts, judged from the steps so far: `tokens` the chosen tokens (each
 * the text it adds to the output), `top` the candidates (each token decoded alone, which for
 * SentencePiece tokenizers drops the word-start space: then no candidate is marked).
 */
function marksStarts(run, which) {
  const seen = which === "top" ? run.steps.flatMap((s) => s.top) : run.steps.map((s) => s.token);
  return marksWordStarts(seen);
}

/** The token chosen at step i, as an axis label ("##ing" for a continuation). */
export function chosenToken(run, i) {
  const s = run.steps[i];
  const afterWord = i > 0 || run.kind === "decoder";
  if (eosAt(run, i)) return { text: s.token.text || "</s>", label: s.token.text || "</s>", special: true, index: i };
  return {
    text: s.token.text,
    label: candidateLabel(s.token, { afterWord, marksStarts: marksStarts(run, "tokens") }),
    special: false,
    index: i,
  };
}

/** The top candidates of step `pos` (1-based) as bars, the chosen one orange. */
export function drawTopK(div, run, pos) {
  const s = run.steps[pos - 1];
  const top = [...s.top].reverse();
  const afterWord = pos > 1 || run.kind === "decoder";
  const marks = marksStarts(run, "top");
  const labels = top.map((c) => plotlyText(candidateLabel(c, { afterWord, marksStarts: marks })));
  const chosen = plotlyText(chosenToken(run, pos - 1).label);
  // over a 30 k–150 k vocabulary the top candidates may share little of the mass: the axis
  // follows the largest probability (with room for its label), not 0–1
  const xmax = Math.min(1.08, Math.max(0.05, ...top.map((c) => c.prob)) * 1.2);
  return react(
    div,
    [
      {
        type: "bar",
        orientation: "h",
        x: top.map((c) => c.prob),
        y: top.map((_, i) => i),
        text: top.map((c) => c.prob.toFixed(3)),
        textposition: "outside",
        cliponaxis: false,
        marker: { color: top.map((c) => (c.id === s.token.id ? "#E69F00" : "#0072B2")) },
        customdata: top.map((c, i) => `${labels[i]} (id ${c.id})`),
        hovertemplate: "%{customdata}: p = %{x:.4f}<extra></extra>",
      },
    ],
    {
      height: Math.max(220, 46 * top.length + 70),
      margin: { l: Math.min(240, 40 + 8 * Math.max(6, ...labels.map((l) => l.length))), r: 50, t: 34, b: 40 },
      title: {
        text: `step ${pos}: chose “${chosen}” (p = ${s.prob.toFixed(3)})`,
        x: 0,
        xanchor: "left",
      },
      xaxis: { range: [0, xmax], title: { text: "probability" }, gridcolor: "#eceef2" },
      yaxis: {
        tickmode: "array",
        tickvals: top.map((_, i) => i),
        ticktext: labels,
        tickfont: { family: "ui-monospace, monospace" },
      },
    },
  );
}

/** A pooled row spread back over its tokens: each block's weight shared by the tokens in it. */
function unpool(row, edges) {
  const out = new Array(edges[edges.length - 1]).fill(0);
  for (let b = 0; b + 1 < edges.length; b++) {
    const share = row[b] / (edges[b + 1] - edges[b]);
    for (let t = edges[b]; t < edges[b + 1]; t++) out[t] = share;
  }
  return out;
}

/**
 * A step's attention row at `site` for the layer and head (-1: the mean of the H heads), or
 * null when the step did not carry those rows. `rows`: the decoding's {layers, heads} when it
 * carried only some (null: all).
 */
export function stepRow(step, rows, site, layer, head, H) {
  const li = rows ? rows.layers.indexOf(layer) : layer;
  const perHead = li >= 0 && step.attention[site] ? step.attention[site][li] : null;
  if (!perHead) return null;
  let r;
  if (head < 0) {
    if (perHead.length < H) return null; // the mean needs every head
    r = perHead[0].map((_, j) => perHead.reduce((sum, h) => sum + h[j], 0) / perHead.length);
  } else {
    const hi = rows ? rows.heads.indexOf(head) : head;
    if (hi < 0 || !perHead[hi]) return null;
    r = perHead[hi];
  }
  const edges = step.attention_edges && step.attention_edges[site];
  return edges ? unpool(r, edges) : r;
}

/** rows (arrays, shorter ones padded as masked) -> a Mat of `cols` columns. */
export function matOf(rows, cols) {
  const data = new Float32Array(rows.length * cols).fill(Number.NaN);
  rows.forEach((r, i) => {
    for (let j = 0; j < Math.min(cols, r.length); j++) data[i * cols + j] = r[j];
  });
  return { rows: rows.length, cols, data };
}

// ---------------------------------------------------------------------------------------
// the logit lens at a step

/**
 * The /logit-lens body that reads the residual stream where step `pos` (1-based) was chosen:
 * the prompt and the tokens before it (a decoder), or the source and `<s>` + those tokens as
 * the decoder input (a seq2seq; `bos` the decoder's start id, null while unknown: then, for
 * step 1 only, the server reads its own translation, whose first position, where only `<s>`
 * is seen, is step 1's). Returns null when the body cannot be built yet. The answer's first
 * position is always the step's.
 */
export function lensBody(run, pos, { text, bos, k = 5, ablate }) {
  const before = run.steps.slice(0, pos - 1).map((s) => s.token.id);
  const extra = ablate ? { ablate } : {};
  if (run.kind === "decoder") {
    const ids = [...run.prompt.map((t) => t.id), ...before];
    return { model: run.model.id, token_ids: ids, positions: [ids.length - 1], k, ...extra };
  }
  if (bos === null || bos === undefined) {
    return pos === 1 ? { model: run.model.id, text, k, ...extra } : null;
  }
  return { model: run.model.id, text, target_ids: [bos, ...before], positions: [pos - 1], k, ...extra };
}

/**
 * The /logit-lens body that reads every step's position at once (one forward pass over the
 * decoding): the answer's position p is step p + 1. Needs the seq2seq decoder's `bos`.
 */
export function lensBodyAll(run, { text, bos, k = 5, ablate }) {
  const n = run.steps.length;
  const body = lensBody(run, n, { text, bos, k, ablate });
  if (!body || (run.kind === "seq2seq" && !body.target_ids)) return null;
  const last = body.positions[0];
  return { ...body, positions: Array.from({ length: n }, (_, i) => last - (n - 1) + i) };
}

/** The answer of lensBodyAll cut into one answer per step (as lensBody's would be). */
export function lensPerStep(all) {
  return all.positions.map((_, p) => ({
    ...all,
    positions: [all.positions[p]],
    top_ids: all.top_ids.map((layer) => [layer[p]]),
    top_probs: all.top_probs.map((layer) => [layer[p]]),
    final_ids: [all.final_ids[p]],
    final_probs: all.final_probs.map((layer) => [layer[p]]),
  }));
}

/**
 * The first step (1-based) where a block before the output already predicts another token than
 * the model's (the lens's own row of the output aside), or 0 when every block agrees at every
 * step. `perStep`: lensPerStep's answers.
 */
export function firstDisagreement(perStep) {
  const i = perStep.findIndex((lens) =>
    lens.layers.some(
      (layer, li) => layer !== "embed" && li < lens.layers.length - 1 && lens.top_ids[li][0][0] !== lens.final_ids[0],
    ),
  );
  return i + 1;
}

/** POST /logit-lens for step `pos`; resolves to the answer (its `tokens.target[0]` is `<s>`). */
export const fetchLens = (body, opts) => post("/logit-lens", body, opts);

/**
 * The logit lens of one position as a table in `box`: a row per layer ("embed", then each
 * block), its top-k tokens with their probabilities (the cell's shade follows the
 * probability, the number says it), and the probability that layer already gives the model's
 * final prediction (★, outlined). Returns {rows: [{layer, top: [{id, label, prob}], final}]}.
 */
export function drawLens(box, lens, run, pos) {
  const afterWord = pos > 1 || run.kind === "decoder";
  const marks = marksStarts(run, "top");
  const label = (id) => candidateLabel({ id, text: lens.vocab[String(id)] }, { afterWord, marksStarts: marks });
  const finalId = lens.final_ids[0];
  const k = lens.top_ids[0][0].length;
  const rows = lens.layers.map((layer, li) => ({
    layer,
    top: lens.top_ids[li][0].map((id, j) => ({ id, label: label(id), prob: lens.top_probs[li][0][j] })),
    final: lens.final_probs[li][0],
  }));
  const head = el(
    "tr",
    {},
    el("th", { scope: "col", text: "layer" }),
    ...Array.from({ length: k }, (_, j) => el("th", { scope: "col", text: j === 0 ? "top 1" : `${j + 1}` })),
    el("th", { scope: "col", text: `P(“${label(finalId)}”) ★` }),
  );
  const body = rows.map((r) =>
    el(
      "tr",
      { dataset: { layer: r.layer } },
      el("th", { scope: "row", text: r.layer === "embed" ? "embed" : `after block ${r.layer}` }),
      ...r.top.map((c) => {
        const td = el(
          "td",
          { class: `cand${c.id === finalId ? " final" : ""}`, dataset: { id: String(c.id) } },
          c.id === finalId ? "★ " : "",
          el("span", { class: "tok", text: c.label }),
          el("span", { class: "p", text: c.prob.toFixed(3) }),
        );
        td.style.setProperty("--p", String(c.prob));
        return td;
      }),
      el("td", { class: "num final-p", text: r.final.toFixed(3) }),
    ),
  );
  box.replaceChildren(
    el(
      "table",
      { class: "lens", "aria-label": `logit lens at step ${pos}` },
      el("caption", {
        class: "plot-note",
        text:
          `Step ${pos}: each layer's residual stream at the position that chose the token, put through the ` +
          `final norm and the unembedding as if the model stopped there. ★ = the model's own prediction ` +
          `(“${label(finalId)}”); the last row is the model's output.`,
      }),
      el("thead", {}, head),
      el("tbody", {}, ...body),
    ),
  );
  return { rows, final: { id: finalId, label: label(finalId) } };
}
