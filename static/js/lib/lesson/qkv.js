// Step 3: one head's arithmetic, X to its output (lib/mathsteps.js, as /math draws it).

import * as api from "../api.js";
import { siteTokens } from "../attn.js";
import { el } from "../dom.js";
import { registerExport } from "../export.js";
import { drawSteps, fetchHead, fetchLayerZ, headTensors, rowArithmetic, windowAround } from "../mathsteps.js";
import { atSelfHead, headOptions, headPicks, isTransformer, selfSite, sharpestHead } from "./common.js";

export const qkv = {
  slug: "qkv",
  title: "Q, K, V: one head's arithmetic",
  text: [
    "Each token's vector is projected three times by learned matrices: a query (what this token is looking for), a key (what it can be found by) and a value (what it passes on when it is chosen).",
    "The head scores every query against every key with a dot product, divides by √dₖ so that the scores do not grow with the head's width and the softmax stays soft, hides what must not be seen, turns each row into weights that add up to 1, and gives each token the weighted average of the values.",
    "Follow one head below from X to its output, with the matrices the model computed for this sentence; the last card works one row out in numbers.",
  ],
  needs: "a transformer",
  models: isTransformer,
  prefer: ["encoder-mini", "decoder-mini", "seq2seq-en-fr"],
  sentence: "i love machine learning",
  target: false,
  full: atSelfHead("/math"),
  async show(body, ctx) {
    const { model, state, signal } = ctx;
    const site = selfSite(model);
    await sharpestHead(ctx, site);
    const picks = headPicks(ctx, site);
    const request = { ...api.inputBody(model, state), layers: [picks.layer], heads: [picks.head] };
    const answer = await fetchHead(request, { signal });
    if (signal.aborted) return;
    body.append(headOptions(ctx, site, picks));
    const { queries, keys } = siteTokens(answer, site);
    // a long input: the last rows and their keys, as /math shows them (every cell of a
    // 512 × 512 head as Plotly heatmaps would freeze the page for seconds)
    const win = windowAround(queries.length, keys.length, queries.length - 1);
    if (win.r1 - win.r0 < queries.length || win.c1 - win.c0 < keys.length)
      body.append(
        el("p", {
          class: "note",
          text: `${queries.length} × ${keys.length} tokens: the matrices show query rows ${win.r0}–${win.r1 - 1} and key columns ${win.c0}–${win.c1 - 1}; the row worked out below still sums over every key. The full view pages through the rest.`,
        }),
      );
    const loadZ = () => fetchLayerZ(model, request, answer, site, 12 * 512 * 512).then((z) => (z ? z[site] : null));
    const shown = headTensors(answer, model, site, picks.layer, picks.head, win, loadZ);
    const pipeline = el("div", { class: "pipeline" });
    body.append(pipeline);
    for (const step of drawSteps(pipeline, shown)) {
      registerExport(step.id, {
        filename: () => `attnviz-${model.id}-math-${step.id}-L${picks.layer}H${picks.head}`,
        plot: () => step.plot,
        data: () => ({ model: model.id, text: state.text, site, layer: picks.layer, head: picks.head, ...step.data }),
      });
    }
    const detail = pipeline.querySelector(".cell-detail");
    if (detail) detail.replaceChildren(...rowArithmetic(shown, queries.length - 1, -1));
  },
};
