// Heads (POST /heads/scores): every head's scores as layers × heads heatmaps, the weights beside
// the importance measured by ablation ("attention is not explanation"), and a sortable table of
// every head. A head clicked anywhere opens in the explorer; from the importance map, ablated.
// A model saved with training snapshots also shows its heads forming (lib/snapshotpanels.js).

import * as api from "../lib/api.js";
import { SITE_ORDER, pickSite } from "../lib/attn.js";
import { siteDepth } from "../lib/attnstore.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, clear, el, fillSelect, fmt } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import {
  SCORES,
  SCORE_LABEL,
  WEIGHT_SCORES,
  digitsFor,
  explorerHref,
  firstTokenAt,
  hasValues,
  headName,
  headRows,
  matrixOf,
  missingReason,
  renderHeadTable,
  rowsCSV,
  scoreHeatmap,
  scoreLabel,
  siteLabel,
  spearman,
  topHead,
} from "../lib/headscores.js";
import { PICKER_STATE, attentionPickers } from "../lib/pickers.js";
import { purge } from "../lib/plots.js";
import { progressMeter, progressText } from "../lib/progress.js";
import { bindKeys, initShell, onProjectorChange, showError, withProgress } from "../lib/shell.js";
import { trainingPanels } from "../lib/snapshotpanels.js";
import { bool, int, str, urlState } from "../lib/state.js";
import { labelTokens } from "../lib/tokens.js";
import { renderTokenStrip } from "../lib/tokenstrip.js";

initShell();
initExports(showError);

const state = urlState({
  ...INPUT_STATE,
  ...PICKER_STATE, // the head picked: outlined in the maps, marked in the table
  probe: bool(false), // score on the induction probe (random tokens, repeated) instead of the text
  seed: int(0),
  run: int(24), // the probe's run of random tokens
  mode: str("zero"), // how importance ablates a head: zero | mean
  // exact (every head ablated in turn) | attribution_patching (an estimate) | "": methodFor()
  method: str(""),
  score: str(""), // the score of the first map ("": induction on the probe, else previous token)
  versus: str(""), // the weight score beside importance ("": the first map's, if a weight score)
  sort: str(""), // the table's order: "importance", "-importance" (descending); "": by head
  snap: int(-1), // the training snapshot shown (its step; -1: where the induction heads formed)
});
const save = (patch) => state.set(patch, { silent: true });
const status = $("#status");
const nextRequest = api.latestOnly();
const INPUT_KEYS = ["model", "text", "target", "probe", "seed", "run", "mode"];
let data = null; // the /heads/scores answer shown
let scoredWith = null; // {model, input: {text, target}} of that answer, for the explorer's links

const pickers = attentionPickers(state, { onChange: () => render() });
const training = trainingPanels({ onStep: (snap) => save({ snap }), onError: showError });

const controls = await setupControls(state, {
  prefer: (m) => m.id === "induction-2l",
  allowTarget: true,
  onRun: run,
  onModelChange: () => save({ site: "", layer: 0, head: 0, sort: "", snap: -1 }),
});

// ---------------------------------------------------------------------------------------
// what the heads are scored on
function fillInputControls(model) {
  $("#input-text").checked = !state.probe;
  $("#input-probe").checked = state.probe;
  for (const node of document.querySelectorAll(".probe-only")) node.classList.toggle("disabled", !state.probe);
  $("#seed-input").disabled = !state.probe;
  $("#run-input").disabled = !state.probe;
  $("#seed-input").value = String(state.seed);
  const run = $("#run-input");
  run.max = String(Math.max(2, Math.floor((model.max_len - 2) / 2)));
  run.value = String(state.run);
  $("#mode-select").value = state.mode;
  $("#method-select").value = methodFor(model);
}

// Past this many heads the exact sweep takes minutes on a CPU (SmolLM2's 270: ~2 min at 256
// tokens), so the page answers first with the labelled estimate; the exact sweep stays one
// choice away (with its progress). The RNN has one head and no estimate.
const EXACT_UP_TO_HEADS = 144;

/** The importance method the URL asks for, else the one that suits the model's size. */
function methodFor(model) {
  if (state.method) return state.method;
  const heads = Object.values(model.sites || {}).reduce((n, layers) => n + layers, 0) * model.n_heads;
  return heads > EXACT_UP_TO_HEADS ? "attribution_patching" : "exact";
}

async function run() {
  const model = controls.current();
  if (!model) return;
  fillInputControls(model);
  const body = { model: model.id, importance_mode: state.mode };
  if (model.architecture !== "rnn") body.importance_method = methodFor(model); // the RNN: exact only
  if (state.probe) Object.assign(body, { seed: state.seed, run_length: state.run });
  else Object.assign(body, api.inputBody(model, state));
  const signal = nextRequest();
  let failure = null;
  const started = performance.now();
  const label = state.probe ? "Scoring every head on random tokens, repeated…" : "Scoring every head…";
  // The exact importance sweep (minutes on a large model) streams its progress, shown in the
  // importance panel; changing the input aborts the stream, which stops the sweep on the server.
  const exact = body.importance_method !== "attribution_patching";
  const meter = exact
    ? progressMeter($("#importance-progress"), { label: "Importance sweep", describe: describeSweep })
    : null;
  const ask = exact
    ? () => api.headScoresStream(body, { signal, onProgress: meter.update })
    : () => api.headScores(body, { signal });
  const result = await withProgress(status, label, () =>
    ask().catch((error) => {
      failure = error;
      throw error;
    }),
  ).finally(() => meter && meter.remove());
  if (signal.aborted) return;
  if (!result) {
    // The banner has the whole error; the status line keeps what went wrong beside the controls.
    if (failure) status.textContent = `Not scored: ${failure.message}`;
    return;
  }
  data = result;
  scoredWith = { model, input: { text: state.text, target: state.target } };
  const seconds = (performance.now() - started) / 1000;
  status.textContent = `${countHeads(model)} heads scored in ${seconds.toFixed(1)} s.`;
  renderInput();
  render();
}

/** "Ablating heads: 117 of 270 (layer 13 of 30) — about 40 s left". */
const describeSweep = (event) => progressText("Ablating heads", event);

const sitesOf = (d) => SITE_ORDER.filter((s) => d.scores[s]);
const countHeads = (model) => sitesOf(data).reduce((n, s) => n + siteDepth(model, s), 0) * model.n_heads;

function renderInput() {
  const source = labelTokens(data.tokens.source);
  const rows = [["source", source]];
  if (data.tokens.target) rows.push(["target", labelTokens(data.tokens.target)]);
  renderTokenStrip($("#tokens"), rows);
  let summary;
  if (data.input === "probe") {
    const { seed, run_length: n } = data.probe;
    const lead = source.length > 2 * n ? `${source[0].label} + ` : "";
    summary = `random tokens, repeated: ${lead}a run of ${n} tokens drawn with seed ${seed}, then the same ${n} again`;
    if (data.tokens.target) summary += "; the decoder reads the model's own translation of it";
  } else {
    summary = `this sentence: ${source.length} tokens`;
    if (data.tokens.target) summary += `, and the ${data.tokens.target.length} of its target`;
  }
  $("#input-summary").textContent = summary;
}

// ---------------------------------------------------------------------------------------
// the maps and the table
/** The number of keys a site's rows read (entropy's top is ln of it). */
function keysOf(site) {
  const { source, target } = data.tokens;
  if (site === "decoder.self" && target) return target.length;
  return source.length;
}

/** The first map's score: the URL's, else induction on the probe, else the previous token. */
function mainScore(site) {
  if (SCORES.includes(state.score)) return state.score;
  const first = data.input === "probe" ? "induction" : "previous_token";
  return [first, ...SCORES].find((s) => hasValues(data, site, s)) || first;
}

/** The weight score beside importance: the URL's, else the first map's if it is one. */
function versusScore(site, main) {
  if (WEIGHT_SCORES.includes(state.versus)) return state.versus;
  if (WEIGHT_SCORES.includes(main) && hasValues(data, site, main)) return main;
  return WEIGHT_SCORES.find((s) => hasValues(data, site, s)) || WEIGHT_SCORES[0];
}

const scoreOptions = (site, scores) =>
  scores.map((s) => ({ value: s, label: scoreLabel(data, site, s) + (hasValues(data, site, s) ? "" : " (n/a here)") }));

function hrefOf(site, layer, head, ablated = false) {
  const { model, input } = scoredWith;
  const ablate = ablated ? [{ site, layer, head, mode: state.mode }] : null;
  return explorerHref(model, input, { site, layer, head, ablate });
}

function open(site, layer, head, ablated = false) {
  window.location.assign(hrefOf(site, layer, head, ablated));
}

function render() {
  if (!data) return;
  const model = scoredWith.model;
  const sites = sitesOf(data);
  const site = pickSite(sites, state.site);
  const selected = pickers.fill({
    sites,
    site,
    layers: siteDepth(model, site),
    heads: model.n_heads,
    layer: state.layer,
    head: state.head,
  });
  const main = mainScore(site);
  const versus = versusScore(site, main);
  fillSelect($("#score-select"), scoreOptions(site, SCORES), main);
  fillSelect($("#versus-select"), scoreOptions(site, WEIGHT_SCORES), versus);
  renderHeadLinks(site, selected);
  renderSiteNote(model, site);
  const pick = (layer, head) => open(site, layer, head);
  drawMap($("#scores"), $("#scores-note"), site, main, selected, pick, true);
  drawMap($("#weights"), $("#weights-note"), site, versus, selected, pick);
  drawMap($("#importance"), $("#importance-note"), site, "importance", selected, (layer, head) =>
    open(site, layer, head, true),
  );
  renderComparison(site, versus);
  renderTable(site, selected);
  renderTraining(model, site, selected);
}

/** The training snapshots' panels, for a model saved with them (their heads are decoder.self's). */
function renderTraining(model, site, { layer, head }) {
  if (!model.snapshots || site !== "decoder.self") {
    training.hide();
    return;
  }
  training.update({ model, seed: state.seed, run: state.run, layer, head, step: state.snap });
}

/** One score's map in `div` (or why there is none in `note`), its definition under it. */
function drawMap(div, note, site, score, selected, onPick, withDefinition = false) {
  const why = missingReason(data, site, score, scoredWith.model);
  const definition = data.definitions[score] ? `${scoreLabel(data, site, score)}: ${data.definitions[score]}.` : "";
  const shown = withDefinition || score === "importance" ? definition : "";
  // what key 0 is at this site, wherever the first-token score is shown
  const firstToken = score === "first_token" ? firstTokenAt(data, site).note : "";
  note.textContent = why || [shown, firstToken].filter(Boolean).join(" ");
  note.classList.toggle("missing", Boolean(why));
  if (why) {
    purge(div);
    div.hidden = true;
    return;
  }
  div.hidden = false;
  const z = matrixOf(data, site, score);
  scoreHeatmap(div, z, { score, keys: keysOf(site), selected, onPick, label: scoreLabel(data, site, score) }).catch(
    showError,
  );
}

function renderHeadLinks(site, { layer, head }) {
  const box = $("#head-links");
  clear(box);
  const name = `${headName(layer, head)} of the ${siteLabel(site)}`;
  box.append(
    el("span", { text: `${name}: ` }),
    el("a", { href: hrefOf(site, layer, head), text: "open in the explorer", title: "O" }),
    " · ",
    el("a", { href: hrefOf(site, layer, head, true), text: "see it ablated", title: "A" }),
  );
  if (data.input === "probe") {
    box.append(
      el("span", {
        class: "note",
        text: " (the explorer reads the sentence in the text box: it cannot replay the random tokens)",
      }),
    );
  }
}

/** "a, b and c". */
const listed = (words) => (words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`);

/** What does not apply to the site shown, said once above the maps. */
function renderSiteNote(model, site) {
  const note = $("#site-note");
  const absent = listed(WEIGHT_SCORES.filter((s) => !matrixOf(data, site, s)).map((s) => SCORE_LABEL[s]));
  let text = "";
  if (model.architecture === "rnn") {
    text =
      "The RNN translator has a single attention head: additive attention from each decoder state to the encoder's states (one layer, one head). " +
      `It has a first-token score, an entropy and an importance like any head; ${absent} do not apply to it, as to any cross-attention.`;
  } else if (absent) {
    text = `On cross-attention ${absent} do not apply: the queries (the target) and the keys (the source) are two different sequences.`;
  }
  note.textContent = text;
  note.hidden = !text;
}

/** The comparison's summary: how well the two maps agree, and each one's top head, linked. */
function renderComparison(site, versus) {
  const box = $("#compare-summary");
  clear(box);
  const weights = matrixOf(data, site, versus);
  const importance = matrixOf(data, site, "importance");
  if (!hasValues(data, site, versus) || !hasValues(data, site, "importance")) return;
  const { rho, n } = spearman(weights, importance);
  const top = topHead(weights);
  const needed = topHead(importance);
  const link = (h, text) => el("a", { href: hrefOf(site, h.layer, h.head, true), text });
  const [dw, di] = [digitsFor(weights), digitsFor(importance)];
  box.append(
    rho === null
      ? `${n} head${n === 1 ? "" : "s"}: too few to rank. `
      : `Rank correlation over the ${n} heads: ρ = ${fmt(rho, 2)}. `,
    `Highest ${scoreLabel(data, site, versus)}: ${headName(top.layer, top.head)} (${fmt(top.value, dw)}), `,
    link(top, "ablated"),
    `; most needed: ${headName(needed.layer, needed.head)} (${fmt(needed.value, di)}), `,
    link(needed, "ablated"),
    ".",
  );
}

let tableRows = [];
let tableScores = [];
let tableSite = "";
function renderTable(site, selected) {
  tableScores = SCORES.filter((s) => hasValues(data, site, s));
  tableRows = headRows(data, site, tableScores);
  tableSite = site;
  $("#table-title").textContent = `Every head of the ${siteLabel(site)}`;
  renderHeadTable($("#heads-table"), {
    rows: tableRows,
    scores: tableScores,
    sort: state.sort,
    selected,
    hrefOf: (layer, head) => hrefOf(site, layer, head),
    label: (score) => scoreLabel(data, site, score),
    onSort: (sort) => {
      state.set({ sort }, { push: true, silent: true });
      renderTable(site, selected);
      const button = $(`#heads-table button[data-sort="${parseSortKey(sort)}"]`);
      if (button) button.focus(); // the table was redrawn: keep the keyboard where it was
    },
  });
}
const parseSortKey = (sort) => sort.replace(/^-/, "") || "head";

// ---------------------------------------------------------------------------------------
// exports
const fileBase = () => `${data.model}-${pickSite(sitesOf(data), state.site)}`;
const mapExport = (id, scoreOf) =>
  registerExport(id, {
    filename: () => `${fileBase()}-${scoreOf()}`,
    plot: () => $(`#${id}`),
    data: () => {
      const site = pickSite(sitesOf(data), state.site);
      const score = scoreOf();
      return {
        model: data.model,
        input: data.input,
        probe: data.probe,
        site,
        score,
        definition: data.definitions[score],
        importance_mode: score === "importance" ? state.mode : undefined,
        matrix: matrixOf(data, site, score),
      };
    },
  });
mapExport("scores", () => $("#score-select").value);
mapExport("weights", () => $("#versus-select").value);
mapExport("importance", () => "importance");
registerExport("table", {
  filename: () => `${fileBase()}-heads`,
  data: () => ({
    model: data.model,
    input: data.input,
    probe: data.probe,
    site: tableSite,
    importance_mode: state.mode,
    definitions: data.definitions,
    heads: tableRows.map((r) => ({ layer: r.layer, head: r.head, ...r.values })),
  }),
  csv: () => rowsCSV(tableRows, tableSite, tableScores),
});

// ---------------------------------------------------------------------------------------
// controls and keys
function setAndRun(patch) {
  state.set(patch, { push: true, silent: true });
  run();
}
for (const radio of [$("#input-text"), $("#input-probe")]) {
  radio.addEventListener("change", () => setAndRun({ probe: $("#input-probe").checked }));
}
$("#seed-input").addEventListener("change", (e) => {
  const seed = Number.parseInt(e.target.value, 10);
  if (Number.isFinite(seed) && seed >= 0) setAndRun({ seed });
});
$("#run-input").addEventListener("change", (e) => {
  const n = Number.parseInt(e.target.value, 10);
  if (Number.isFinite(n)) setAndRun({ run: n }); // out of range: the server says what fits
});
$("#mode-select").addEventListener("change", (e) => setAndRun({ mode: e.target.value }));
$("#method-select").addEventListener("change", (e) => setAndRun({ method: e.target.value }));
$("#score-select").addEventListener("change", (e) => {
  state.set({ score: e.target.value }, { push: true, silent: true });
  render();
});
$("#versus-select").addEventListener("change", (e) => {
  state.set({ versus: e.target.value }, { push: true, silent: true });
  render();
});

const site = () => pickSite(sitesOf(data), state.site);
const openPicked = () => (data ? open(site(), state.layer, state.head) : false);
const ablatePicked = () => (data ? open(site(), state.layer, state.head, true) : false);
bindKeys({
  o: openPicked,
  O: openPicked,
  a: ablatePicked,
  A: ablatePicked,
});
state.subscribe((changed) => {
  if (changed.some((k) => INPUT_KEYS.includes(k))) run();
  else render();
});
onProjectorChange(() => render());

run();
