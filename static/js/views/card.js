// Model card: the architecture drawn from the config (embeddings, positions, Add & Norm,
// pre/post norm, FFN, cross-attention, heads), the parameter count of each part, and the
// training metrics from the checkpoint's card.

import * as api from "../lib/api.js";
import { $, clear, el, fillSelect, svg } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { metricWords } from "../lib/metricwords.js";
import { OKABE_ITO } from "../lib/palette.js";
import { react } from "../lib/plots.js";
import { initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { str, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({ model: str(""), text: str(""), target: str("") });
const status = $("#status");
let info = null;

const PART_LABEL = {
  embeddings: "embeddings (tokens + learned positions)",
  attention: "attention (W_Q, W_K, W_V, W_O)",
  ffn: "feed-forward (FFN)",
  norms: "norms",
  lm_head: "LM head (d_model → vocabulary)",
  cls_head: "[CLS] classification head",
  heads: "output heads",
};
/** An RNN's parts (models/rnn.py): its attention is additive, its cells recurrent. */
const RNN_PART_LABEL = {
  attention: "additive attention (W_a, U_a, v)",
  encoder: "encoder cell (W_x, W_h)",
  decoder: "decoder cell (W_x, W_h)",
  decoder_init: "decoder's first state (W_init)",
  readout: "readout (W_r)",
};
const partLabel = (k, m) =>
  k === "embeddings"
    ? m.positional === "learned"
      ? "embeddings (tokens + positions)"
      : "token embeddings"
    : (m.architecture === "rnn" && RNN_PART_LABEL[k]) || PART_LABEL[k] || k;
const POS_LABEL = {
  sinusoidal: "sinusoidal (fixed)",
  learned: "learned table",
  rope: "RoPE (rotates q, k)",
  none: "none",
};
const ACT_LABEL = { relu: "ReLU", gelu: "GELU", swiglu: "SwiGLU" };
const NORM_LABEL = { layernorm: "LayerNorm", rmsnorm: "RMSNorm", none: "no norm" };

// ---------------------------------------------------------------------------------------
// The architecture diagram: one column per stack, boxes top to bottom (input at the top).

const BOX_W = 250;
const BOX_H = 34;
const GAP = 16;

const CELL_LABEL = { lstm: "LSTM", gru: "GRU", tanh: "tanh RNN" };

/** The gap between a translator's two columns; its token embedding spans both. */
const COLUMN_GAP = 120;

/**
 * The token embedding box. A translator has one table for both languages (models/: one
 * tok_embed): one box across both columns, drawn by the encoder's, which the decoder's column
 * leaves room for.
 */
function embeddingBox(m, stack, sub) {
  if (m.kind !== "seq2seq") return { cls: "box-embed", label: "Token embedding", sub };
  if (stack === "decoder") return { hidden: true, sub };
  return {
    cls: "box-embed",
    label: "Token embedding: one table, shared by both sides",
    sub,
    span: 2 * BOX_W + COLUMN_GAP,
  };
}

/** An RNN translator (models/rnn.py): recurrent cells and additive attention, no blocks. */
function rnnItems(m, stack) {
  const a = (m.card && m.card.recipe && m.card.recipe.architecture) || {};
  const cell = CELL_LABEL[m.cell] || m.cell || "RNN";
  const dEmbed = a.d_embed ?? m.d_model;
  const embed = embeddingBox(m, stack, `${m.vocab_size} × ${dEmbed}, no positions`);
  if (stack === "encoder") {
    return [
      { cls: "box-embed", label: "English tokens x₁ … xₛ", sub: `vocabulary ${m.vocab_size}` },
      embed,
      { cls: "box-ffn", label: `${cell} encoder, left to right`, sub: `hₜ = cell(xₜ, hₜ₋₁) · d ${m.d_model}` },
      { cls: "box-stack", label: "encoder states h₁ … hₛ", sub: "the keys and values", id: "memory" },
    ];
  }
  return [
    { cls: "box-embed", label: "French tokens (shifted right)", sub: `vocabulary ${m.vocab_size}` },
    embed,
    { cls: "box-norm", label: "First state s₀, from hₛ", sub: "s₀ = tanh(W_init hₛ)" },
    {
      cls: "box-cross",
      label: "Cross-attention: additive, 1 head",
      sub: "eᵢⱼ = vᵀ tanh(W_a sᵢ₋₁ + U_a hⱼ)",
      id: "decoder-cross",
    },
    { cls: "box-ffn", label: `${cell} decoder cell`, sub: "sᵢ = cell([yᵢ₋₁; cᵢ], sᵢ₋₁)" },
    { cls: "box-norm", label: "Readout", sub: `tanh(W_r [sᵢ; cᵢ; yᵢ₋₁]) · d ${m.d_model}` },
    { cls: "box-head", label: "Linear + softmax", sub: `${m.d_model} → ${m.vocab_size}: next-token probabilities` },
  ];
}

function architectureItems(m, stack) {
  if (m.architecture === "rnn") return rnnItems(m, stack);
  const a = (m.card && m.card.recipe && m.card.recipe.architecture) || {};
  const attnOnly = !!a.attn_only;
  const hasNorm = m.norm !== "none";
  const pre = m.norm_position === "pre";
  const norm = NORM_LABEL[m.norm] || m.norm;
  const decoder = stack === "decoder";
  const cross = decoder && m.kind === "seq2seq";
  const rope = m.positional === "rope";
  const items = [];
  items.push({
    cls: "box-embed",
    label: decoder && m.kind === "seq2seq" ? "French tokens (shifted right)" : "Input tokens",
    sub: `vocabulary ${m.vocab_size}`,
  });
  items.push(embeddingBox(m, stack, `${m.vocab_size} × ${m.d_model}${a.scale_embeddings ? ", × √d_model" : ""}`));
  if (m.positional === "sinusoidal" || m.positional === "learned") {
    items.push({ cls: "box-pos", label: `+ positional encoding`, sub: POS_LABEL[m.positional] });
  }
  const layers = decoder ? (m.kind === "seq2seq" ? (m.n_decoder_layers ?? m.n_layers) : m.n_layers) : m.n_layers;
  const block = [];
  const sublayer = (box, id) => {
    if (pre && hasNorm) block.push({ cls: "box-norm", label: norm, sub: "pre-norm" });
    block.push({ ...box, id });
    block.push({
      cls: "box-norm",
      label: pre || !hasNorm ? "Add (residual)" : `Add & ${norm}`,
      sub: pre || !hasNorm ? "x + sublayer(norm(x))" : "norm(x + sublayer(x))",
    });
  };
  sublayer(
    {
      cls: "box-attn",
      label: `${decoder ? "Masked multi-head" : "Multi-head"} self-attention`,
      sub:
        `${m.n_heads} heads × d_k ${m.d_head}` +
        (m.n_kv_heads && m.n_kv_heads < m.n_heads ? ` · ${m.n_kv_heads} K/V heads (grouped)` : "") +
        (rope ? " · RoPE on q, k" : ""),
    },
    `${stack}-self`,
  );
  if (cross)
    sublayer(
      { cls: "box-cross", label: "Cross-attention", sub: "q: decoder · k, v: encoder output" },
      `${stack}-cross`,
    );
  if (!attnOnly)
    sublayer(
      {
        cls: "box-ffn",
        label: `Feed-forward (${ACT_LABEL[m.activation] || m.activation})`,
        sub: `${m.d_model} → ${m.d_ff} → ${m.d_model}`,
      },
      `${stack}-ffn`,
    );
  items.push({ group: block, repeat: layers });
  if (pre && hasNorm) items.push({ cls: "box-norm", label: `final ${norm}`, sub: "pre-norm stacks end with one" });
  if (m.kind === "seq2seq" && !decoder) {
    items.push({
      cls: "box-stack",
      label: "encoder output (memory)",
      sub: "keys and values for cross-attention",
      id: "memory",
    });
  } else if (m.kind === "encoder") {
    if (api.can(m, "fill-mask"))
      items.push({ cls: "box-head", label: "LM head (masked tokens)", sub: `${m.d_model} → ${m.vocab_size}, softmax` });
    else items.push({ cls: "box-stack", label: "no output head", sub: "imported without: hidden states only" });
    if (m.labels && m.labels.length)
      items.push({
        cls: "box-head",
        label: "[CLS] head",
        sub: `${m.d_model} → ${m.labels.length}: ${m.labels.join(" / ")}`,
      });
  } else if (api.can(m, "generate") || api.can(m, "translate")) {
    items.push({
      cls: "box-head",
      label: "Linear + softmax",
      sub: `${m.d_model} → ${m.vocab_size}: next-token probabilities`,
    });
  } else {
    items.push({ cls: "box-stack", label: "no output head", sub: "imported without: hidden states only" });
  }
  return items;
}

function drawColumn(root, items, x, y, title) {
  const anchors = {};
  root.append(svg("text", { x: x + BOX_W / 2, y, "text-anchor": "middle", class: "stack-label", text: title }));
  y += 14;
  let prevBottom = null;
  const arrow = (y1, y2) =>
    root.append(
      svg("path", {
        class: "arrow",
        d: `M${x + BOX_W / 2} ${y1} L${x + BOX_W / 2} ${y2 - 2}`,
        "marker-end": "url(#arrowhead)",
      }),
    );
  const box = (it, bx, by, width) => {
    if (it.hidden) return by + BOX_H + (it.sub ? 12 : 0); // room for a box another column draws
    const w = it.span || width;
    root.append(svg("rect", { class: it.cls, x: bx, y: by, width: w, height: BOX_H + (it.sub ? 12 : 0), rx: 7 }));
    root.append(
      svg("text", { x: bx + w / 2, y: by + 17, "text-anchor": "middle", "font-weight": 600, text: it.label }),
    );
    if (it.sub)
      root.append(
        svg("text", { x: bx + w / 2, y: by + 34, "text-anchor": "middle", class: "note-text", text: it.sub }),
      );
    if (it.id) anchors[it.id] = { x: bx, y: by, w, h: BOX_H + (it.sub ? 12 : 0) };
    return by + BOX_H + (it.sub ? 12 : 0);
  };
  for (const it of items) {
    if (prevBottom !== null) {
      arrow(prevBottom, y + GAP);
      y += GAP;
    }
    if (it.group) {
      const top = y;
      y += 12;
      let inner = null;
      const nodes = [];
      for (const sub of it.group) {
        if (inner !== null) {
          arrow(inner, y + 10);
          y += 10;
        }
        nodes.push([sub, y]);
        inner = y + BOX_H + (sub.sub ? 12 : 0);
        y = inner;
      }
      y += 12;
      const frame = svg("rect", { class: "box-stack", x: x - 14, y: top, width: BOX_W + 28, height: y - top, rx: 10 });
      root.append(frame);
      // draw the boxes above the frame
      let last = null;
      for (const [sub, by] of nodes) {
        if (last !== null) arrow(last, by);
        last = box(sub, x, by, BOX_W);
      }
      root.append(
        svg("text", {
          x: x + BOX_W + 20,
          y: top + 18,
          "text-anchor": "start",
          "font-weight": 700,
          "font-size": 16,
          text: `× ${it.repeat}`,
        }),
      );
      prevBottom = y;
    } else {
      prevBottom = box(it, x, y, BOX_W);
      y = prevBottom;
    }
  }
  return { bottom: y, anchors };
}

function drawArchitecture(m) {
  const twoStacks = m.kind === "seq2seq";
  const width = twoStacks ? 40 + 2 * BOX_W + COLUMN_GAP + 70 : 40 + BOX_W + 80;
  const root = svg("svg", {
    class: "arch",
    id: "arch-svg",
    role: "img",
    "aria-label": `Architecture of ${m.id}`,
    width,
    height: 100,
  });
  const defs = svg(
    "defs",
    {},
    svg(
      "marker",
      {
        id: "arrowhead",
        viewBox: "0 0 10 10",
        refX: 8,
        refY: 5,
        markerWidth: 7,
        markerHeight: 7,
        orient: "auto-start-reverse",
      },
      svg("path", { d: "M0 0 L10 5 L0 10 z", fill: "#59616f" }),
    ),
  );
  root.append(defs);
  let bottom;
  if (twoStacks) {
    const enc = drawColumn(root, architectureItems(m, "encoder"), 40, 24, "Encoder (English)");
    const dec = drawColumn(root, architectureItems(m, "decoder"), 40 + BOX_W + COLUMN_GAP, 24, "Decoder (French)");
    const from = enc.anchors.memory;
    const to = dec.anchors["decoder-cross"];
    if (from && to) {
      const sx = from.x + from.w;
      const sy = from.y + from.h / 2;
      const tx = to.x;
      const ty = to.y + to.h / 2;
      root.append(
        svg("path", {
          class: "arrow",
          d: `M${sx} ${sy} C${sx + 60} ${sy}, ${tx - 60} ${ty}, ${tx - 2} ${ty}`,
          "marker-end": "url(#arrowhead)",
        }),
      );
      root.append(
        svg("text", {
          x: (sx + tx) / 2,
          y: Math.min(sy, ty) + (sy < ty ? 40 : -10),
          "text-anchor": "middle",
          class: "note-text",
          text: m.architecture === "rnn" ? "hⱼ" : "K, V",
        }),
      );
    }
    bottom = Math.max(enc.bottom, dec.bottom);
  } else {
    bottom = drawColumn(
      root,
      architectureItems(m, m.kind === "encoder" ? "encoder" : "decoder"),
      40,
      24,
      m.kind === "encoder" ? "Encoder" : "Decoder",
    ).bottom;
  }
  root.setAttribute("height", String(bottom + 20));
  root.setAttribute("viewBox", `0 0 ${width} ${bottom + 20}`);
  return root;
}

// ---------------------------------------------------------------------------------------
function factsTable(table, rows) {
  clear(table);
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === "") continue;
    table.append(
      el(
        "tr",
        {},
        el("th", { text: k }),
        el("td", {
          class: typeof v === "number" ? "num" : null,
          text:
            typeof v === "number"
              ? Number.isInteger(v)
                ? v.toLocaleString("en-US")
                : String(Number(v.toPrecision(4)))
              : String(v),
        }),
      ),
    );
  }
}

function flatten(obj, prefix = "") {
  const rows = [];
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix} · ${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) rows.push(...flatten(v, key));
    else if (Array.isArray(v)) rows.push([key, v.length > 8 ? `${v.slice(0, 8).join(", ")}, …` : v.join(", ")]);
    else
      rows.push([
        key,
        typeof v === "number" && !Number.isInteger(v)
          ? Number(v.toFixed(4))
          : typeof v === "boolean"
            ? v
              ? "yes"
              : "no"
            : v,
      ]);
  }
  return rows;
}

function render() {
  const m = info;
  const card = m.card || {};
  $("#card-title-label").textContent = m.title || m.id;
  const served =
    m.dtype === "bfloat16"
      ? " This server multiplies its weight matrices in bfloat16 (ATTNVIZ_DTYPE); attention, norms and the residual stream stay float32."
      : "";
  $("#card-description").textContent = (m.description || card.description || "") + served;
  $("#arch").replaceChildren(drawArchitecture(m));

  const params = card.parameters || {};
  const parts = Object.entries(params).filter(([k, v]) => k !== "total" && v > 0);
  const total = params.total || m.n_params;
  react(
    $("#params"),
    [
      {
        type: "bar",
        orientation: "h",
        y: parts.map(([k]) => partLabel(k, m)),
        x: parts.map(([, v]) => v),
        text: parts.map(([, v]) => `${v.toLocaleString("en-US")} (${((100 * v) / total).toFixed(1)} %)`),
        textposition: "outside",
        cliponaxis: false,
        marker: { color: parts.map((_, i) => OKABE_ITO[i % OKABE_ITO.length]) },
        hovertemplate: "%{y}: %{x:,} parameters<extra></extra>",
      },
    ],
    {
      height: Math.max(200, parts.length * 40 + 70),
      margin: { l: 250, r: 130, t: 10, b: 40 },
      xaxis: { title: { text: "parameters" }, gridcolor: "#eceef2" },
      yaxis: { autorange: "reversed" },
    },
  );
  factsTable($("#params-table"), [...parts.map(([k, v]) => [partLabel(k, m), v]), ["total", total]]);

  const layers =
    m.kind === "seq2seq" ? `${m.n_layers} encoder + ${m.n_decoder_layers ?? m.n_layers} decoder` : m.n_layers;
  const arch = (card.recipe && card.recipe.architecture) || {};
  if (m.architecture === "rnn") {
    // a recurrent translator: no heads to split, no FFN, no positions, no norms
    factsTable($("#config-table"), [
      ["family", "RNN encoder-decoder with additive (Bahdanau) attention"],
      ["cell", CELL_LABEL[m.cell] || m.cell],
      ["layers", "1 encoder + 1 decoder cell"],
      ["hidden size d", m.d_model],
      ["embedding size", arch.d_embed],
      ["attention", `additive, 1 head at decoder.cross${arch.d_attn ? `, d_attn ${arch.d_attn}` : ""}`],
      ["positions", "none: the recurrence carries the order"],
      ["vocabulary", m.vocab_size],
      ["max length", m.max_len],
      ["tasks", (m.tasks || []).join(", ")],
    ]);
  }
  if (m.architecture !== "rnn")
    factsTable($("#config-table"), [
      [
        "family",
        {
          encoder: "encoder (BERT-style)",
          decoder: "decoder (GPT-style)",
          seq2seq: "encoder-decoder (original Transformer)",
        }[m.kind] || m.kind,
      ],
      ["layers", layers],
      ["heads per layer", m.n_heads],
      ["d_model", m.d_model],
      ["d_head = d_model / heads", m.d_head],
      ["d_ff (FFN width)", m.d_ff],
      ["positions", POS_LABEL[m.positional] || m.positional],
      ["normalisation", `${NORM_LABEL[m.norm] || m.norm}, ${m.norm_position}-norm`],
      ["activation", ACT_LABEL[m.activation] || m.activation],
      ["vocabulary", m.vocab_size],
      ["max length", m.max_len],
      ["labels", (m.labels || []).join(", ")],
      ["tasks", (m.tasks || []).join(", ")],
    ]);

  renderSource(card);
  const curve = card.loss_curve || [];
  $("#loss-panel").hidden = !curve.length; // an imported model was not trained here
  if (curve.length) {
    react(
      $("#loss"),
      [
        {
          type: "scatter",
          mode: "lines",
          x: curve.map((_, i) => i * 50),
          y: curve,
          line: { color: OKABE_ITO[0], width: 2.5 },
          hovertemplate: "step %{x}: loss %{y:.3f}<extra></extra>",
        },
      ],
      {
        height: 300,
        margin: { l: 55, r: 10, t: 10, b: 45 },
        xaxis: { title: { text: "training step" }, gridcolor: "#eceef2" },
        yaxis: { title: { text: "loss" }, gridcolor: "#eceef2" },
      },
    );
  }
  const recipe = card.recipe || {};
  factsTable($("#metrics-table"), [
    ...flatten(card.metrics || {}).map(([k, v]) => [metricWords(k), v]),
    ["final training loss", card.final_train_loss],
    ["training steps", card.steps ?? recipe.steps],
    ["batch size", recipe.batch_size],
    ["learning rate", recipe.lr],
    ["objective", recipe.objective],
    ["seed", card.seed ?? recipe.seed],
    ["wall time (s)", card.wall_time_seconds],
    ["trained on", card.device],
    ["trained", card.source && !card.metrics ? "elsewhere, not by attnviz: see Source and license" : null],
  ]);
}

/** An imported model's origin: where it came from, its architecture, its license, its special
 * tokens and what the conversion dropped or assumed. */
function renderSource(card) {
  const src = card.source;
  $("#source-panel").hidden = !src;
  if (!src) return;
  const conversion = card.conversion || {};
  factsTable($("#source-table"), [
    ["imported from", src.origin],
    ["architecture", src.architecture],
    ["model type", src.model_type],
    ["license", src.license || "not stated by the source: check before you share it"],
    ["transformers version", src.transformers_version],
    ["imported on", src.imported],
    ...Object.entries(card.special_tokens || {}).map(([role, token]) => [role.replace(/_/g, " "), token]),
    ...(card.gguf ? [["quantization", `${card.gguf.quantization} (GGUF): ${card.gguf.note}`]] : []),
    ...headRoles(card.heads),
    ...(conversion.notes || []).map((note) => ["conversion note", note]),
    ...(conversion.dropped || []).map((why) => ["left out", why]),
  ]);
}

const HEAD_ROLES = { previous_token: "previous-token heads", induction: "induction heads", first_token: "sink heads" };

/** What the heads do, measured at import (card.heads): how many of each kind, the strongest. */
function headRoles(heads) {
  if (!heads) return [];
  return Object.entries(HEAD_ROLES).map(([key, label]) => {
    const { count, top } = heads[key];
    const strongest = top.map(([l, h, v]) => `L${l} H${h} (${v.toFixed(2)})`).join(", ");
    return [label, `${count}${strongest ? `, strongest ${strongest}` : ""}: ${heads.measured_on}`];
  });
}

// ---------------------------------------------------------------------------------------
async function load() {
  const result = await withStatus(status, "Loading the card…", () => api.modelCard(state.model));
  if (!result) return;
  info = result;
  render();
}

const models = await api.listModels().catch((e) => (showError(e), []));
if (models.length) {
  const fromPath = document.body.dataset.model;
  if (fromPath) state.set({ model: fromPath }, { silent: true });
  if (!state.model || (!fromPath && !models.some((m) => m.id === state.model)))
    state.set({ model: models[0].id }, { silent: true });
  fillSelect(
    $("#model-select"),
    models.map((m) => ({ value: m.id, label: `${m.id} — ${m.title}` })),
    state.model,
  );
  $("#model-select").addEventListener("change", (e) => {
    state.set({ model: e.target.value }, { push: true, silent: true });
    if (window.location.pathname.startsWith("/models/"))
      window.history.replaceState(null, "", `/card${window.location.search}`);
    load();
  });
  state.subscribe(() => {
    $("#model-select").value = state.model;
    load();
  });
  onProjectorChange(() => info && render());
  load();
}

registerExport("arch", {
  filename: () => `attnviz-${state.model}-architecture`,
  svg: () => $("#arch-svg"),
  data: () => info,
});
registerExport("params", {
  filename: () => `attnviz-${state.model}-parameters`,
  plot: () => $("#params"),
  data: () => info && info.card && info.card.parameters,
});
registerExport("loss", {
  filename: () => `attnviz-${state.model}-loss`,
  plot: () => $("#loss"),
  data: () => info && { loss_curve: info.card.loss_curve, metrics: info.card.metrics },
});
