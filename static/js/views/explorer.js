// Explorer: tokens, head view, one-head heatmap, and the grid of every layer × head.

import * as api from "../lib/api.js";
import { SITE_LABEL, keepIndices, pickSite, siteMask, siteTokens, view } from "../lib/attn.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, afterPaint, clear, displayToken, el } from "../lib/dom.js";
import { initExports, registerExport } from "../lib/export.js";
import { renderGrid } from "../lib/grid.js";
import { renderHeadView } from "../lib/headview.js";
import { headColor } from "../lib/palette.js";
import { PICKER_STATE, attentionPickers } from "../lib/pickers.js";
import { tokenHeatmap } from "../lib/plots.js";
import { bindKeys, initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { bool, intList, str, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({
  ...INPUT_STATE,
  ...PICKER_STATE,
  off: intList([]), // heads switched off in the head view
  scores: bool(false),
  hide: bool(false),
  lock: str(""), // "q3" / "k5": a token locked in the head view (original position)
});

const status = $("#status");
// Our own changes are written silently; subscribers only hear back/forward navigation.
const save = (patch) => state.set(patch, { silent: true });
let data = null; // the last /attention response
const nextRequest = api.latestOnly();
let grid = null;
let runStarted = 0;
let timedThisRun = false;

const pickers = attentionPickers(state, {
  siteReset: { lock: "" },
  onChange: (key) => data && (key === "site" ? refresh() : render()),
});

const controls = await setupControls(state, {
  prefer: (m) => m.kind === "seq2seq",
  allowTarget: true,
  onRun: run,
  onModelChange: () => save({ site: "", layer: 0, head: 0, off: [], lock: "" }),
});

// ---------------------------------------------------------------------------------------
async function run() {
  const model = controls.current();
  if (!model) return;
  const signal = nextRequest();
  performance.mark("attnviz:run");
  runStarted = performance.now();
  timedThisRun = false;
  const include = ["scores", "masks"];
  const result = await withStatus(status, "Running the model…", () =>
    api.attentionOn(model, state, include, { signal }),
  );
  if (!result || signal.aborted) return;
  data = result;
  renderTokens();
  await refresh();
  modelSays(model, signal);
}

// What the model itself outputs for this sentence (after the heatmap: never delays it).
function probRows(items, chosen) {
  return items.map(({ label, prob }) => {
    const fill = el("div", { class: "prob-fill" });
    fill.style.width = `${Math.round(100 * prob)}%`;
    return el(
      "div",
      { class: `prob-row${label === chosen ? " top" : ""}` },
      el("span", { text: label }),
      el("div", { class: "prob-track" }, fill),
      el("span", { class: "p", text: prob.toFixed(3) }),
    );
  });
}

async function modelSays(model, signal) {
  const box = $("#model-says");
  clear(box);
  const blocks = [];
  try {
    if (model.kind === "encoder") {
      if (model.tasks.includes("classify") || (model.labels && model.labels.length)) {
        const c = await api.post("/classify", { model: model.id, text: state.text }, { signal });
        blocks.push(
          el(
            "div",
            { class: "says-block" },
            el("span", { class: "says-title", text: "Sentiment ([CLS] head)" }),
            probRows(c.labels, c.label),
          ),
        );
      }
      if (data.tokens.source.some((t) => t.text === "[MASK]")) {
        const f = await api.post("/fill-mask", { model: model.id, text: state.text, top_k: 5 }, { signal });
        for (const m of f.masks) {
          blocks.push(
            el(
              "div",
              { class: "says-block" },
              el("span", { class: "says-title", text: `[MASK] at position ${m.index}` }),
              probRows(
                m.predictions.map((p) => ({ label: displayToken(p.token), prob: p.prob })),
                displayToken(m.predictions[0].token),
              ),
            ),
          );
        }
      }
    } else if (model.kind === "decoder") {
      const g = await api.post("/generate", { model: model.id, text: state.text, max_new_tokens: 1 }, { signal });
      const top = g.steps[0].top.map((c) => ({ label: displayToken(c.text), prob: c.prob }));
      blocks.push(
        el(
          "div",
          { class: "says-block" },
          el("span", { class: "says-title", text: "Next token" }),
          probRows(top, top[0].label),
        ),
      );
    } else if (model.kind === "seq2seq") {
      const g = await api.post("/generate", { model: model.id, text: state.text, max_new_tokens: 48 }, { signal });
      const link = el("a", {
        href: `/decode?model=${encodeURIComponent(model.id)}&text=${encodeURIComponent(state.text)}`,
        text: "watch it decode step by step →",
      });
      blocks.push(
        el(
          "div",
          { class: "says-block" },
          el("span", { class: "says-title", text: "The model's translation (greedy)" }),
          el("span", { class: "says-text", text: g.output.text }),
          link,
        ),
      );
    }
  } catch (error) {
    if (error && error.name === "AbortError") return;
    showError(error);
    return;
  }
  if (!signal.aborted) box.replaceChildren(...blocks);
}

function renderTokens() {
  const box = $("#tokens");
  clear(box);
  const rows = [["source", data.tokens.source]];
  if (data.tokens.target) rows.push(["target", data.tokens.target]);
  for (const [label, tokens] of rows) {
    const row = el(
      "div",
      { class: "token-row" },
      el("span", { class: "token-row-label", text: rows.length > 1 ? label : "tokens" }),
    );
    tokens.forEach((t, i) => {
      const chars = Number.isInteger(t.start) ? ` · chars ${t.start}–${t.end}` : "";
      row.append(
        el(
          "span",
          {
            class: `token${t.special ? " special" : ""}`,
            title: `position ${i} · id ${t.id}${t.special ? " · special token" : ""}${chars}`,
          },
          el("span", { class: "tok-text", text: displayToken(t.text) }),
          el("span", { class: "tok-id", text: String(t.id) }),
        ),
      );
    });
    box.append(row);
  }
}

function currentSite() {
  return pickSite(data, state.site);
}

function setupSelectors() {
  const { heads } = pickers.fillFrom(data);
  $("#scores-toggle").checked = state.scores;
  $("#hide-special").checked = state.hide;
  $("#scores-toggle").disabled = !data.scores;
  renderHeadToggles(heads);
}

function renderHeadToggles(H) {
  const box = $("#head-toggles");
  clear(box);
  box.append(el("span", { class: "legend-inline", text: "heads:" }));
  for (let h = 0; h < H; h++) {
    const on = !state.off.includes(h);
    const button = el(
      "button",
      {
        type: "button",
        class: "head-toggle",
        "aria-pressed": String(on),
        "data-head": h,
        title: `show / hide head ${h}`,
      },
      el("span", { class: "dot", "aria-hidden": "true" }),
      `head ${h}`,
    );
    button.style.setProperty("--head", headColor(h));
    button.addEventListener("click", () => {
      const off = state.off.includes(h) ? state.off.filter((x) => x !== h) : [...state.off, h].sort((a, b) => a - b);
      save({ off });
      button.setAttribute("aria-pressed", String(!off.includes(h)));
      renderHeadViewPanel();
    });
    box.append(button);
  }
  const all = el("button", { type: "button", class: "head-toggle", text: "all", title: "show every head" });
  all.addEventListener("click", () => {
    save({ off: [] });
    for (const b of box.querySelectorAll("[data-head]")) b.setAttribute("aria-pressed", "true");
    renderHeadViewPanel();
  });
  box.append(all);
}

// ---------------------------------------------------------------------------------------
function axes(site) {
  const { queries, keys } = siteTokens(data, site);
  const qKeep = keepIndices(queries, state.hide);
  const kKeep = keepIndices(keys, state.hide);
  return { queries, keys, qKeep, kKeep, left: qKeep.map((i) => queries[i]), right: kKeep.map((i) => keys[i]) };
}

function renderHeadViewPanel() {
  const site = currentSite();
  const { qKeep, kKeep, left, right } = axes(site);
  const layerAtt = data.attention[site][state.layer];
  const weights = layerAtt.map((m) => view(m, qKeep, kKeep, { renorm: state.hide }));
  const active = weights.map((_, h) => !state.off.includes(h));
  let lock = null;
  const m = /^([qk])(\d+)$/.exec(state.lock);
  if (m) {
    const keep = m[1] === "q" ? qKeep : kKeep;
    const i = keep.indexOf(Number(m[2]));
    if (i >= 0) lock = { side: m[1], i };
  }
  const isCross = site === "decoder.cross";
  renderHeadView($("#head-view-wrap"), {
    left,
    right,
    weights,
    active,
    lock,
    leftTitle: isCross ? "French (query)" : "query",
    rightTitle: isCross ? "English (key)" : "key",
    onLock: (l) => save({ lock: l ? `${l.side}${(l.side === "q" ? left : right)[l.i].index}` : "" }),
  });
}

async function renderHeatmap() {
  const site = currentSite();
  const { queries, keys, qKeep, kKeep, left, right } = axes(site);
  const mask = siteMask(data, site, queries.length, keys.length);
  const useScores = state.scores && data.scores && data.scores[site];
  const source = useScores ? data.scores[site][state.layer][state.head] : data.attention[site][state.layer][state.head];
  let z = view(source, qKeep, kKeep, { renorm: state.hide && !useScores });
  if (mask) {
    const mk = view(mask, qKeep, kKeep, { renorm: false });
    z = z.map((row, i) => row.map((v, j) => (mk[i][j] ? v : null)));
  }
  const label = SITE_LABEL[site] || site;
  await tokenHeatmap($("#heatmap"), z, {
    rows: left,
    cols: right,
    title: `layer ${state.layer} · head ${state.head} · ${label}`,
    value: useScores ? "score (QKᵀ/√dₖ)" : state.hide ? "weight (renormalised)" : "weight",
    colorbarTitle: useScores ? "score" : "weight",
    diverging: !!useScores,
    zmin: useScores ? undefined : 0,
    zmax: useScores ? undefined : 1,
    yLabel: site === "decoder.cross" ? "French token (query)" : "query (attending)",
    xLabel: site === "decoder.cross" ? "English token (key)" : "key (attended to)",
  });
  const notes = [];
  if (mask && mask.some((row) => row.some((v) => !v)))
    notes.push("Grey cells are masked: the query may not attend there (−∞ before the softmax).");
  if (useScores) notes.push("Pre-softmax: QKᵀ/√dₖ, before the mask. Each row's softmax gives the weights.");
  if (state.hide)
    notes.push(useScores ? "Special tokens hidden." : "Special tokens hidden; each row renormalised to sum to 1.");
  $("#heatmap-note").textContent = notes.join(" ");
  $("#heatmap").dataset.layer = String(state.layer);
  $("#heatmap").dataset.head = String(state.head);
  if (!timedThisRun && runStarted) {
    timedThisRun = true;
    await afterPaint();
    performance.mark("attnviz:heatmap");
    performance.measure("attnviz:run-to-heatmap", "attnviz:run", "attnviz:heatmap");
  }
}

function renderGridPanel() {
  const site = currentSite();
  const { queries, keys, qKeep, kKeep } = axes(site);
  const att = data.attention[site].map((layer) => layer.map((m) => view(m, qKeep, kKeep, { renorm: state.hide })));
  const mask = siteMask(data, site, queries.length, keys.length);
  grid = renderGrid($("#grid"), {
    att,
    mask: mask ? view(mask, qKeep, kKeep, { renorm: false }) : null,
    selected: { layer: state.layer, head: state.head },
    onPick: (layer, head) => {
      save({ layer, head });
      $("#layer-select").value = String(layer);
      $("#head-select").value = String(head);
      render().then(() => $("#heatmap").scrollIntoView({ behavior: "smooth", block: "nearest" }));
    },
  });
}

/** Refill the pickers (a new response, a new site, back / forward), then draw. */
function refresh() {
  setupSelectors();
  return render();
}

async function render() {
  if (!data) return;
  const heat = renderHeatmap();
  renderHeadViewPanel();
  renderGridPanel();
  await heat;
}

// ---------------------------------------------------------------------------------------
$("#scores-toggle").addEventListener("change", (e) => {
  save({ scores: e.target.checked });
  renderHeatmap();
});
$("#hide-special").addEventListener("change", (e) => {
  save({ hide: e.target.checked });
  render();
});

bindKeys({
  Escape: () => {
    if (!state.lock) return false;
    save({ lock: "" });
    renderHeadViewPanel();
    return true;
  },
});

state.subscribe((changed) => {
  // back / forward in history
  if (changed.some((k) => ["model", "text", "target"].includes(k))) run();
  else if (data && changed.length) refresh();
});
onProjectorChange(() => render());

const fname = (part) => `attnviz-${state.model}-${part}-L${state.layer}H${state.head}`;
registerExport("heatmap", {
  filename: () => fname(state.scores ? "scores" : "heatmap"),
  plot: () => $("#heatmap"),
  data: () => {
    const site = currentSite();
    const { left, right } = axes(site);
    return {
      model: state.model,
      text: state.text,
      site,
      layer: state.layer,
      head: state.head,
      values: state.scores ? "scores" : "weights",
      hide_special: state.hide,
      queries: left,
      keys: right,
      matrix: $("#heatmap").data ? $("#heatmap").data[0].z : null,
    };
  },
});
registerExport("headview", {
  filename: () => `attnviz-${state.model}-headview-L${state.layer}`,
  svg: () => $("#head-view"),
  data: () => {
    const site = currentSite();
    const { qKeep, kKeep, left, right } = axes(site);
    return {
      model: state.model,
      text: state.text,
      site,
      layer: state.layer,
      heads_shown: data.attention[site][state.layer].map((_, h) => h).filter((h) => !state.off.includes(h)),
      queries: left,
      keys: right,
      attention: data.attention[site][state.layer].map((m) => view(m, qKeep, kKeep, { renorm: state.hide })),
    };
  },
});
registerExport("grid", {
  filename: () => `attnviz-${state.model}-all-heads`,
  svg: () => grid && grid.toSVG(),
  data: () => ({
    model: state.model,
    text: state.text,
    site: currentSite(),
    tokens: data.tokens,
    attention: data.attention[currentSite()],
  }),
});

run();
