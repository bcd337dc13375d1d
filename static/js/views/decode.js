// Decoding player: the server streams decoding steps (SSE); we buffer them and play, pause,
// step and scrub through them. Each step shows the chosen token, the top-k bars, and the
// attention rows that chose it (cross-attention alignment, self-attention triangle).

import * as api from "../lib/api.js";
import { meanHeads } from "../lib/attn.js";
import { setupControls } from "../lib/controls.js";
import { $, $$, clear, el } from "../lib/dom.js";
import { continuesWord, displayToken } from "../lib/tokens.js";
import { initExports, registerExport } from "../lib/export.js";
import { attentionPickers } from "../lib/pickers.js";
import { plotlyText, react, tokenHeatmap } from "../lib/plots.js";
import { bindKeys, clearError, initShell, onProjectorChange, showError } from "../lib/shell.js";
import { int, num, str, urlState } from "../lib/state.js";

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
  step: int(-1), // -1: play from the start; n: show n steps, paused
  layer: int(-1), // -1: the last layer
  head: int(-1), // -1: the mean of the heads
});
const save = (patch) => state.set(patch, { silent: true });

const PLAY_MS = 650;
let run = null; // {prompt, steps, done, stream, kind}
let pos = 0; // steps shown
let playing = false;
let timer = 0;
let wantOne = false; // a Step press waiting for the next streamed step

const pickers = attentionPickers(state, { meanOfHeads: true, onChange: () => run && renderAttention() });

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "seq2seq",
  filter: (m) => m.kind === "decoder" || m.kind === "seq2seq",
  onRun: () => start({ play: true }),
  onModelChange: () => save({ layer: -1, head: -1, step: -1 }),
});

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

function params() {
  const p = { model: state.model, text: state.text, max_new_tokens: state.max_new_tokens, strategy: state.strategy };
  if (state.strategy === "sample") {
    Object.assign(p, { temperature: state.temperature, top_k: state.top_k, top_p: state.top_p });
    if (state.seed !== "") p.seed = state.seed;
  }
  return p;
}

// ---------------------------------------------------------------------------------------
function start({ play = true, showSteps = 0 } = {}) {
  stop();
  if (run && run.stream) run.stream.close();
  clearError();
  const model = controls.current();
  if (!model) return;
  run = { kind: model.kind, prompt: null, steps: [], done: null, stream: null };
  pos = 0;
  wantOne = false;
  const target = showSteps;
  $("#status").textContent = "Decoding…";
  $("#status").classList.add("busy");
  run.stream = api.generateStream(params(), {
    onPrompt: (p) => {
      run.prompt = p.prompt;
      render();
    },
    onStep: (s) => {
      run.steps.push(s);
      if (wantOne || (target && pos < target)) {
        wantOne = false;
        pos += 1;
      }
      render();
    },
    onDone: (d) => {
      run.done = d;
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
  if (run && pos > 0) {
    pos -= 1;
    render();
  }
}
function reset() {
  stop();
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
});

// ---------------------------------------------------------------------------------------
const isEos = (i) => run.done && run.done.stop_reason === "eos" && i === run.steps.length - 1;

function chosenLabel(i) {
  const s = run.steps[i];
  return { text: isEos(i) ? s.token.text || "</s>" : s.token.text, special: isEos(i), index: i };
}

function render() {
  if (!run) return;
  const n = run.steps.length;
  pos = Math.min(pos, n);
  const slider = $("#step-slider");
  slider.max = String(n);
  slider.value = String(pos);
  $("#step-counter").textContent = `step ${pos} / ${n}${run.done ? "" : "…"}`;
  $("#back-button").disabled = pos === 0;
  save({ step: playing ? -1 : pos });

  // the tokens so far
  const line = $("#output-line");
  clear(line);
  if (run.prompt && run.kind === "decoder") {
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
    if (isEos(i)) cls.push("special");
    else if (i > 0 && continuesWord(s.token.text)) cls.push("cont"); // a piece of the previous word
    const chip = el("button", {
      type: "button",
      class: cls.join(" "),
      text: displayToken(chosenLabel(i).text),
      title: `step ${i + 1}: p = ${s.prob.toFixed(3)}`,
    });
    chip.addEventListener("click", () => {
      stop();
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
  renderTopK();
  renderAttention();
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
  const s = run.steps[pos - 1];
  const top = [...s.top].reverse();
  const labels = top.map((c) => plotlyText(displayToken(c.text)));
  const chosen = plotlyText(displayToken(chosenLabel(pos - 1).text));
  react(
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
        customdata: labels,
        hovertemplate: "%{customdata}: p = %{x:.4f}<extra></extra>",
      },
    ],
    {
      height: Math.max(220, 46 * top.length + 70),
      margin: { l: 110, r: 50, t: 34, b: 40 },
      title: {
        text: `step ${pos}: chose “${chosen}” (p = ${s.prob.toFixed(3)})`,
        x: 0,
        xanchor: "left",
      },
      xaxis: { range: [0, 1.08], title: { text: "probability" }, gridcolor: "#eceef2" },
      yaxis: {
        tickmode: "array",
        tickvals: top.map((_, i) => i),
        ticktext: labels,
        tickfont: { family: "ui-monospace, monospace" },
      },
    },
  );
}

function layerHead(site) {
  const first = run.steps[0].attention[site];
  const L = first.length;
  const H = first[0].length;
  const layer = state.layer < 0 || state.layer >= L ? L - 1 : state.layer;
  const head = state.head >= H ? -1 : state.head;
  return { L, H, layer, head };
}

function row(step, site, layer, head) {
  const heads = step.attention[site][layer];
  return head < 0 ? meanHeads(heads.map((h) => [h]))[0] : heads[head];
}

function renderAttention() {
  const seq2seq = run.kind === "seq2seq";
  $("#align-title").textContent = seq2seq ? "Cross-attention alignment" : "Attention over the prompt";
  $("#align-sub").textContent = seq2seq
    ? "Row t: where the query that chose French token t looked in the English source. It grows one row per step."
    : "Row t: where the query that chose token t looked, over the prompt and the tokens so far.";
  $("#self-panel").hidden = !seq2seq;
  const alignDiv = $("#align");
  if (!run.steps.length || pos === 0 || !run.prompt) {
    clear(alignDiv);
    clear($("#self"));
    return;
  }
  const site = seq2seq ? "decoder.cross" : "decoder.self";
  const { L, H, layer, head } = layerHead(site);
  pickers.fill({ layers: L, heads: H, layer, head, save: false });
  const rows = run.steps.slice(0, pos).map((_, i) => chosenLabel(i));
  const headLabel = head < 0 ? "mean of heads" : `head ${head}`;
  if (seq2seq) {
    const cols = run.prompt.map((t, i) => ({ ...t, index: i }));
    const z = run.steps.slice(0, pos).map((s) => row(s, site, layer, head));
    tokenHeatmap(alignDiv, z, {
      rows,
      cols,
      title: `layer ${layer} · ${headLabel}`,
      zmin: 0,
      zmax: 1,
      rowTitle: "French token chosen",
      colTitle: "English token",
      yLabel: "French (chosen at step t)",
      xLabel: "English source (key)",
      height: Math.max(260, Math.min(620, pos * 30 + 170)),
    });
    // decoder self-attention: <s> + generated tokens as keys
    const keys = [
      { text: "<s>", special: true, index: 0 },
      ...run.steps.map((_, i) => ({ ...chosenLabel(i), index: i + 1 })),
    ];
    const self = run.steps.slice(0, pos).map((s) => {
      const r = row(s, "decoder.self", layer, head);
      return keys.slice(0, pos).map((_, j) => (j < r.length ? r[j] : null));
    });
    tokenHeatmap($("#self"), self, {
      rows,
      cols: keys.slice(0, pos),
      title: `layer ${layer} · ${headLabel} · grey = not yet generated (masked)`,
      zmin: 0,
      zmax: 1,
      rowTitle: "chosen token",
      colTitle: "key",
      yLabel: "query (chose this token)",
      xLabel: "decoder input so far",
      height: Math.max(260, Math.min(620, pos * 30 + 170)),
    });
  } else {
    const prompt = run.prompt.map((t, i) => ({ ...t, index: i }));
    const keys = [...prompt, ...run.steps.map((_, i) => ({ ...chosenLabel(i), index: prompt.length + i }))];
    const width = prompt.length + pos - 1;
    const z = run.steps.slice(0, pos).map((s) => {
      const r = row(s, site, layer, head);
      return keys.slice(0, width).map((_, j) => (j < r.length ? r[j] : null));
    });
    tokenHeatmap(alignDiv, z, {
      rows,
      cols: keys.slice(0, width),
      title: `layer ${layer} · ${headLabel}`,
      zmin: 0,
      zmax: 1,
      rowTitle: "token chosen",
      colTitle: "key",
      yLabel: "chosen at step t",
      xLabel: "prompt and tokens so far (key)",
      height: Math.max(260, Math.min(620, pos * 30 + 170)),
    });
  }
}

onProjectorChange(() => render());
state.subscribe((changed) => {
  if (changed.some((k) => ["model", "text"].includes(k))) start({ play: true });
  else if (changed.includes("step") && run) {
    stop();
    pos = Math.max(0, state.step);
    render();
  }
});

const exportData = () => ({
  model: state.model,
  text: state.text,
  sampling: params(),
  prompt: run && run.prompt,
  steps: run ? run.steps.slice(0, pos) : [],
  output: run && run.done ? run.done.output : null,
  stop_reason: run && run.done ? run.done.stop_reason : null,
});
registerExport("topk", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-topk`,
  plot: () => $("#topk"),
  data: exportData,
});
registerExport("align", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-attention`,
  plot: () => $("#align"),
  data: exportData,
});
registerExport("self", {
  filename: () => `attnviz-${state.model}-decode-step${pos}-self`,
  plot: () => $("#self"),
  data: exportData,
});

// A link with step=n reopens paused at step n; without it, decoding plays from the start.
if (state.text) {
  if (state.step >= 0) start({ play: false, showSteps: state.step });
  else start({ play: true });
}
