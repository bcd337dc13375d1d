// Step 2: positional encoding, the model's table, then RoPE's relative scores beside it.

import * as api from "../api.js";
import { el } from "../dom.js";
import { registerExport } from "../export.js";
import { figure } from "../panel.js";
import { drawCurves, drawEmbedding, drawTable } from "../positionpanels.js";
import { additiveNote, relativeNote, relativePlot } from "../ropepanels.js";
import { exported, framed, isTransformer, viewUrl } from "./common.js";

export const positions = {
  slug: "positions",
  title: "Positional encoding: sinusoidal, then RoPE",
  text: [
    "Attention compares every token with every other one at the same time, so by itself it cannot tell “the dog bites the man” from “the man bites the dog”. The order has to be written into the vectors.",
    "The original Transformer adds to each embedding a fixed vector that depends only on the position: the sine and cosine of the position at frequencies that shrink geometrically from one pair of dimensions to the next. Fast waves tell neighbours apart, slow ones tell the beginning of a sentence from its end; the values stay between −1 and 1, and the same table serves every sentence. BERT learns its table instead.",
    "RoPE, used by LLaMA-style decoders such as decoder-mini, adds nothing to the embeddings: it turns every query and key by an angle proportional to its position. The score of a query with a key then depends only on how far apart they are, which is why the RoPE matrix below repeats along its diagonals while the other one does not.",
  ],
  needs:
    "a model that adds sinusoidal or learned positions to its embeddings (RoPE models rotate queries and keys instead: see the RoPE view)",
  models: (m) => isTransformer(m) && ["sinusoidal", "learned"].includes(m.positional),
  prefer: ["seq2seq-en-fr", "encoder-mini"],
  sentence: "the dog bites the man",
  target: false,
  full: (ctx) => viewUrl("/positions", ctx),
  async show(body, ctx) {
    const { model, models, state, signal } = ctx;
    const n = Math.min(32, model.max_len);
    const rope =
      models.find((m) => isTransformer(m) && m.positional === "rope" && !m.attn_only) ||
      models.find((m) => isTransformer(m) && m.positional === "rope");
    const relative = async (m) => {
      const t = await api.post("/tokenize", { model: m.id, text: state.text }, { signal });
      const T = t.tokens.length;
      return api.post(
        "/rope/relative",
        {
          model: m.id,
          text: state.text,
          layer: 0,
          head: 0,
          query: T - 1,
          key: Math.max(0, T - 2),
          max_position: Math.min(24, m.max_len),
        },
        { signal },
      );
    };
    const [pos, ropeScores, addedScores] = await Promise.all([
      api.get(`/models/${encodeURIComponent(model.id)}/positions?n=${n}&text=${encodeURIComponent(state.text)}`, {
        signal,
      }),
      rope ? relative(rope) : null,
      rope ? relative(model) : null,
    ]);
    if (signal.aborted) return;
    const table = framed(body, {
      title: `${model.id}'s positional table`,
      subtitle:
        "Left: the vector added at each position (rows) over the dimensions; right: a few dimensions along the positions.",
      exportId: "lesson-table",
    });
    const row = el("div", { class: "matrices" });
    table.append(row);
    const t = exported(row, "lesson-table", `attnviz-${model.id}-positions`, () => ({
      model: model.id,
      table: pos.table,
    }));
    const c = figure("");
    row.append(c.box);
    drawTable(t.plot, pos, { height: 360 });
    drawCurves(c.plot, pos, { height: 360 });
    const sum = framed(body, {
      title: "What layer 0 reads: embedding + position",
      subtitle: "Each token's embedding, plus the vector of its position, on one colour scale.",
      exportId: "lesson-sum",
    });
    const three = el("div", { class: "matrices" });
    sum.append(three);
    const parts = ["token embedding", "positional vector", "their sum"].map((title) => {
      const f = figure(title);
      three.append(f.box);
      return f;
    });
    registerExport("lesson-sum", {
      filename: () => `attnviz-${model.id}-embedding-plus-pe`,
      plot: () => parts[2].plot,
      data: () => ({ model: model.id, text: state.text, embedding: pos.embedding }),
    });
    const shapes = drawEmbedding({ token: parts[0].plot, position: parts[1].plot, sum: parts[2].plot }, pos);
    if (shapes?.scale) {
      // the original Transformer multiplies the looked-up rows before adding positions
      parts[0].box.append(
        el("p", { class: "plot-note", id: "lesson-emb-scale", text: `Already multiplied ${shapes.scale}.` }),
      );
    }
    if (!rope) return;
    const rel = framed(body, {
      title: "RoPE: the score depends only on the distance",
      subtitle:
        "One query and one key of this sentence placed at every pair of positions (m, n): the score they would get there.",
      exportId: "lesson-relative",
    });
    const pair = el("div", { class: "matrices" });
    rel.append(pair);
    const [a, b] = [ropeScores, addedScores].map((r, i) => {
      const f = figure("", { note: " " });
      pair.append(f.box);
      f.note.textContent = i === 0 ? relativeNote(r.scores) : additiveNote(r.scores);
      return f;
    });
    registerExport("lesson-relative", {
      filename: () => `attnviz-${rope.id}-rope-relative`,
      plot: () => a.plot,
      data: () => ({ rope: ropeScores, added: addedScores }),
    });
    relativePlot(a.plot, ropeScores.scores, `${rope.id} (RoPE)`, { height: 380 });
    relativePlot(b.plot, addedScores.scores, `${model.id} (${model.positional})`, { height: 380 });
  },
};
