// Activation patching (POST /patch): two inputs, the differing tokens marked; the metric's
// answer and wrong token picked from the model's own top-k (POST /logit-lens); layers ×
// positions and layers × heads maps of the effect on a diverging scale centred on 0; a cell
// clicked opens that layer or head in the explorer; presets whose explanation is written from
// the measured result.

import * as api from "../lib/api.js";
import { SITE_ORDER } from "../lib/attn.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, clear, el, fillSelect, fmt } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { explorerHref, headName, siteLabel } from "../lib/headscores.js";
import { effectHeatmap } from "../lib/patchmaps.js";
import { purge } from "../lib/plots.js";
import { progressMeter, progressText } from "../lib/progress.js";
import { bindKeys, clearError, initShell, onProjectorChange, showError, withProgress } from "../lib/shell.js";
import { int, str, urlState } from "../lib/state.js";
import { candidateLabel, labelTokens, tokenLabel } from "../lib/tokens.js";
import { renderTokenStrip } from "../lib/tokenstrip.js";

initShell();
initExports(showError);

const POSITION_SITES = ["resid_pre", "attn_out", "cross_out", "mlp_out"];
const HEAD_SITES = ["head_z", "head_pattern"];
const SITES = [...POSITION_SITES, ...HEAD_SITES, "memory"];
const METRIC_NAME = { logit_diff: "logit(answer) − logit(wrong)", logprob: "log p(answer)" };

const state = urlState({
  ...INPUT_STATE, // model, text (the clean input), target
  corrupted: str(""),
  preset: str(""), // "induction": a repeated random run drawn from `seed`, not the text boxes
  seed: int(7),
  kind: str("logit_diff"),
  read: str("vocab"), // vocab | classifier (an encoder's [CLS] head)
  answer: str(""), // "": the clean input's top token; digits: an id; else a token (or label)
  wrong: str(""), // "": the corrupted input's top token
  position: str(""), // "": the family's default
  method: str("exact"),
  stack: str(""),
  site: str(""),
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
const nextRequest = api.latestOnly();
const RUN_KEYS = [
  "model",
  "text",
  "target",
  "corrupted",
  "preset",
  "seed",
  "kind",
  "read",
  "answer",
  "wrong",
  "position",
  "method",
];

let data = null; // the /patch answer shown
let shownFor = null; // {model, input: {text, target}} of that answer, for the explorer's links
let cells = []; // every cell drawn: {site, group, layer, index, value}

/** The presets of this view, per model: each an experiment its explanation is measured for. */
const EXPERIMENTS = {
  "induction-2l": {
    label: "a repeated random run, its first copy corrupted",
    patch: { preset: "induction", kind: "logit_diff", read: "vocab", answer: "", wrong: "", position: "" },
  },
  "seq2seq-en-fr": {
    label: "a colour swapped: black → white",
    patch: {
      preset: "",
      text: "the black cat ate the mouse",
      corrupted: "the white cat ate the mouse",
      target: "le chat noir a mangé la souris",
      kind: "logit_diff",
      read: "vocab",
      answer: "noir",
      wrong: "blanc",
      position: "2",
    },
  },
  "encoder-mini": {
    label: "negation: not good → very good",
    patch: {
      preset: "",
      text: "the movie was not good",
      corrupted: "the movie was very good",
      kind: "logit_diff",
      read: "classifier",
      answer: "negative",
      wrong: "positive",
      position: "",
    },
  },
  "decoder-mini": {
    label: "a colour swapped: black → white",
    patch: {
      preset: "",
      text: "the black cat ate the",
      corrupted: "the white cat ate the",
      kind: "logit_diff",
      read: "vocab",
      answer: "",
      wrong: "",
      position: "",
    },
  },
};

const controls = await setupControls(state, {
  filter: (m) => m.tasks && m.tasks.length > 1, // a model with an output head to read
  prefer: (m) => m.id === "induction-2l",
  unfit: (m) => `${m.id} has no output head (it was imported for its attention only): nothing to read a metric from.`,
  allowTarget: true,
  onRun: () => {
    save({ preset: "", answer: "", wrong: "" });
    run();
  },
  onModelChange: (model) => {
    save({ stack: "", site: "", corrupted: "", answer: "", wrong: "", position: "", preset: "", read: "vocab" });
    const experiment = EXPERIMENTS[model.id];
    if (experiment) save(experiment.patch);
  },
});

// ---------------------------------------------------------------------------------------
// the two inputs
/** mulberry32: a small seeded generator, so a seed in the URL redraws the same run. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The induction preset: BOS + a run of 12 random tokens + the run again without its last
 * token; corrupted: the first copy replaced by another random run. The answer is the run's last
 * token (what an induction head copies), the wrong one the other run's. */
async function inductionInputs(model) {
  const first = (await api.tokenize(model.id, "a")).tokens[0];
  const bos = first && first.special ? [first.id] : [];
  const random = seeded(state.seed);
  const low = Math.max(2, Math.floor(model.vocab_size / 2));
  const drawn = new Set();
  const draw = () => {
    let id;
    // the upper half of a BPE vocabulary holds merged pieces (words), the lower its bytes
    do id = low + Math.floor(random() * (model.vocab_size - low));
    while (drawn.has(id));
    drawn.add(id);
    return id;
  };
  const run = Array.from({ length: 12 }, draw);
  const other = Array.from({ length: 12 }, draw);
  return {
    clean: { token_ids: [...bos, ...run, ...run.slice(0, -1)] },
    corrupted: { token_ids: [...bos, ...other, ...run.slice(0, -1)] },
    answer: run.at(-1),
    wrong: other.at(-1),
  };
}

async function inputsOf(model) {
  if (state.preset === "induction") return inductionInputs(model);
  const clean = { text: state.text };
  if (model.kind === "seq2seq" && state.target) clean.target = state.target;
  return { clean, corrupted: { text: state.corrupted || state.text } };
}

const tokenChoice = (value) => (/^\d+$/.test(value) ? Number(value) : value);

// ---------------------------------------------------------------------------------------
// the metric: its answer and wrong token picked from the model's own top-k at the position read
// (the answer's metric.top; with none given, the server takes the top tokens)
function fillMetricControls(model) {
  $("#kind-select").value = state.kind;
  $("#method-select").value = state.method;
  $("#head-field").hidden = !(model.labels && model.labels.length);
  $("#head-read-select").value = state.read;
  $("#wrong-field").hidden = state.kind !== "logit_diff";
}

function fillCandidateSelects(metric) {
  const seen = new Map();
  for (const [name, list] of Object.entries(metric.top)) {
    for (const c of list) {
      const entry = seen.get(c.id) || { id: c.id, text: c.text, probs: {} };
      entry.probs[name] = c.prob;
      seen.set(c.id, entry);
    }
  }
  for (const t of [metric.answer, metric.wrong]) if (t && !seen.has(t.id)) seen.set(t.id, { ...t, probs: {} });
  const options = [...seen.values()].map((c) => {
    const probs = Object.entries(c.probs).map(([name, p]) => `${name} ${fmt(p, 2)}`);
    const label = metric.head === "classifier" ? c.text : candidateLabel(c);
    return { value: String(c.id), label: `${label}${probs.length ? ` (${probs.join(", ")})` : ""}` };
  });
  fillSelect($("#answer-select"), options, String(metric.answer.id));
  fillSelect($("#wrong-select"), options, metric.wrong ? String(metric.wrong.id) : options[0] && options[0].value);
}

function fillPositionSelect(tokens, position) {
  const options = [
    { value: "", label: "default" },
    ...tokens.map((t, i) => ({ value: String(i), label: `${i}: ${tokenLabel(t)}` })),
  ];
  fillSelect($("#position-select"), options, state.position === "" ? "" : String(position));
}

// ---------------------------------------------------------------------------------------
// one experiment
async function run() {
  const model = controls.current();
  if (!model) return;
  fillMetricControls(model);
  renderExperiments(model);
  if (!state.corrupted && state.preset !== "induction") {
    status.textContent = "Type a corrupted input (as many tokens as the clean one) and press Patch.";
    $("#corrupted-input").value = "";
    return;
  }
  $("#corrupted-input").value = state.preset === "induction" ? "" : state.corrupted;
  $("#corrupted-input").placeholder = state.preset === "induction" ? "random tokens (the preset)" : "";
  const signal = nextRequest();
  const started = performance.now();
  const meter = progressMeter($("#patch-progress"), {
    label: "Patching sweep",
    describe: (event) => progressText("Patching every activation", event, "batches"),
  });
  const answer = await withProgress(status, "Patching every activation…", async () => {
    const inputs = await inputsOf(model);
    const metric = { kind: state.kind, head: state.read };
    if (state.position !== "") metric.position = Number(state.position);
    const answer = state.answer ? tokenChoice(state.answer) : inputs.answer;
    const wrong = state.wrong ? tokenChoice(state.wrong) : inputs.wrong;
    if (answer !== undefined) metric.answer = answer;
    if (wrong !== undefined && state.kind === "logit_diff") metric.wrong = wrong;
    const body = { model: model.id, clean: inputs.clean, corrupted: inputs.corrupted, metric, method: state.method };
    const onProgress = meter.update;
    return { result: await api.patchStream(body, { signal, onProgress }), inputs };
  }).finally(() => meter.remove());
  if (signal.aborted || !answer) return;
  data = answer.result;
  shownFor = { model, inputs: answer.inputs };
  save({
    answer: String(data.metric.answer.id),
    ...(data.metric.wrong ? { wrong: String(data.metric.wrong.id) } : {}),
  });
  status.textContent = `${countCells()} cells patched in ${((performance.now() - started) / 1000).toFixed(1)} s${
    data.approximation ? " (attribution: an approximation)" : ""
  }.`;
  fillCandidateSelects(data.metric);
  const predicted = data.tokens.clean.target || data.tokens.clean.source;
  fillPositionSelect(predicted, data.metric.position);
  render();
}

function countCells() {
  let n = 0;
  for (const groups of Object.values(data.effects)) {
    if (!groups) continue;
    for (const grid of Object.values(groups)) n += grid.length * (grid[0] ? grid[0].length : 0);
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// drawing
const differing = () => new Set(data.differing);

function renderTokens() {
  const marked = differing();
  const rows = [
    ["clean", labelTokens(data.tokens.clean.source), marked],
    ["corrupted", labelTokens(data.tokens.corrupted.source), marked],
  ];
  if (data.tokens.clean.target)
    rows.push(["target (both)", labelTokens(data.tokens.clean.target), new Set([data.metric.position])]);
  renderTokenStrip($("#tokens"), rows);
  const m = data.metric;
  const wrong = m.wrong ? ` − ${m.kind === "logit_diff" ? "logit" : ""}(${candidateLabel(m.wrong)})` : "";
  $("#metric-summary").textContent =
    `${METRIC_NAME[m.kind]} at position ${m.position}: answer ${candidateLabel(m.answer)}${wrong}; ` +
    `clean ${fmt(m.clean, 3)}, corrupted ${fmt(m.corrupted, 3)}`;
}

/** The column labels of a stack's positions: a differing token shows as clean→corrupted. */
function columnsOf(stack) {
  const seq2seqDecoder = stack === "decoder" && data.tokens.clean.target;
  const clean = labelTokens(seq2seqDecoder ? data.tokens.clean.target : data.tokens.clean.source);
  if (seq2seqDecoder) return clean.map(tokenLabel);
  const corrupted = labelTokens(data.tokens.corrupted.source);
  const marked = differing();
  return clean.map((t, i) => (marked.has(i) ? `${tokenLabel(t)}→${tokenLabel(corrupted[i])}` : tokenLabel(t)));
}

const stacksOf = () => {
  const found = new Set();
  for (const site of POSITION_SITES) for (const g of Object.keys(data.effects[site] || {})) found.add(g);
  return ["encoder", "decoder"].filter((s) => found.has(s));
};
const headSitesOf = () => SITE_ORDER.filter((s) => HEAD_SITES.some((h) => data.effects[h] && data.effects[h][s]));

/** Each map in its own task (a real LLM's 30 layers × 480 positions are a few hundred ms of
 * Plotly a map); a newer render stops an older one between maps. */
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
let renders = 0;

async function render() {
  if (!data) return;
  const mine = ++renders;
  renderTokens();
  const stacks = stacksOf();
  const stack = stacks.includes(state.stack) ? state.stack : stacks.at(-1);
  fillSelect(
    $("#stack-select"),
    stacks.map((s) => ({ value: s, label: s })),
    stack,
  );
  $("#stack-field").hidden = stacks.length < 2;
  const sites = headSitesOf();
  const site = sites.includes(state.site) ? state.site : sites.at(-1);
  fillSelect(
    $("#site-select"),
    sites.map((s) => ({ value: s, label: siteLabel(s) })),
    site,
  );
  $("#site-field").hidden = sites.length < 2;
  cells = [];
  const value = data.raw ? "m(patched)" : "effect";
  for (const name of SITES) {
    const div = $(`#${name}`);
    const note = $(`#${name}-note`);
    const group = HEAD_SITES.includes(name) ? site : name === "memory" ? "encoder" : stack;
    const groups = data.effects[name];
    const grid = groups && groups[group];
    let why = "";
    if (!groups) why = data.reasons[name] || `${name} does not apply to this model.`;
    else if (!grid) why = `${name} has nothing at the ${group}: ${Object.keys(groups).join(", ")} only.`;
    note.textContent = why || data.definitions[name] || "";
    note.classList.toggle("missing", Boolean(why));
    div.closest(".panel").classList.toggle("is-empty", Boolean(why));
    if (why) {
      purge(div);
      div.hidden = true;
      continue;
    }
    div.hidden = false;
    if (grid[0] && grid[0].length > 64) {
      await nextTask(); // a long input's map: its own task
      if (mine !== renders) return;
    }
    const heads = HEAD_SITES.includes(name);
    const columns = heads ? grid[0].map((_, h) => `H${h}`) : columnsOf(name === "memory" ? "encoder" : stack);
    grid.forEach((row, layer) => row.forEach((v, index) => cells.push({ site: name, group, layer, index, value: v })));
    effectHeatmap(div, grid, {
      columns,
      columnTitle: heads ? "head" : "position",
      value,
      rowLabel: name === "memory" ? () => "encoder out" : (l) => `layer ${l}`,
      onPick: (layer, index) => open(name, group, layer, index),
    }).catch(showError);
  }
  renderTopCells();
  $("#explain").textContent = explain(stack, site);
}

// ---------------------------------------------------------------------------------------
// the explorer: the layer or head of a cell, on the clean input
function cleanText() {
  const { inputs } = shownFor;
  if (inputs.clean.text) return inputs.clean.text;
  return data.tokens.clean.source
    .filter((t) => !t.special)
    .map((t) => t.text)
    .join("");
}

function hrefOf(name, group, layer, index) {
  const { model } = shownFor;
  let site;
  let head = 0;
  if (HEAD_SITES.includes(name)) {
    site = group;
    head = index;
  } else if (name === "memory") {
    site = "decoder.cross";
    layer = 0;
  } else if (name === "cross_out") site = "decoder.cross";
  else site = `${group}.self`;
  if (!(site in (model.sites || {}))) site = Object.keys(model.sites || {})[0];
  const target = data.tokens.clean.target && shownFor.inputs.clean.target;
  const href = explorerHref(model, { text: cleanText(), target }, { site, layer, head });
  // the corrupted input as the explorer's second input (B): the head on both, and A − B
  const corrupted = shownFor.inputs.corrupted.text;
  return corrupted ? `${href}&${new URLSearchParams({ compare: corrupted })}` : href;
}

function open(name, group, layer, index) {
  window.location.assign(hrefOf(name, group, layer, index));
}

function cellName({ site, group, layer, index }) {
  if (HEAD_SITES.includes(site)) return `${site} ${siteLabel(group)} ${headName(layer, index)}`;
  const columns = columnsOf(site === "memory" ? "encoder" : group);
  return site === "memory"
    ? `memory at ${index} (${columns[index]})`
    : `${site} ${group} layer ${layer} at ${index} (${columns[index]})`;
}

function renderTopCells() {
  const list = $("#top-cells");
  clear(list);
  const top = cells.filter((c) => c.value !== null).sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  for (const c of top.slice(0, 8)) {
    list.append(
      el(
        "li",
        {},
        el("a", { href: hrefOf(c.site, c.group, c.layer, c.index), text: cellName(c) }),
        `: ${fmt(c.value, 4)}`,
      ),
    );
  }
  if (!top.length) list.append(el("li", { text: "No effects to rank (see the notes under the maps)." }));
}

// ---------------------------------------------------------------------------------------
// the explanation, written from the measured effects
const listed = (words) => (words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`);

function strongestHeads(site) {
  const grid = data.effects.head_z && data.effects.head_z[site];
  if (!grid) return null;
  const heads = grid.flatMap((row, layer) => row.map((v, head) => ({ layer, head, v })));
  heads.sort((a, b) => b.v - a.v);
  return {
    up: heads.filter((h) => h.v >= 0.1).slice(0, 3),
    down: heads
      .filter((h) => h.v <= -0.1)
      .reverse()
      .slice(0, 2),
    grid,
  };
}

function explain(stack, site) {
  const m = data.metric;
  const parts = [
    `${METRIC_NAME[m.kind]} is ${fmt(m.clean, 2)} on the clean input and ${fmt(m.corrupted, 2)} on the corrupted one` +
      (data.approximation ? " (the effects below are attribution patching's first-order estimates)." : "."),
  ];
  if (Object.values(data.effects).every((g) => g === null)) {
    parts.push(Object.values(data.reasons)[0] || "");
    return parts.join(" ");
  }
  if (data.raw) return parts.join(" ");
  const first = stacksOf()[0];
  const resid = data.effects.resid_pre && data.effects.resid_pre[first];
  const diff = data.differing;
  if (resid && diff.length) {
    const where =
      diff.length > 3
        ? `the ${diff.length} differing positions`
        : `the differing position${diff.length > 1 ? "s" : ""} (${listed(diff.map(String))})`;
    const restored =
      diff.length > 3
        ? (() => {
            const best = diff.reduce((a, p) => (Math.abs(resid[0][p]) > Math.abs(resid[0][a]) ? p : a), diff[0]);
            return `at most ${fmt(resid[0][best], 2)} (at position ${best}) of the difference, one position at a time`;
          })()
        : `${listed(diff.map((p) => fmt(resid[0][p], 2)))} of the difference`;
    parts.push(`Writing the clean stream into layer 0 of the ${first} at ${where} restores ${restored}.`);
    const read = first === "decoder" || data.kind === "encoder" ? m.position : null;
    if (read !== null && data.metric.head !== "classifier") {
      const layer = resid.findIndex((row) => row[read] >= 0.5);
      parts.push(
        layer > 0
          ? `From layer ${layer} on, the stream at the position read (${read}) alone restores ${fmt(resid[layer][read], 2)}: the information has moved there.`
          : layer === 0
            ? `The position read (${read}) is itself a differing one.`
            : `At no layer does the position read (${read}) carry half of it alone.`,
      );
    }
  }
  const heads = strongestHeads(site);
  if (heads) {
    const name = (h) => `${headName(h.layer, h.head)} (${fmt(h.v, 2)})`;
    if (heads.up.length)
      parts.push(
        `Of the ${siteLabel(site)}'s heads, ${listed(heads.up.map(name))} restore the most by their output alone.`,
      );
    else parts.push(`No single head of the ${siteLabel(site)} restores a tenth of it by its output alone.`);
    if (heads.down.length)
      parts.push(
        `${listed(heads.down.map(name))} ${heads.down.length > 1 ? "push" : "pushes"} the other way: ${
          heads.down.length > 1 ? "their" : "its"
        } clean output makes the corrupted run worse.`,
      );
  }
  parts.push(...presetNote(heads));
  return parts.join(" ");
}

/** What an experiment's preset adds: the card's claims, checked against these numbers. */
function presetNote(heads) {
  const model = shownFor.model;
  if (state.preset === "induction" && heads) {
    const g = heads.grid;
    const prev = g[0] && g[0][2];
    const induction = (g[1] || []).map((v, h) => `${headName(1, h)} ${fmt(v, 2)}`);
    const total = (g[1] || []).reduce((a, v) => a + v, 0);
    const notes = [
      `The card's circuit: L0H2, the previous-token head, and the layer-1 induction heads. Here the layer-1 heads' outputs restore ${listed(induction)} (${fmt(total, 2)} together).`,
    ];
    if (prev !== undefined)
      notes.push(
        prev < -0.1
          ? `L0H2's clean output scores ${fmt(prev, 2)}: it tells the induction heads where the clean run stood, but the corrupted tokens sit there, so they copy a wrong one — the composition the card describes, measured.`
          : `L0H2's clean output alone scores ${fmt(prev, 2)}.`,
      );
    return notes;
  }
  if (model.id === "seq2seq-en-fr" && data.effects.memory) {
    const memory = data.effects.memory.encoder[0];
    const p = data.differing[0];
    const cross = strongestHeads("decoder.cross");
    const notes = [];
    if (p !== undefined)
      notes.push(`The encoder's output at the swapped word restores ${fmt(memory[p], 2)} as the decoder reads it.`);
    if (cross && cross.up.length)
      notes.push(
        `Cross-attention heads that carry it: ${listed(cross.up.map((h) => `${headName(h.layer, h.head)} (${fmt(h.v, 2)})`))}.`,
      );
    return notes;
  }
  if (data.metric.head === "classifier" && data.effects.resid_pre) {
    const resid = data.effects.resid_pre.encoder;
    const last = resid.length - 1;
    const cls = resid[last][0];
    return [
      cls >= 0.5
        ? `The stream entering the last layer at [CLS] already restores ${fmt(cls, 2)} of the sentiment's difference: the classifier reads it there.`
        : `The stream entering the last layer at [CLS] restores only ${fmt(cls, 2)} of the sentiment's difference: the last block still gathers it into [CLS] from the other positions.`,
    ];
  }
  return [];
}

// ---------------------------------------------------------------------------------------
// presets, exports, controls
function renderExperiments(model) {
  const box = $("#patch-presets");
  clear(box);
  const experiment = EXPERIMENTS[model.id];
  if (!experiment) return;
  box.append(el("span", { class: "presets-label", text: "Experiment:" }));
  const active =
    state.preset === "induction" ||
    (state.text === experiment.patch.text && state.corrupted === experiment.patch.corrupted);
  const chip = el("button", {
    type: "button",
    class: "preset",
    "aria-pressed": String(Boolean(active)),
    text: experiment.label,
  });
  chip.addEventListener("click", () => {
    state.set(experiment.patch, { push: true, silent: true });
    $("#text-input").value = state.text;
    if ($("#target-input")) $("#target-input").value = state.target || "";
    run();
  });
  box.append(chip);
}

for (const name of SITES) {
  registerExport(name, {
    filename: () => `${data.model}-patch-${name}`,
    plot: () => $(`#${name}`),
    data: () => ({
      model: data.model,
      method: data.method,
      raw: data.raw,
      site: name,
      tokens: data.tokens,
      metric: data.metric,
      effects: data.effects[name],
      reason: data.reasons[name],
      definition: data.definitions[name],
    }),
  });
}

function setAndRun(patch) {
  clearError();
  state.set(patch, { push: true, silent: true });
  run();
}
$("#patch-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setAndRun({ corrupted: $("#corrupted-input").value, preset: "", answer: "", wrong: "" });
});
$("#kind-select").addEventListener("change", (e) => setAndRun({ kind: e.target.value }));
$("#head-read-select").addEventListener("change", (e) => setAndRun({ read: e.target.value, answer: "", wrong: "" }));
$("#answer-select").addEventListener("change", (e) => setAndRun({ answer: e.target.value }));
$("#wrong-select").addEventListener("change", (e) => setAndRun({ wrong: e.target.value }));
$("#position-select").addEventListener("change", (e) => setAndRun({ position: e.target.value, answer: "", wrong: "" }));
$("#method-select").addEventListener("change", (e) => setAndRun({ method: e.target.value }));
$("#stack-select").addEventListener("change", (e) => {
  state.set({ stack: e.target.value }, { push: true, silent: true });
  render();
});
$("#site-select").addEventListener("change", (e) => {
  state.set({ site: e.target.value }, { push: true, silent: true });
  render();
});

const openStrongest = () => {
  const link = $("#top-cells a");
  if (!link) return false;
  window.location.assign(link.href);
  return true;
};
bindKeys({ o: openStrongest, O: openStrongest });
state.subscribe((changed) => {
  if (changed.some((k) => RUN_KEYS.includes(k))) run();
  else render();
});
onProjectorChange(() => render());

const startModel = controls.current();
if (startModel && !state.corrupted && state.preset === "" && EXPERIMENTS[startModel.id]) {
  save(EXPERIMENTS[startModel.id].patch);
  $("#text-input").value = state.text;
  if ($("#target-input")) $("#target-input").value = state.target || "";
}
run();
