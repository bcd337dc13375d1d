// Decoding player: the server streams decoding steps (SSE); we buffer them and play, pause,
// step and scrub through them. Each step shows the chosen token, the top-k bars, and the
// attention rows that chose it (cross-attention alignment, self-attention triangle).
//
// Long contexts (past 256 tokens, where the server would pool every head's rows): the stream
// is asked for the rows of the layer and head shown only (`layers`, `heads`); another layer or
// head decodes again, with the same seed, to the same step. Rows the server pooled
// (`attention_edges`) are spread back over their tokens as blocks. Past 128 keys the
// heatmaps are canvases (lib/heatmap.js).
//
// Heads can be ablated (lib/ablation.js, the URL's `ablate`): the stream decodes without them
// and its `done` event carries the whole model's decoding, shown before → after. The logit lens
// reads, at the step shown, what every layer would already predict.

import {
  ablateField,
  ablateList,
  ablateSwitch,
  defaultMode,
  forModel,
  renderAblationBar,
  toggled,
} from "../lib/ablation.js";
import * as api from "../lib/api.js";
import { SITE_LABEL } from "../lib/attn.js";
import { modelSites, siteDepth } from "../lib/attnstore.js";
import { setupControls } from "../lib/controls.js";
import { $, $$, clear, el, fillSelect } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import {
  chosenToken,
  drawLens,
  drawTopK,
  eosAt,
  fetchLens,
  firstDisagreement,
  lensBody,
  lensBodyAll,
  lensPerStep,
  matOf,
  stepRow,
} from "../lib/decodepanels.js";
import { beforeAfter } from "../lib/modelsays.js";
import { adaptiveHeatmap } from "../lib/heatmap.js";
import { attentionPickers } from "../lib/pickers.js";
import { bindKeys, clearError, initShell, onProjectorChange, showError } from "../lib/shell.js";
import { bool, int, num, str, urlState } from "../lib/state.js";
import { continuesWord, displayToken, labelTokens } from "../lib/tokens.js";

initShell();
initExports(showError);

const state = urlState({
  model: str(""),
  text: str(""),
  strategy: str("greedy"),
  temperature: num(1),
  top_k: int(0),
  top_p: num(1),
  seed: str(""),
  max_new_tokens: int(32),
  chat: bool(false), // the prompt as a question through the model's chat template
  step: int(-1), // -1: play from the start; n: show n steps, paused
  layer: int(-1), // -1: the last layer
  head: int(-1), // -1: the mean of the heads
  ablate: ablateList(), // heads ablated: site:layer:head:mode,…
});
const save = (patch) => state.set(patch, { silent: true });

const PLAY_MS = 650;
/** Up to this context the server sends every head's full row; past it the player asks for the
 * rows it shows (the server's own default past it is 64 pooled blocks). */
const FULL_ROWS_CONTEXT = 256;
/** Prompts longer than this show their last PROMPT_SHOWN tokens in the output line. */
const PROMPT_SHOWN = 40;
let run = null; // {kind, prompt, steps, done, stream, rows, wanted, seed, marks}
let pos = 0; // steps shown
let playing = false;
// The logit lens after play: the step the user last stepped, slid or clicked to, else the first
// step where the layers disagree (the last step, </s>, is the least instructive).
let played = false; // the steps shown were reached by play, not by the user
let lookedAt = 0; // the step the user last looked at (0: none)
let timer = 0;
let wantOne = false; // a Step press waiting for the next streamed step
let ablateMode = defaultMode(state.ablate); // the mode the next head ablated takes
const ablatePick = { site: "", layer: -1 }; // where the ablation chips are (not in the URL)
const bosOf = new Map(); // model id -> a seq2seq decoder's start id, learnt from the logit lens
const nextLens = api.latestOnly();

const pickers = attentionPickers(state, { meanOfHeads: true, onChange: () => run && renderAttention() });
const align = adaptiveHeatmap($("#align"));
const selfHeat = adaptiveHeatmap($("#self"));

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "seq2seq",
  filter: (m) => (m.kind === "decoder" || m.kind === "seq2seq") && (api.can(m, "generate") || api.can(m, "translate")),
  unfit: (m) =>
    m.kind === "encoder"
      ? `${m.id} is an encoder, not a decoder: it reads a whole sentence at once and generates no text, so ` +
        "there is nothing to decode. Here is a model that generates."
      : `${m.id} has no output head (it was imported without one), so it generates nothing. Here is a model that does.`,
  none: "No model on this server generates text (decoders and translators do).",
  onRun: () => start({ play: true }),
  onModelChange: (m) => (save({ layer: -1, head: -1, step: -1, ablate: [] }), syncChat(m)),
});

/** "Ask it a question" only for models with a chat template (their tasks list `chat`). */
function syncChat(model) {
  const can = api.can(model, "chat");
  $("#chat-field").hidden = !can;
  $("#chat").checked = can && state.chat;
}
syncChat(controls.current());
$("#chat").addEventListener("change", (e) => save({ chat: e.target.checked }));

// ---------------------------------------------------------------------------------------
// sampling controls <-> state
const strategyInputs = $$('input[name="strategy"]');
function syncSamplingInputs() {
  for (const r of strategyInputs) r.checked = r.value === state.strategy;
  $("#temperature").value = String(state.temperature);
  $("#temperature-value").textContent = Number(state.temperature).toFixed(2);
  $("#top-k").value = String(state.top_k);
  $("#top-p").value = String(state.top_p);
  $("#top-p-value").textContent = Number(state.top_p).toFixed(2);
  $("#seed").value = state.seed;
  $("#max-new").value = String(state.max_new_tokens);
  const sample = state.strategy === "sample";
  for (const label of $$(".sample-only")) {
    label.classList.toggle("disabled", !sample);
    for (const input of label.querySelectorAll("input")) input.disabled = !sample;
  }
}
syncSamplingInputs();
for (const r of strategyInputs) r.addEventListener("change", () => (save({ strategy: r.value }), syncSamplingInputs()));
$("#temperature").addEventListener(
  "input",
  (e) => (save({ temperature: Number(e.target.value) }), syncSamplingInputs()),
);
$("#top-p").addEventListener("input", (e) => (save({ top_p: Number(e.target.value) }), syncSamplingInputs()));
$("#top-k").addEventListener("change", (e) => save({ top_k: Math.max(0, Number.parseInt(e.target.value, 10) || 0) }));
$("#seed").addEventListener("change", (e) => save({ seed: e.target.value.trim() }));
$("#max-new").addEventListener("change", (e) =>
  save({ max_new_tokens: Math.max(1, Number.parseInt(e.target.value, 10) || 1) }),
);

/** The stream's parameters; `seed`: the one to decode with (sampling), `rows`: the layers and
 * heads to send rows of (long contexts), or null for every head. */
function params(seed = null, rows = null) {
  const p = { model: state.model, text: state.text, max_new_tokens: state.max_new_tokens, strategy: state.strategy };
  if (state.strategy === "sample") {
    Object.assign(p, { temperature: state.temperature, top_k: state.top_k, top_p: state.top_p });
    if (seed !== null) p.seed = seed;
  }
  if (rows) Object.assign(p, { layers: rows.layers, heads: rows.heads });
  if (state.ablate.length) p.ablate = state.ablate; // site:layer:head:mode, one query value each
  if (state.chat && api.can(controls.current(), "chat")) p.chat = true;
  return p;
}

// ---------------------------------------------------------------------------------------
/** The layers of the site a view shows, for a model (ModelInfo). */
function decoderLayers(model) {
  return model.kind === "seq2seq" ? (model.n_decoder_layers ?? model.n_layers) : model.n_layers;
}

/** The layer and head the pickers show (-1 layer: the last; -1 head: the mean of the heads). */
function shownLayerHead(model) {
  const L = decoderLayers(model);
  const H = model.n_heads;
  return {
    L,
    H,
    layer: state.layer < 0 || state.layer >= L ? L - 1 : state.layer,
    head: state.head >= H ? -1 : state.head,
  };
}

/** The rows a long context asks for: the layer shown, and its head (every head for the mean). */
function rowsWanted(model) {
  const { H, layer, head } = shownLayerHead(model);
  return { layers: [layer], heads: head < 0 ? Array.from({ length: H }, (_, h) => h) : [head] };
}

/**
 * Decode from the start. play: play once steps arrive; showSteps: show that many steps,
 * paused (a link with step=n, or a layer / head switch of a long context decoding again).
 */
async function start({ play = true, showSteps = 0, again = false } = {}) {
  stop();
  if (run && run.stream) run.stream.close();
  clearError();
  const model = controls.current();
  if (!model) return;
  const ablate = forModel(state.ablate, model); // a link may name heads this model lacks
  if (ablate.length !== state.ablate.length) save({ ablate });
  renderAblation(model);
  // the same seed when decoding again for other rows: the same tokens come back
  const seed = again && run ? run.seed : state.seed !== "" ? state.seed : String(Math.floor(Math.random() * 2 ** 31));
  // a seq2seq model without decoder self-attention (the RNN) has only the alignment to show
  const selfAttention = model.kind === "seq2seq" && "decoder.self" in model.sites;
  const mine = {
    kind: model.kind,
    model,
    selfAttention,
    prompt: null,
    steps: [],
    done: null,
    stream: null,
    rows: null,
    seed,
    baseline: null, // under an ablation: the whole model's decoding ({output, stop_reason})
    lens: new Map(), // step -> its logit lens answer
  };
  run = mine;
  pos = 0;
  wantOne = false;
  played = false;
  if (!again) lookedAt = showSteps; // a link's step=n is a step looked at
  const target = showSteps;
  $("#status").textContent = again ? "Decoding again for this layer and head…" : "Decoding…";
  $("#status").classList.add("busy");
  let rows = null;
  try {
    const { tokens } = await api.tokenize(model.id, state.text);
    const context =
      model.kind === "seq2seq"
        ? Math.max(tokens.length, state.max_new_tokens + 1)
        : tokens.length + state.max_new_tokens;
    if (context > FULL_ROWS_CONTEXT) rows = rowsWanted(model);
  } catch (error) {
    if (run !== mine) return;
    $("#status").textContent = "";
    $("#status").classList.remove("busy");
    showError(error);
    return;
  }
  if (run !== mine) return; // a newer start
  mine.wanted = rows;
  mine.stream = api.generateStream(params(seed, rows), {
    onPrompt: (p) => {
      mine.prompt = labelTokens(p.prompt);
      mine.rows = p.rows || null; // absent: the server sent every head's full row
      renderPrompt();
      render();
    },
    onStep: (s) => {
      mine.steps.push(s);
      const before = pos;
      if (wantOne || (target && pos < target)) {
        wantOne = false;
        pos += 1;
      }
      render({ figures: pos !== before || pos === 0 });
    },
    onDone: (d) => {
      mine.done = d;
      mine.baseline = d.ablation ? d.ablation.baseline : null;
      $("#status").textContent = "";
      $("#status").classList.remove("busy");
      render();
    },
    onError: (err) => {
      $("#status").textContent = "";
      $("#status").classList.remove("busy");
      stop();
      showError(err);
    },
  });
  if (play) setPlaying(true);
  render();
}

function setPlaying(on) {
  playing = on;
  if (on) played = true;
  const b = $("#play-button");
  b.setAttribute("aria-pressed", String(on));
  b.textContent = on ? "❚❚ pause" : "▶ play";
  clearInterval(timer);
  if (on) {
    timer = setInterval(() => {
      if (!run) return;
      if (pos < run.steps.length) {
        pos += 1;
        render();
      } else if (run.done) setPlaying(false);
    }, PLAY_MS);
  }
}
function stop() {
  setPlaying(false);
}

function stepForward() {
  played = false;
  if (!run) {
    start({ play: false });
    wantOne = true;
    return;
  }
  stop();
  if (pos < run.steps.length) {
    pos += 1;
    render();
  } else if (!run.done) wantOne = true; // shown as soon as it streams in
}
function stepBack() {
  stop();
  played = false;
  if (run && pos > 0) {
    pos -= 1;
    render();
  }
}
function reset() {
  stop();
  played = false;
  pos = 0;
  render();
}

$("#play-button").addEventListener("click", () => {
  if (!run) return start({ play: true });
  if (!playing && run.done && pos >= run.steps.length) pos = 0; // replay
  setPlaying(!playing);
});
$("#step-button").addEventListener("click", stepForward);
$("#back-button").addEventListener("click", stepBack);
$("#reset-button").addEventListener("click", reset);
$("#step-slider").addEventListener("input", (e) => {
  stop();
  played = false;
  pos = Number(e.target.value);
  render();
});
bindKeys({
  " ": (e) => {
    if (e.target instanceof HTMLButtonElement) return false; // the button's own click
    $("#play-button").click();
    return true;
  },
  ArrowRight: (e) => (e.target instanceof HTMLInputElement ? false : (stepForward(), true)),
  ArrowLeft: (e) => (e.target instanceof HTMLInputElement ? false : (stepBack(), true)),
  Home: () => (reset(), true),
  x: () => {
    const model = controls.current();
    if (!model || !run) return false;
    const { layer, head } = shownLayerHead(model);
    if (head < 0) return false; // the mean of the heads is no head to ablate
    toggleAblation(run.kind === "seq2seq" ? "decoder.cross" : "decoder.self", layer, head);
    return true;
  },
});

// ---------------------------------------------------------------------------------------
const isEos = (i) => eosAt(run, i);
const chosenLabel = (i) => chosenToken(run, i);

/** The prompt / source in the output line, once per decoding; a long one shows its end. */
function renderPrompt() {
  const box = $("#prompt-part");
  clear(box);
  if (!run.prompt || run.kind !== "decoder") return;
  const shown = run.prompt.slice(-PROMPT_SHOWN);
  if (shown.length < run.prompt.length) {
    box.append(
      el("span", {
        class: "out-tok more",
        text: `… ${run.prompt.length - shown.length} tokens`,
        title: "the start of the prompt",
      }),
    );
  }
  for (const t of shown) {
    box.append(
      el("span", {
        class: `out-tok${t.special ? " special" : ""}${t.cont ? " cont" : ""}`,
        text: displayToken(t.text),
        title: "prompt",
      }),
    );
  }
  box.append(el("span", { class: "op", text: "→" }));
}

/** Redraw for the step shown; `figures`: the top-k bars and heatmaps too (not when a step
 * streams in while another one is shown). */
function render({ figures = true } = {}) {
  if (!run) return;
  const n = run.steps.length;
  pos = Math.min(pos, n);
  const slider = $("#step-slider");
  slider.max = String(n);
  slider.value = String(pos);
  $("#step-counter").textContent = `step ${pos} / ${n}${run.done ? "" : "…"}`;
  $("#back-button").disabled = pos === 0;
  save({ step: playing ? -1 : pos });

  // the tokens generated so far
  const line = $("#gen-part");
  clear(line);
  run.steps.forEach((s, i) => {
    const cls = ["out-tok"];
    if (i === pos - 1) cls.push("current");
    if (i >= pos) cls.push("future");
    if (isEos(i)) cls.push("special");
    else if ((i > 0 || run.kind === "decoder") && continuesWord(s.token.text)) cls.push("cont"); // a piece of the word before
    const chip = el("button", {
      type: "button",
      class: cls.join(" "),
      text: isEos(i) ? s.token.text || "</s>" : displayToken(s.token.text),
      title: `step ${i + 1}: p = ${s.prob.toFixed(3)}`,
    });
    chip.addEventListener("click", () => {
      stop();
      played = false;
      pos = i + 1;
      render();
    });
    line.append(chip);
  });

  const final = $("#final-text");
  clear(final);
  if (run.done && pos >= n) {
    final.append(
      el("span", { text: run.kind === "seq2seq" ? "Translation: " : "Output: " }),
      el("strong", { id: "output-text", text: run.done.output.text }),
      el("span", { text: "  " }),
      el("span", {
        class: "stop-reason",
        text: `(stopped: ${run.done.stop_reason === "eos" ? "end of sentence, EOS" : run.done.stop_reason})`,
      }),
      el("span", { text: "  " }),
      el("a", { href: explorerLink(), text: "every head on this output in the explorer →" }),
    );
  }
  renderCompare();
  if (!figures) return;
  renderTopK();
  renderAttention();
  renderLens();
}

// ---------------------------------------------------------------------------------------
// ablation

function toggleAblation(site, layer, head) {
  state.set({ ablate: toggled(state.ablate, site, layer, head, ablateMode) }, { push: true, silent: true });
  renderAblation(controls.current());
  start({ play: false, showSteps: Math.max(pos, 1) }); // decode again, back at the step shown
}

/** The ablation card: a site and layer, a ✂ chip per head, the mode, the heads ablated. */
function renderAblation(model) {
  if (!model) return;
  const sites = modelSites(model);
  const site = sites.includes(ablatePick.site)
    ? ablatePick.site
    : model.kind === "seq2seq" && sites.includes("decoder.cross")
      ? "decoder.cross"
      : sites[sites.length - 1];
  const depth = siteDepth(model, site);
  const layer = ablatePick.layer >= 0 && ablatePick.layer < depth ? ablatePick.layer : shownLayerHead(model).layer;
  Object.assign(ablatePick, { site, layer: Math.min(layer, depth - 1) });
  const siteSelect = $("#ablate-site");
  fillSelect(
    siteSelect,
    sites.map((s) => ({ value: s, label: SITE_LABEL[s] || s })),
    site,
  );
  $("#ablate-site-field").hidden = sites.length < 2;
  fillSelect(
    $("#ablate-layer"),
    Array.from({ length: depth }, (_, l) => ({ value: l, label: String(l) })),
    ablatePick.layer,
  );
  $("#ablate-chips").replaceChildren(
    ...Array.from({ length: model.n_heads }, (_, h) =>
      ablateSwitch({
        site,
        layer: ablatePick.layer,
        head: h,
        list: state.ablate,
        label: `head ${h}`,
        onToggle: toggleAblation,
      }),
    ),
  );
  renderAblationBar($("#ablation-bar"), {
    list: state.ablate,
    mode: ablateMode,
    hint: "Take heads out of the decoding with the ✂ chips below (x: the head the attention panel shows).",
    onChange: (list) => {
      state.set({ ablate: list }, { push: true, silent: true });
      renderAblation(model);
      start({ play: false, showSteps: Math.max(pos, 1) });
    },
    onMode: (m) => (ablateMode = m),
  });
}
$("#ablate-site").addEventListener("change", (e) => {
  ablatePick.site = e.target.value;
  ablatePick.layer = -1;
  renderAblation(controls.current());
});
$("#ablate-layer").addEventListener("change", (e) => {
  ablatePick.layer = Number(e.target.value);
  renderAblation(controls.current());
});

/** Under an ablation: the step's token beside the whole model's at the same step, and the output. */
function renderCompare() {
  const box = $("#step-compare");
  if (!run || !state.ablate.length || pos === 0) return box.replaceChildren();
  const s = run.steps[pos - 1];
  if (!run.baseline) {
    return box.replaceChildren(
      el("p", {
        class: "plot-note",
        text: "✂ Decoding with heads ablated; the whole model's decoding arrives at the end.",
      }),
    );
  }
  const base = run.baseline.output.tokens[pos - 1];
  const label = (t) => (t ? `“${t.text}”` : "(had stopped)");
  box.replaceChildren(
    beforeAfter(`✂ step ${pos}, next token (whole model → ablated)`, label(base), label(s.token), {
      same: Boolean(base) && base.id === s.token.id,
    }),
    ...(pos === run.steps.length && run.done
      ? [beforeAfter(run.kind === "seq2seq" ? "translation" : "output", run.baseline.output.text, run.done.output.text)]
      : []),
  );
}

// ---------------------------------------------------------------------------------------
// the logit lens

async function lensAt(mine, at, signal) {
  if (mine.lens.has(at)) return mine.lens.get(at);
  const model = mine.model;
  const opts = { text: state.text, bos: bosOf.get(model.id), ablate: ablateField(state.ablate) };
  if (mine.kind === "seq2seq" && opts.bos === undefined && at > 1) {
    const first = await fetchLens(lensBody(mine, 1, opts), { signal }); // learns `<s>`
    opts.bos = first.tokens.target[0].id;
  }
  const answer = await fetchLens(lensBody(mine, at, opts), { signal });
  if (mine.kind === "seq2seq") bosOf.set(model.id, answer.tokens.target[0].id);
  mine.lens.set(at, answer);
  return answer;
}

/**
 * The step the lens reads, and why when it is not the step shown: the step shown when the user
 * got there; after play, the step the user last looked at, else (once decoding is done) the
 * first step where a block disagrees with the output (one request reads every step).
 */
async function lensStep(mine, signal) {
  if (!played) return { at: pos, why: "" };
  if (lookedAt > 0 && lookedAt <= pos) {
    return { at: lookedAt, why: `Step ${lookedAt}, the step you last looked at: step through to read another.` };
  }
  if (!mine.done || pos < mine.steps.length) return { at: pos, why: "" };
  if (!mine.lensAll) {
    const opts = { text: state.text, bos: bosOf.get(mine.model.id), ablate: ablateField(state.ablate) };
    if (mine.kind === "seq2seq" && opts.bos === undefined)
      opts.bos = (await lensAt(mine, 1, signal)).tokens.target[0].id;
    const perStep = lensPerStep(await fetchLens(lensBodyAll(mine, opts), { signal }));
    perStep.forEach((lens, i) => mine.lens.set(i + 1, lens));
    mine.lensAll = firstDisagreement(perStep);
  }
  return mine.lensAll > 0
    ? {
        at: mine.lensAll,
        why: `Step ${mine.lensAll}: the first step where a block before the output predicts another token. Step through to read another.`,
      }
    : { at: 1, why: "Every block already predicts the output's token at every step: step 1 shown." };
}

let lensShown = null; // {pos, table} of the lens on the page
async function renderLens() {
  const box = $("#lens");
  const note = $("#lens-note");
  lensShown = null;
  if (!run || pos === 0 || !run.prompt) {
    box.replaceChildren();
    note.textContent = "Step through the decoding to read what each layer would predict.";
    return;
  }
  if (run.model.architecture === "rnn") {
    box.replaceChildren();
    note.textContent =
      `The logit lens reads a transformer's residual stream after each block; ${run.model.id} is an RNN ` +
      "(one recurrent cell, no blocks and no residual stream), so there is nothing to read layer by layer.";
    return;
  }
  const mine = run;
  const shownPos = pos;
  const signal = nextLens();
  box.setAttribute("aria-busy", "true");
  try {
    if (!played) lookedAt = pos;
    const { at, why } = await lensStep(mine, signal);
    const lens = await lensAt(mine, at, signal);
    if (run !== mine || pos !== shownPos) return;
    const table = drawLens(box, lens, mine, at);
    lensShown = { pos: at, table };
    note.textContent = [
      why,
      state.strategy === "sample"
        ? "Sampling: the token drawn at this step may differ from the model's own top prediction (★)."
        : "",
    ]
      .filter(Boolean)
      .join(" ");
  } catch (error) {
    if (error && error.name === "AbortError") return;
    if (error && error.code === "unsupported_task") note.textContent = error.message;
    else showError(error);
  } finally {
    box.removeAttribute("aria-busy");
  }
}

function explorerLink() {
  const q = new URLSearchParams({ model: state.model });
  if (run.kind === "seq2seq") {
    q.set("text", state.text);
    q.set("target", run.done.output.text);
  } else q.set("text", `${state.text}${run.done.output.text}`);
  return `/?${q}`;
}

function renderTopK() {
  const div = $("#topk");
  const empty = $("#topk-empty");
  const none = !run || pos === 0;
  empty.hidden = !none;
  div.hidden = none;
  if (none) {
    empty.textContent =
      run && run.steps.length
        ? "Press step ▶ or play to see step 1."
        : run
          ? "Waiting for the first step…"
          : "Press Generate, then play or step ▶.";
    return;
  }
  drawTopK(div, run, pos);
}

function renderAttention() {
  const seq2seq = run.kind === "seq2seq";
  $("#align-title").textContent = seq2seq ? "Cross-attention alignment" : "Attention over the prompt";
  $("#align-sub").textContent = seq2seq
    ? "Row t: where the query that chose French token t looked in the English source. It grows one row per step."
    : "Row t: where the query that chose token t looked, over the prompt and the tokens so far.";
  $("#self-panel").hidden = !run.selfAttention;
  if (!run.steps.length || pos === 0 || !run.prompt) {
    clear($("#align"));
    clear($("#self"));
    return;
  }
  const site = seq2seq ? "decoder.cross" : "decoder.self";
  const { L, H, layer, head } = shownLayerHead(run.model);
  pickers.fill({ layers: L, heads: H, layer, head, save: false });
  const shown = run.steps.slice(0, pos);
  const rows = shown.map((s) => stepRow(s, run.rows, site, layer, head, H));
  if (rows.some((r) => r === null)) {
    // a long context's stream carries the rows of one layer and head: decode again for these
    // (once per choice: rows asked for and still missing are not asked again)
    if (run.wanted && JSON.stringify(run.wanted) !== JSON.stringify(rowsWanted(run.model))) {
      start({ play: false, showSteps: pos, again: true });
    }
    return;
  }
  const rowTokens = shown.map((_, i) => chosenLabel(i));
  const headLabel = head < 0 ? "mean of heads" : `head ${head}`;
  const height = Math.max(260, Math.min(620, pos * 30 + 170));
  if (seq2seq) {
    const cols = run.prompt.map((t, i) => ({ ...t, index: i }));
    align.draw(matOf(rows, cols.length), {
      rows: rowTokens,
      cols,
      title: `layer ${layer} · ${headLabel}`,
      zmin: 0,
      zmax: 1,
      rowTitle: "French token chosen",
      colTitle: "English token",
      yLabel: "French (chosen at step t)",
      xLabel: "English source (key)",
      height,
      maxHeight: 620,
    });
    if (!run.selfAttention) return;
    // decoder self-attention: <s> + generated tokens as keys
    const keys = [
      { text: "<s>", special: true, index: 0 },
      ...run.steps.map((_, i) => ({ ...chosenLabel(i), index: i + 1 })),
    ];
    const selfRows = shown.map((s) => stepRow(s, run.rows, "decoder.self", layer, head, H) || []);
    selfHeat.draw(matOf(selfRows, pos), {
      rows: rowTokens,
      cols: keys.slice(0, pos),
      title: `layer ${layer} · ${headLabel} · grey = not yet generated (masked)`,
      zmin: 0,
      zmax: 1,
      rowTitle: "chosen token",
      colTitle: "key",
      yLabel: "query (chose this token)",
      xLabel: "decoder input so far",
      height,
      maxHeight: 620,
    });
  } else {
    const prompt = run.prompt.map((t, i) => ({ ...t, index: i }));
    const keys = [...prompt, ...run.steps.map((_, i) => ({ ...chosenLabel(i), index: prompt.length + i }))];
    const width = prompt.length + pos - 1;
    align.draw(matOf(rows, width), {
      rows: rowTokens,
      cols: keys.slice(0, width),
      title: `layer ${layer} · ${headLabel}`,
      zmin: 0,
      zmax: 1,
      rowTitle: "token chosen",
      colTitle: "key",
      yLabel: "chosen at step t",
      xLabel: "prompt and tokens so far (key)",
      height,
      maxHeight: 620,
    });
  }
}

onProjectorChange(() => render());
state.subscribe((changed) => {
  if (changed.includes("ablate")) ablateMode = defaultMode(state.ablate);
  if (changed.some((k) => ["model", "text", "ablate"].includes(k))) start({ play: true });
  else if (changed.includes("step") && run) {
    stop();
    pos = Math.max(0, state.step);
    render();
  }
});

const exportData = () => ({
  model: state.model,
  text: state.text,
  sampling: params(run && run.seed),
  prompt: run && run.prompt,
  steps: run ? run.steps.slice(0, pos) : [],
  output: run && run.done ? run.done.output : null,
  stop_reason: run && run.done ? run.done.stop_reason : null,
  ablate: ablateField(state.ablate) || [],
  baseline: run && run.baseline,
});
registerExport("topk", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-topk`,
  plot: () => $("#topk"),
  data: exportData,
});
registerExport("align", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-attention`,
  figure: () => align.canvas,
  plot: () => $("#align"),
  data: exportData,
});
registerExport("lens", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-logit-lens`,
  data: () => ({
    model: state.model,
    text: state.text,
    step: lensShown && lensShown.pos,
    ablate: ablateField(state.ablate) || [],
    lens: lensShown && run.lens.get(lensShown.pos),
    rows: lensShown && lensShown.table.rows,
  }),
});
registerExport("self", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-self`,
  figure: () => selfHeat.canvas,
  plot: () => $("#self"),
  data: exportData,
});

// A link with step=n reopens paused at step n; without it, decoding plays from the start.
renderAblation(controls.current());
if (state.text) {
  if (state.step >= 0) start({ play: false, showSteps: state.step });
  else start({ play: true });
}
