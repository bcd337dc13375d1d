// LayerNorm, RMSNorm and BatchNorm side by side on the same activations, over a batch of
// lecture sentences the reader ticks in or out (only BatchNorm moves).

import { clear, el, fmt } from "../dom.js";
import { registerExport } from "../export.js";
import { OKABE_ITO } from "../palette.js";
import { figure, panel } from "../panel.js";
import { featureHeatmap } from "../heatmap.js";
import { LEGEND_ABOVE, react } from "../plots.js";
import { presetsFor } from "../presets.js";
import { maxAbs, toNested } from "../tensor.js";
import { bars, blockTokens, mat, tokenAxis, tokenMargin } from "./common.js";

/** The server takes at most this many other sentences for the comparison's batch. */
export const MAX_BATCH = 8;

/**
 * The lecture sentences the comparison's batch may hold: the model's presets other than
 * `text`, each {text, index (in presetsFor), checked (not in `drop`)}.
 */
export function batchChoices(model, text, drop = []) {
  return presetsFor(model)
    .map((p, index) => ({ text: p.text, index }))
    .filter((p) => p.text !== text)
    .filter((p, i, all) => all.findIndex((q) => q.text === p.text) === i)
    .slice(0, MAX_BATCH)
    .map((p) => ({ ...p, checked: !drop.includes(p.index) }));
}

/** The preset indices a batch of `kept` sentences leaves out. */
export const droppedFrom = (choices, kept) => choices.filter((c) => !kept.includes(c.text)).map((c) => c.index);

/**
 * choices: [{text, checked}] the sentences the batch may hold; onBatch(checkedTexts) when the
 * reader changes it.
 */
export function renderComparison(container, data, { choices = [], onBatch = () => {}, prefix = "", level = 2 } = {}) {
  clear(container);
  const c = data.comparison;
  const tokens = blockTokens(data);
  const { root, body } = panel({
    title: "LayerNorm, RMSNorm and BatchNorm on the same activations",
    subtitle: `The activations: ${c.stream} (T × d_model). LayerNorm and RMSNorm compute their statistics over each token's own features; BatchNorm computes one mean and spread per feature over every token of a batch of sentences. Change the batch: only BatchNorm's numbers move.`,
    exportId: `${prefix}compare`,
    level,
  });
  container.append(root);

  if (choices.length) {
    const boxes = choices.map((ch, i) => {
      const input = el("input", { type: "checkbox", id: `${prefix}batch-${i}`, name: "batch" });
      input.checked = ch.checked;
      return el("label", { class: "check batch-choice", for: `${prefix}batch-${i}` }, input, ch.text);
    });
    const fieldset = el(
      "fieldset",
      { class: "batch-picker" },
      el("legend", {
        text: `The batch: this sentence plus the ones ticked (${c.batchnorm.batch.n_sentences} sentences, ${c.batchnorm.batch.n_tokens} tokens)`,
      }),
      boxes,
    );
    fieldset.addEventListener("change", () => {
      onBatch(choices.filter((_, i) => boxes[i].querySelector("input").checked).map((ch) => ch.text));
    });
    body.append(fieldset);
  }

  const perToken = figure("LayerNorm / RMSNorm: statistics per token");
  const perFeature = figure("BatchNorm: the mean of each feature");
  body.append(el("div", { class: "matrices" }, perToken.box, perFeature.box));
  react(
    perToken.plot,
    [
      bars("mean (LayerNorm)", c.layernorm.mean, OKABE_ITO[0], tokens),
      bars("std (LayerNorm)", c.layernorm.std, OKABE_ITO[1], tokens),
      bars("RMS (RMSNorm)", c.rmsnorm.rms, OKABE_ITO[2], tokens),
    ],
    {
      height: 300,
      barmode: "group",
      margin: tokenMargin(tokens),
      xaxis: tokenAxis(tokens),
      yaxis: { gridcolor: "#eceef2" },
      legend: LEGEND_ABOVE,
    },
  );
  const bn = c.batchnorm;
  const feats = bn.alone.mean.map((_, i) => i);
  react(
    perFeature.plot,
    [
      {
        type: "scatter",
        mode: "lines",
        name: "this sentence alone",
        x: feats,
        y: bn.alone.mean,
        line: { color: OKABE_ITO[4], width: 1.5 },
      },
      {
        type: "scatter",
        mode: "lines",
        name: `in the batch (${bn.batch.n_sentences} sentences)`,
        x: feats,
        y: bn.batch.mean,
        line: { color: OKABE_ITO[5], width: 1.5 },
      },
    ],
    {
      height: 300,
      margin: { l: 50, r: 10, t: 10, b: 50 },
      xaxis: { title: { text: "feature" }, gridcolor: "#eceef2" },
      yaxis: { title: { text: "mean over the batch's tokens" }, gridcolor: "#eceef2" },
      legend: LEGEND_ABOVE,
    },
  );

  const outs = [
    ["LayerNorm", c.layernorm.output, "LayerNorm"],
    ["RMSNorm", c.rmsnorm.output, "RMSNorm"],
    ["BatchNorm, this sentence alone", bn.alone.output, "BN alone"],
    ["BatchNorm, in the batch", bn.batch.output, "BN batch"],
  ].map(([title, x, value]) => ({ ...figure(title), m: mat(x), title: value }));
  const top = Math.min(6, Math.max(...outs.map((o) => maxAbs(o.m, 1e-6))));
  body.append(
    el(
      "div",
      { class: "grid-2" },
      outs.map((o) => o.box),
    ),
  );
  outs.forEach((o, i) =>
    featureHeatmap(o.plot, o.m, tokens, {
      value: o.title,
      zmin: -top,
      zmax: top,
      ticks: i % 2 === 0,
      height: Math.max(180, Math.min(420, tokens.length * 22 + 70)),
    }),
  );
  let moved = 0;
  const [alone, inBatch] = [outs[2].m.data, outs[3].m.data];
  for (let k = 0; k < alone.length; k++) moved = Math.max(moved, Math.abs(alone[k] - inBatch[k]));
  body.append(
    el("p", {
      class: "plot-note",
      text:
        bn.batch.n_sentences > 1
          ? `Putting the sentence in a batch moved its BatchNorm values by up to ${fmt(moved, 2)}; its LayerNorm and RMSNorm values do not change at all, whatever the batch: they never look past the token. That is why transformers, which see batches of sentences of every length (and one token at a time when generating), use LayerNorm or RMSNorm.`
          : "Tick some sentences above to put this one in a batch.",
    }),
  );
  registerExport(`${prefix}compare`, {
    filename: () => `attnviz-${data.model}-${data.stack}-block${data.layer}-norms-compared`,
    plot: () => outs[3].plot,
    data: () => ({
      model: data.model,
      text: tokens.map((t) => t.text),
      comparison: {
        ...c,
        layernorm: { ...c.layernorm, output: toNested(outs[0].m) },
        rmsnorm: { ...c.rmsnorm, output: toNested(outs[1].m) },
        batchnorm: {
          alone: { ...bn.alone, output: toNested(outs[2].m) },
          batch: { ...bn.batch, output: toNested(outs[3].m) },
        },
      },
    }),
  });
  return moved;
}
