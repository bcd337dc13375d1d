// Explorer: tokens, head view, one-head heatmap, and the grid of every layer × head.
//
// The attention is fetched as it is shown (lib/attnstore.js): the head on the heatmap first
// (so the first heatmap waits for one forward pass and one head's bytes), then the other heads
// of its layer for the head view, then every head pooled for the grid. Switching head or layer
// fetches only what the new view lacks. Heatmaps up to 128 tokens a side are Plotly figures,
// longer ones a canvas (lib/heatcanvas.js) that zooms and pans.
//
// Heads can be ablated (lib/ablation.js: the ✂ switch on a head chip, the URL's `ablate`):
// every request of the page then carries them, "what the model says" shows before → after,
// and a table says how far each head's attention moved.

import {
  ablateField,
  ablateList,
  ablateSwitch,
  ablationOf,
  defaultMode,
  describe,
  forModel,
  renderAblationBar,
  toggled,
} from "../lib/ablation.js";
import * as api from "../lib/api.js";
import { SITE_LABEL, pickSite } from "../lib/attn.js";
import { AttentionSource, siteDepth } from "../lib/attnstore.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, afterPaint, clear, el } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { headSwatch, renderGrid } from "../lib/grid.js";
import { adaptiveHeatmap } from "../lib/heatmap.js";
import { ALL_ROWS, renderHeadView } from "../lib/headview.js";
import {
  VALUES,
  gridLayers,
  headHeatmap,
  headMatrix,
  layerWeights,
  rolloutApplies,
  siteAxes,
  valuesCaption,
} from "../lib/headpanels.js";
import { comparePanel } from "../lib/comparepanel.js";
import { modelSays } from "../lib/modelsays.js";
import { headStyle } from "../lib/palette.js";
import { PICKER_STATE, attentionPickers } from "../lib/pickers.js";
import { bindKeys, initShell, onProjectorChange, showError, withProgress } from "../lib/shell.js";
import { bool, int, intList, str, urlState } from "../lib/state.js";
import { selectMat, toNested } from "../lib/tensor.js";
import { renderTokenStrip } from "../lib/tokenstrip.js";

initShell();
initExports(showError);

/** The head view fetches a whole layer up to this many cells (12 heads × 512²: ~1.3 MB gzipped). */
const LAYER_CELLS = 12 * 512 * 512;
/** The grid's thumbnails: every head pooled to at most this many blocks a side. */
const POOL = 64;
const TOPK_CHOICES = [0, 1, 2, 3, 5, 10];
const PREFETCH_AFTER_MS = 200;

const state = urlState({
  ...INPUT_STATE,
  ...PICKER_STATE,
  off: intList([]), // heads switched off in the head view
  // what the heatmap shows: a key of VALUES (not "values": the state object has that getter)
  show: str("weights"),
  scores: bool(false), // older links' "pre-softmax scores" (show=scores now)
  ablate: ablateList(), // heads ablated: site:layer:head:mode,…
  hide: bool(false),
  lock: str(""), // "q3" / "k5": a token locked in the head view (original position)
  topk: int(-1), // lines per query in the head view (0: all; -1: all for short inputs, else 3)
  zoom: str(""), // the canvas heatmap's window: "r0,r1,c0,c1" (rows and columns shown)
  compare: str(""), // a second input B: the head shown on both, and A − B
  compare_model: str(""), // the model that reads B ("": the same one)
});

const status = $("#status");
// Our own changes are written silently; subscribers only hear back/forward navigation.
const save = (patch) => state.set(patch, { silent: true });
if (state.scores) save({ show: "scores", scores: false });
if (!(state.show in VALUES)) save({ show: "weights" });
let ablateMode = defaultMode(state.ablate); // the mode the next head ablated takes
let source = null; // the AttentionSource of the input shown
const heatmap = adaptiveHeatmap($("#heatmap"));
heatmap.onWindow((w) => save({ zoom: `${w.r0},${w.r1},${w.c0},${w.c1}` }));
let headView = null;
let grid = null;
let gridData = null; // {layers, masked} of the grid shown
let runStarted = 0;
let timedThisRun = false;
const nextRequest = api.latestOnly();

const pickers = attentionPickers(state, {
  siteReset: { lock: "", zoom: "" },
  onChange: (key) => {
    if (!source || !source.tokens) return;
    if (key !== "site") performance.mark("attnviz:switch");
    if (key === "site") refresh();
    else render({ timed: true, headView: key === "layer" || !wholeLayer(currentSite()) });
  },
});

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "seq2seq",
  allowTarget: true,
  onRun: () => {
    save({ zoom: "" }); // a new input starts with every token in view
    run();
  },
  onModelChange: () =>
    save({ site: "", layer: 0, head: 0, off: [], lock: "", zoom: "", ablate: [], compare_model: "" }),
});

// ---------------------------------------------------------------------------------------
async function run() {
  const model = controls.current();
  if (!model) return;
  const signal = nextRequest();
  performance.mark("attnviz:run");
  runStarted = performance.now();
  timedThisRun = false;
  const ablate = forModel(state.ablate, model); // a link may name heads this model lacks
  if (ablate.length !== state.ablate.length) save({ ablate });
  const next = new AttentionSource(model, state, { ablate: ablateField(ablate) });
  const depth = Math.max(...next.sites.map((s) => siteDepth(model, s)));
  const layer = Math.min(Math.max(0, state.layer), depth - 1);
  const head = Math.min(Math.max(0, state.head), model.n_heads - 1);
  const loaded = await withProgress(status, "Running the model…", () =>
    next.load(layer, [head], { ...headExtras(), signal }).then(() => true),
  );
  if (!loaded || signal.aborted) return;
  performance.mark("attnviz:data");
  source = next;
  await refresh();
  await nextTask(); // each panel in its own task: the page answers input in between
  const rows = [["source", source.tokens.source]];
  if (source.tokens.target) rows.push(["target", source.tokens.target]);
  renderTokenStrip($("#tokens"), rows);
  renderAblation();
  modelSays($("#model-says"), model, state.text, source.tokens.source, signal, { ablate: ablateField(ablate) });
}

/** What a head's request includes beyond its weights, for the values the heatmap shows. */
const headExtras = () => ({ scores: state.show === "scores", norms: state.show === "norms" });

/** Let the browser run other tasks (input, painting) before going on. */
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

// ---------------------------------------------------------------------------------------
function currentSite() {
  return pickSite(source.sites, state.site);
}

function setupSelectors() {
  const site = currentSite();
  const model = source.model;
  pickers.fill({
    sites: source.sites,
    site,
    layers: siteDepth(model, site),
    heads: model.n_heads,
    layer: state.layer,
    head: state.head,
  });
  $("#values-select").value = state.show;
  $("#hide-special").checked = state.hide;
  const { q } = source.lengths(site);
  const select = $("#topk-select");
  select.replaceChildren(
    ...TOPK_CHOICES.map((k) => el("option", { value: String(k), text: k ? `top ${k}` : "all ≥ 1 %" })),
  );
  select.value = String(topk(q));
}

/** Lines per query in the head view: the URL's choice, else all for short inputs, else 3. */
function topk(rows) {
  if (TOPK_CHOICES.includes(state.topk)) return state.topk;
  return rows > ALL_ROWS ? 3 : 0;
}

function renderHeadToggles(H) {
  const box = $("#head-toggles");
  // the chips are drawn again for each layer: a keyboard user's focus stays on the same chip
  const focused = box.contains(document.activeElement) ? document.activeElement : null;
  const again =
    focused && focused.dataset.head !== undefined
      ? `.${focused.classList[0]}[data-head="${focused.dataset.head}"]`
      : null;
  clear(box);
  box.append(el("span", { class: "legend-inline", text: "heads:" }));
  for (let h = 0; h < H; h++) {
    const button = el(
      "button",
      {
        type: "button",
        class: "head-toggle",
        "aria-pressed": String(!state.off.includes(h)),
        "data-head": h,
        title: `show / hide head ${h}${headStyle(h).dash ? " (dashed lines)" : ""}`,
      },
      headSwatch(h),
      `head ${h}`,
    );
    button.style.setProperty("--head", headStyle(h).color);
    const site = currentSite();
    const chip = el(
      "span",
      { class: "head-chip" },
      button,
      ablateSwitch({ site, layer: state.layer, head: h, list: state.ablate, onToggle: toggleAblation }),
    );
    button.addEventListener("click", () => {
      const off = state.off.includes(h) ? state.off.filter((x) => x !== h) : [...state.off, h].sort((a, b) => a - b);
      save({ off });
      button.setAttribute("aria-pressed", String(!off.includes(h)));
      renderHeadViewPanel();
    });
    box.append(chip);
  }
  if (again && box.querySelector(again)) box.querySelector(again).focus();
  const all = el("button", { type: "button", class: "head-toggle", text: "all", title: "show every head" });
  all.addEventListener("click", () => {
    save({ off: [] });
    for (const b of box.querySelectorAll("[data-head]")) b.setAttribute("aria-pressed", "true");
    renderHeadViewPanel();
  });
  box.append(all);
}

// ---------------------------------------------------------------------------------------
// ablation

/** Ablate the head, or restore it, and ask the server again with the new list. */
function toggleAblation(site, layer, head) {
  setAblation(toggled(state.ablate, site, layer, head, ablateMode));
}

function setAblation(list) {
  state.set({ ablate: list }, { push: true, silent: true });
  run();
}

/** The ablation bar (the mode, each head ablated) and the table of how far heads moved. */
function renderAblation() {
  renderAblationBar($("#ablation-bar"), {
    list: state.ablate,
    mode: ablateMode,
    hint: "Take a head out with ✂ beside its chip in the head view (x: the head on the heatmap).",
    onChange: setAblation,
    onMode: (m) => (ablateMode = m),
  });
  renderChangedTable();
}

/** Per layer and head of the site shown, how far its attention moved under the ablation. */
function renderChangedTable() {
  const box = $("#ablation-changed");
  if (!source || !state.ablate.length) return box.replaceChildren();
  const site = currentSite();
  const L = siteDepth(source.model, site);
  const H = source.model.n_heads;
  const known = source.changed.size > 0;
  const heads = Array.from({ length: H }, (_, h) => h);
  const cell = (layer, head) => {
    const a = ablationOf(state.ablate, site, layer, head);
    const v = source.changedOf(site, layer, head);
    const text = v === undefined ? "…" : v.toFixed(3);
    const td = el("td", { class: `num${a ? " ablated-cell" : ""}` }, a ? `✂ ${text}` : text);
    if (v !== undefined) td.style.setProperty("--moved", String(Math.min(1, v * 2)));
    return td;
  };
  box.replaceChildren(
    el(
      "p",
      { class: "plot-note" },
      `How far each head's attention moved under the ablation (${SITE_LABEL[site] || site}): the total ` +
        "variation distance between its rows with and without the ablation, averaged over queries (0: " +
        "unchanged, 1: disjoint). An ablated head (✂) keeps its own pattern; heads above it may move.",
    ),
    known
      ? el(
          "table",
          { class: "changed-table", "aria-label": "attention moved per layer and head" },
          el("thead", {}, el("tr", {}, el("th", { text: "layer" }), ...heads.map((h) => el("th", { text: `H${h}` })))),
          el(
            "tbody",
            {},
            ...Array.from({ length: L }, (_, l) =>
              el("tr", {}, el("th", { text: `L${l}` }), ...heads.map((h) => cell(l, h))),
            ),
          ),
        )
      : null,
  );
}

// ---------------------------------------------------------------------------------------
let axesMemo = null;
/** The tokens on each axis of a site (lib/headpanels.js), the same arrays while the input, the
 * site and the hiding of special tokens stay: the canvas heatmap keeps its layout. */
function axes(site) {
  if (axesMemo && axesMemo.source === source && axesMemo.site === site && axesMemo.hide === state.hide) {
    return axesMemo.value;
  }
  const value = siteAxes(source, site, state.hide);
  axesMemo = { source, site, hide: state.hide, value };
  return value;
}

const shownMatrix = (site, layer, head, values) =>
  headMatrix(source, axes(site), site, layer, head, { values, hide: state.hide });

function parseZoom(rows, cols) {
  const m = /^(\d+),(\d+),(\d+),(\d+)$/.exec(state.zoom);
  if (!m) return undefined;
  const [r0, r1, c0, c1] = m.slice(1).map(Number);
  return r1 <= rows && c1 <= cols && r0 < r1 && c0 < c1 ? { r0, r1, c0, c1 } : undefined;
}

/** Why the heatmap cannot show the chosen values for this site and model (null: it can). */
function valuesUnavailable(site) {
  if (state.show !== "rollout") return null;
  if (source.model.architecture === "rnn") {
    return (
      `Rollout does not apply to ${source.model.id}: it multiplies self-attention through residual ` +
      "layers, and this RNN has one additive cross-attention, no self-attention and no residual stream."
    );
  }
  if (!rolloutApplies(site)) {
    return (
      "Rollout does not apply to cross-attention: it follows a sequence's mixing with itself through " +
      "the layers (½A + ½I). Pick encoder or decoder self-attention to see it."
    );
  }
  return null;
}

async function renderHeatmap({ timed = false } = {}) {
  const site = currentSite();
  const { layer, head } = state;
  const values = state.show;
  $("#values-caption").textContent = valuesCaption(values, source.model);
  const unavailable = valuesUnavailable(site);
  if (unavailable) {
    heatmap.clear();
    $("#heatmap-note").textContent = unavailable;
    return;
  }
  const want = { scores: values === "scores", norms: values === "norms" };
  if (!source.has(site, layer, head, want)) {
    const ok = await withProgress(status, "Fetching the head…", () =>
      source.load(layer, [head], want).then(() => true),
    );
    if (!ok) return;
  }
  if (values === "rollout" && !source.rolloutOf(site, layer)) {
    const ok = await withProgress(status, "Rolling the attention out…", () => source.rollout().then(() => true));
    if (!ok) return;
  }
  if (site !== currentSite() || layer !== state.layer || head !== state.head || values !== state.show) return; // moved on
  const { z, opts, note } = headHeatmap(source, axes(site), site, layer, head, { values, hide: state.hide });
  const div = $("#heatmap");
  const drawn = heatmap.draw(z, { ...opts, square: true, window: parseZoom(z.rows, z.cols) });
  $("#heatmap-note").textContent = [note, ablationNote(site, layer, head)].filter(Boolean).join(" ");
  div.dataset.layer = String(layer);
  div.dataset.head = String(head);
  div.dataset.site = site;
  await drawn;
  if ((!timedThisRun && runStarted) || timed) {
    await afterPaint();
    if (!timedThisRun && runStarted) {
      timedThisRun = true;
      performance.mark("attnviz:heatmap");
      performance.measure("attnviz:run-to-heatmap", "attnviz:run", "attnviz:heatmap");
    } else if (performance.getEntriesByName("attnviz:switch").length) {
      performance.mark("attnviz:switched");
      performance.measure("attnviz:switch-to-heatmap", "attnviz:switch", "attnviz:switched");
    }
  }
}

/** Under an ablation: whether the head shown is ablated, and how far its attention moved. */
function ablationNote(site, layer, head) {
  if (!state.ablate.length) return "";
  const a = ablationOf(state.ablate, site, layer, head);
  const v = state.show === "rollout" ? undefined : source.changedOf(site, layer, head); // rollout: no one head
  const moved = v === undefined ? "" : ` Its attention moved by ${v.toFixed(3)} (total variation) under the ablation.`;
  if (a) {
    return (
      `✂ This head is ablated (${describe(a, { site: false })}): its output is taken out of the forward ` +
      `pass; where it looks is still computed and shown here.${moved}`
    );
  }
  return `With ${state.ablate.length} head${state.ablate.length > 1 ? "s" : ""} ablated.${moved}`;
}

/**
 * Once the view has dwelt on a head for a moment, fetch that head in the layers just above and
 * below (one head each, ~130 kB at 512 tokens), so that [ and ] show their heatmap without a
 * round trip. Only where the head view takes whole layers: a 2048-token head is 8 MB.
 */
let prefetchTimer = 0;
function prefetchNeighbours() {
  clearTimeout(prefetchTimer);
  prefetchTimer = setTimeout(() => {
    const site = currentSite();
    if (!source || !wholeLayer(site)) return;
    const depth = siteDepth(source.model, site);
    for (const layer of [state.layer + 1, state.layer - 1]) {
      if (layer >= 0 && layer < depth && !source.has(site, layer, state.head)) {
        source.load(layer, [state.head]).catch(() => {}); // a hint: a failure shows when the layer is opened
      }
    }
  }, PREFETCH_AFTER_MS);
}

/** Whether the head view shows every head of the layer (else the heads switched on). */
function wholeLayer(site) {
  const { q, k } = source.lengths(site);
  return source.model.n_heads * q * k <= LAYER_CELLS;
}

let headViewTurn = 0;
async function renderHeadViewPanel() {
  const turn = ++headViewTurn;
  const site = currentSite();
  const { layer } = state;
  const H = source.model.n_heads;
  const { q, k } = source.lengths(site);
  const whole = wholeLayer(site);
  // long inputs: the heads switched on, fetched one by one; otherwise the whole layer at once
  const wanted = Array.from({ length: H }, (_, h) => h).filter((h) =>
    whole ? true : h === state.head || (!state.off.includes(h) && source.has(site, layer, h)),
  );
  const missing = wanted.filter((h) => !source.has(site, layer, h));
  const wrap = $("#head-view-wrap");
  const note = $("#head-view-note");
  note.textContent = whole
    ? ""
    : `At ${q} tokens a head's matrix is ${((q * k * 2) / 2 ** 20).toFixed(1)} MB: the head view shows the ` +
      "head on the heatmap and the heads you switch on (each one fetched when you do).";
  if (missing.length) {
    wrap.setAttribute("aria-busy", "true");
    try {
      await source.load(layer, missing);
    } catch (error) {
      if (error && error.field === "heads" && missing.length > 1) {
        await source.load(layer, [state.head]).catch(showError); // over the memory budget: one head
      } else showError(error);
    } finally {
      wrap.removeAttribute("aria-busy");
    }
    if (turn !== headViewTurn) return;
  }
  const { qKeep, kKeep, left, right } = axes(site);
  const weights = layerWeights(source, axes(site), site, layer, state.hide);
  if (!whole) {
    // what is on: the heads the view has; clicking a head not fetched fetches it
    for (const b of $("#head-toggles").querySelectorAll("[data-head]")) {
      b.setAttribute(
        "aria-pressed",
        String(Boolean(weights[Number(b.dataset.head)]) && !state.off.includes(Number(b.dataset.head))),
      );
    }
  }
  const active = weights.map((_, h) => !state.off.includes(h));
  let lock = null;
  const m = /^([qk])(\d+)$/.exec(state.lock);
  if (m) {
    const keep = m[1] === "q" ? qKeep : kKeep;
    const i = keep.indexOf(Number(m[2]));
    if (i >= 0) lock = { side: m[1], i };
  }
  const isCross = site === "decoder.cross";
  headView = renderHeadView(wrap, {
    left,
    right,
    weights,
    active,
    lock,
    topk: topk(left.length),
    leftTitle: isCross ? "French (query)" : "query",
    rightTitle: isCross ? "English (key)" : "key",
    onLock: (l) => save({ lock: l ? `${l.side}${(l.side === "q" ? left : right)[l.i].index}` : "" }),
  });
  wrap.dataset.shows = `${site}:${layer}`; // which layer the drawn view is (tests wait on it)
}

let gridTurn = 0;
async function renderGridPanel() {
  const turn = ++gridTurn;
  let pooled;
  try {
    pooled = await source.pooled(POOL);
  } catch (error) {
    if (error && error.name !== "AbortError") showError(error);
    return;
  }
  if (turn !== gridTurn) return;
  renderChangedTable(); // the pooled answers carry every head's figure
  const site = currentSite();
  const thumbs = pooled.sites[site];
  if (!thumbs) return;
  const shown = gridLayers(source, axes(site), site, thumbs, pooled.edges, state.hide);
  gridData = shown;
  grid = renderGrid($("#grid"), {
    layers: shown.layers,
    masked: shown.masked,
    selected: { layer: state.layer, head: state.head },
    ablated: (layer, head) => !!ablationOf(state.ablate, site, layer, head),
    onPick: (layer, head) => {
      performance.mark("attnviz:switch");
      const headView = layer !== state.layer || !wholeLayer(site);
      save({ layer, head });
      $("#layer-select").value = String(layer);
      $("#head-select").value = String(head);
      render({ timed: true, headView }).then(() =>
        $("#heatmap").scrollIntoView({ behavior: "smooth", block: "nearest" }),
      );
    },
    note: shown.note,
  });
}

function markGridSelection() {
  for (const b of document.querySelectorAll("#grid .thumb")) {
    const on = Number(b.dataset.layer) === state.layer && Number(b.dataset.head) === state.head;
    b.setAttribute("aria-pressed", String(on));
  }
}

/** Refill the pickers (a new response, a new site, back / forward), then draw. */
function refresh() {
  setupSelectors();
  return render({ grid: true });
}

async function render({ timed = false, grid: withGrid = false, headView: withHeadView = true } = {}) {
  if (!source || !source.tokens) return;
  renderHeadToggles(source.model.n_heads); // their ablation switches name the layer shown
  renderChangedTable();
  await renderHeatmap({ timed }); // the heatmap first: the other panels never delay it
  if (!withGrid) markGridSelection();
  const { model } = source;
  updateCompare({ model, site: currentSite(), layer: state.layer, head: state.head }).catch(showError);
  await nextTask();
  const headViewDone = withHeadView ? renderHeadViewPanel() : Promise.resolve();
  if (withGrid) renderGridPanel();
  headViewDone.then(prefetchNeighbours);
}

// ---------------------------------------------------------------------------------------
$("#values-select").replaceChildren(
  ...Object.entries(VALUES).map(([value, label]) => el("option", { value, text: label })),
);
$("#values-select").value = state.show;
$("#values-select").addEventListener("change", (e) => {
  save({ show: e.target.value });
  if (source && source.tokens) renderHeatmap();
});
$("#hide-special").addEventListener("change", (e) => {
  save({ hide: e.target.checked, zoom: "" });
  render({ grid: true });
});
$("#topk-select").addEventListener("change", (e) => {
  save({ topk: Number(e.target.value) });
  if (source && source.tokens) renderHeadViewPanel();
});

const updateCompare = comparePanel(state, {
  models: () => controls.models,
  onOpen: (layer, head) => state.set({ layer, head }, { push: true }),
});
$("#compare-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const patch = { compare: $("#compare-input").value.trim(), compare_model: $("#compare-model").value };
  state.set(patch, { push: true, silent: true });
  if (source && source.tokens) render();
});

bindKeys({
  Escape: () => {
    if (!state.lock) return false;
    save({ lock: "" });
    renderHeadViewPanel();
    return true;
  },
  x: () => {
    if (!source || !source.tokens) return false;
    toggleAblation(currentSite(), state.layer, state.head);
    return true;
  },
});

state.subscribe((changed) => {
  // back / forward in history
  if (changed.some((k) => ["model", "text", "target", "ablate"].includes(k))) {
    ablateMode = defaultMode(state.ablate);
    run();
  } else if (source && source.tokens && changed.length) refresh();
});
onProjectorChange(() => render({ grid: true }));

const fname = (part) => `attnviz-${state.model}-${part}-L${state.layer}H${state.head}`;
/** "HTML (standalone)": this view of the model and sentence as one page that opens offline (built
 * by attnviz/page.py on the server, the same as attnviz.show in a notebook). */
const standalone = (view) => () => {
  if (state.ablate.length) {
    return Promise.reject(new Error("the standalone page shows the whole model: clear the ablation to export it"));
  }
  return api.standalonePage({
    model: state.model,
    text: state.text,
    ...(state.target ? { target: state.target } : {}),
    view,
    layer: state.layer,
    head: state.head,
    site: currentSite(),
  });
};

registerExport("heatmap", {
  filename: () => fname(state.show === "weights" ? "heatmap" : state.show),
  // the standalone page shows weights: scores, norms or rollout would not be what is on screen
  html: () =>
    state.show === "weights"
      ? standalone("heatmap")()
      : Promise.reject(new Error("the standalone page shows attention weights: pick weights α to export it")),
  plot: () => $("#heatmap"),
  figure: () => heatmap.canvas,
  data: () => {
    const site = currentSite();
    const { left, right } = axes(site);
    if (valuesUnavailable(site)) return { model: state.model, values: state.show, note: valuesUnavailable(site) };
    const z = shownMatrix(site, state.layer, state.head, state.show);
    const w = heatmap.canvas ? heatmap.canvas.window : null; // a canvas exports the window it shows
    return {
      model: state.model,
      text: state.text,
      site,
      layer: state.layer,
      head: state.head,
      values: state.show,
      ablate: ablateField(state.ablate) || [],
      attention_moved: state.ablate.length ? (source.changedOf(site, state.layer, state.head) ?? null) : null,
      hide_special: state.hide,
      window: w,
      queries: w ? left.slice(w.r0, w.r1) : left,
      keys: w ? right.slice(w.c0, w.c1) : right,
      matrix: w ? toNested(z, w.r0, w.r1, w.c0, w.c1) : toNested(z),
    };
  },
});
registerExport("headview", {
  filename: () => `attnviz-${state.model}-headview-L${state.layer}`,
  html: standalone("heads"),
  svg: () => headView && headView.toSVG(),
  data: () => {
    const site = currentSite();
    const { qKeep, kKeep, left, right } = axes(site);
    const heads = Array.from({ length: source.model.n_heads }, (_, h) => h).filter(
      (h) => !state.off.includes(h) && source.has(site, state.layer, h),
    );
    return {
      model: state.model,
      text: state.text,
      site,
      layer: state.layer,
      heads_shown: heads,
      queries: left,
      keys: right,
      attention: heads.map((h) =>
        toNested(selectMat(source.weightsOf(site, state.layer, h), qKeep, kKeep, { renorm: state.hide })),
      ),
    };
  },
});
registerExport("grid", {
  filename: () => `attnviz-${state.model}-all-heads`,
  html: standalone("grid"),
  svg: () => grid && grid.toSVG(),
  data: () => ({
    model: state.model,
    text: state.text,
    site: currentSite(),
    tokens: source.tokens,
    pooled: gridData ? gridData.pooled : null,
    block_edges: gridData && gridData.pooled ? gridData.edges : null,
    attention: gridData ? gridData.layers.map((heads) => heads.map((m) => toNested(m))) : [],
  }),
});

run();
