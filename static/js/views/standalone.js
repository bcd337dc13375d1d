// The view of a notebook output (attnviz.show) and of an exported page (attnviz export): one
// /attention answer carried in the page, drawn with the explorer's components (head view,
// layers × heads grid, canvas heatmap) and nothing fetched. attnviz/page.py inlines this module
// and the ones it imports; static/js/standalone-loader.js runs it.
//
// page: {view: "heads" | "grid" | "heatmap" | "explorer", site, layer, head (what to show
// first), model, input, version, answer (the f16 /attention answer)}.

import { SITE_LABEL, pickSite, siteTokens, sitesOf } from "../lib/attn.js";
import { el } from "../lib/dom.js";
import { headSwatch, renderGrid } from "../lib/grid.js";
import { renderHeadView } from "../lib/headview.js";
import { headStyle } from "../lib/palette.js";
import { canvasHeatmap } from "../lib/heatcanvas.js";
import { fromBase64, selectMat } from "../lib/tensor.js";
import { labelTokens } from "../lib/tokens.js";

const PANELS = {
  heads: ["heads"],
  grid: ["grid"],
  heatmap: ["heatmap"],
  explorer: ["heads", "heatmap", "grid"], // side by side where there is room, the grid below
};

function select(label, options, value, onChange) {
  const node = el(
    "select",
    { "aria-label": label, onchange: () => onChange(node.value) },
    options.map(([v, text]) => el("option", { value: v, text, selected: String(v) === String(value) })),
  );
  return el("label", { class: "picker" }, `${label} `, node);
}

/** Mount the page's view in `root`; resolves once every panel is drawn. */
export async function mount(root, page) {
  const answer = page.answer;
  const tokens = {
    source: labelTokens(answer.tokens.source),
    ...(answer.tokens.target ? { target: labelTokens(answer.tokens.target) } : {}),
  };
  const data = { ...answer, tokens };
  const sites = sitesOf(data);
  const tensors = Object.fromEntries(sites.map((s) => [s, fromBase64(answer.attention[s])]));
  const masks = answer.masks || {};
  const panels = PANELS[page.view];
  const state = {
    site: pickSite(sites, page.site),
    layer: answer.layers.includes(page.layer) ? page.layer : answer.layers[0],
    head: answer.heads.includes(page.head) ? page.head : answer.heads[0],
    active: answer.heads.map(() => true),
  };
  const depth = (site) => tensors[site].shape[0];
  const matrix = (site, layer, head) => tensors[site].matrix(answer.layers.indexOf(layer), answer.heads.indexOf(head));

  const header = el(
    "p",
    { class: "attnviz-about" },
    el("strong", { text: "attnviz" }),
    ` ${page.version} · model `,
    el("code", { class: "attnviz-model", text: page.model }),
    " · input ",
    el("q", { class: "attnviz-input", text: page.input }),
  );
  const controls = el("div", { class: "attnviz-controls", role: "group", "aria-label": "What to show" });
  const boxes = Object.fromEntries(
    panels.map((p) => [p, el("div", { class: `attnviz-panel attnviz-${p}`, "data-panel": p })]),
  );
  root.replaceChildren(header, controls, el("div", { class: "attnviz-panels" }, ...panels.map((p) => boxes[p])));

  let heat = null;
  function drawControls() {
    const parts = [];
    if (sites.length > 1) {
      parts.push(
        select(
          "attention",
          sites.map((s) => [s, SITE_LABEL[s] || s]),
          state.site,
          (s) => {
            state.site = s;
            state.layer = Math.min(state.layer, depth(s) - 1);
            redraw();
          },
        ),
      );
    }
    if (panels.includes("heads") || panels.includes("heatmap")) {
      const layers = answer.layers.filter((_, i) => i < depth(state.site));
      parts.push(
        select(
          "layer",
          layers.map((l) => [l, String(l)]),
          state.layer,
          (v) => {
            state.layer = Number(v);
            redraw();
          },
        ),
      );
    }
    if (panels.includes("heatmap")) {
      parts.push(
        select(
          "head",
          answer.heads.map((h) => [h, String(h)]),
          state.head,
          (v) => {
            state.head = Number(v);
            redraw();
          },
        ),
      );
    }
    if (panels.includes("heads")) {
      const toggles = answer.heads.map((h, k) => {
        const b = el(
          "button",
          { type: "button", class: "head-toggle", "aria-pressed": String(state.active[k]), "data-head": h },
          headSwatch(h),
          ` ${h}`,
        );
        b.style.setProperty("--head", headStyle(h).color);
        b.addEventListener("click", () => {
          state.active[k] = !state.active[k];
          redraw();
        });
        return b;
      });
      parts.push(el("span", { class: "head-toggles", role: "group", "aria-label": "Heads shown" }, toggles));
    }
    controls.replaceChildren(...parts);
  }

  function drawHeads() {
    const { queries, keys } = siteTokens(data, state.site);
    const wrap = el("div", { class: "head-view-wrap" });
    boxes.heads.replaceChildren(wrap);
    const view = renderHeadView(wrap, {
      left: queries,
      right: keys,
      weights: answer.heads.map((h) => matrix(state.site, state.layer, h)),
      active: state.active,
      lock: null,
      topk: queries.length > 64 ? 3 : 0,
      leftTitle: state.site === "decoder.cross" ? "query (target)" : "query",
      rightTitle: state.site === "decoder.cross" ? "key (source)" : "key",
    });
    view.node.id = `${root.id}-head-view`; // unique: several outputs share a notebook
  }

  function drawGrid() {
    const site = state.site;
    const mask = masks[site];
    renderGrid(boxes.grid, {
      layers: Array.from({ length: depth(site) }, (_, li) =>
        answer.heads.map((h) => matrix(site, answer.layers[li], h)),
      ),
      masked: mask ? (i, j) => mask[i][j] === 0 : null,
      selected: panels.includes("heatmap") ? { layer: state.layer, head: state.head } : null,
      onPick: (l, h) => {
        if (!panels.includes("heatmap") && !panels.includes("heads")) return;
        state.layer = answer.layers[l];
        state.head = h;
        redraw();
      },
      note: "Every layer × head; click one to show it.",
    });
  }

  function drawHeatmap() {
    const { queries, keys } = siteTokens(data, state.site);
    const m = matrix(state.site, state.layer, state.head);
    const mask = masks[state.site];
    const all = (n) => Array.from({ length: n }, (_, i) => i);
    const z = selectMat(m, all(m.rows), all(m.cols), { masked: mask ? (i, j) => mask[i][j] === 0 : null });
    if (!heat) {
      const box = el("div", { class: "attnviz-heat" });
      boxes.heatmap.replaceChildren(box);
      heat = canvasHeatmap(box);
    }
    const box = boxes.heatmap.firstChild;
    Object.assign(box.dataset, { site: state.site, layer: String(state.layer), head: String(state.head) });
    return heat.draw(z, {
      rows: queries,
      cols: keys,
      title: `layer ${state.layer} · head ${state.head} · ${SITE_LABEL[state.site] || state.site}`,
      value: "weight",
      colorbarTitle: "weight",
      zmin: 0,
      zmax: 1,
      square: true,
      maxHeight: 520,
      yLabel: "query (attending)",
      xLabel: "key (attended to)",
    });
  }

  async function redraw() {
    root.dataset.drawn = "false";
    drawControls();
    if (panels.includes("heads")) drawHeads();
    if (panels.includes("grid")) drawGrid();
    if (panels.includes("heatmap")) await drawHeatmap();
    root.dataset.drawn = "true";
  }
  await redraw();
}
