// A heatmap on <canvas> for matrices too large for Plotly (past ~128 tokens a side; 2048 × 2048
// is 4 M cells): the cells are painted by a worker (workers/raster.js) at screen resolution,
// the axes and the colour bar here. bench/RESULTS.md has the measurements that chose it over
// Plotly's heatmap and image traces.
//
// Zoom and pan to a window of tokens: drag a box to zoom into it, shift + drag (or drag with
// the pan tool) to pan, ctrl + wheel to zoom at the pointer, double-click or "all" to see
// everything; the buttons do the same. On the keyboard (the heatmap takes focus): arrows move
// a cursor cell, whose query, key and value are read out; shift + arrows pan; + and − zoom
// around the cursor; 0 shows everything. Hovering a cell shows the two tokens and the value.

import { el } from "./dom.js";
import { LUT, MASKED_RGB } from "./palette.js";
import { isProjector } from "./shell.js";
import { tokenLabel } from "./tokens.js";

const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
const SANS = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif";
const INK = "#1b2130";
const MUTED = "#5b6475";
const LABEL_CHARS = 14; // longer token labels are cut with …
const MIN_SPAN = 4; // the smallest window, in cells per side

let worker = null;
let nextId = 1;
const waiting = new Map(); // `${id}:${seq}` -> resolve

function rasterWorker() {
  if (!worker) {
    // A classic worker (raster.js imports nothing): Chromium starts no module worker from a
    // blob: URL on a file:// page, which is how an exported page (attnviz/page.py) runs it.
    worker = new Worker(new URL("../workers/raster.js", import.meta.url));
    worker.onmessage = (event) => {
      const { id, seq, bitmap, error } = event.data;
      const resolve = waiting.get(`${id}:${seq}`);
      waiting.delete(`${id}:${seq}`);
      if (resolve) resolve(error ? null : bitmap);
      else if (bitmap) bitmap.close();
    };
  }
  return worker;
}

const clampInt = (x, lo, hi) => Math.max(lo, Math.min(hi, Math.round(x)));
const cut = (s) => (s.length > LABEL_CHARS ? `${s.slice(0, LABEL_CHARS - 1)}…` : s);
const niceStep = (raw) => [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => s >= raw) || 1000;

/** The label of an axis entry: a token's label, with its index when only some rows are labelled. */
function axisLabel(tokens, i, withIndex) {
  const t = tokens[i];
  const text = cut(t ? tokenLabel(t) + (t.special ? " ★" : "") : String(i));
  const index = String(t ? (t.index ?? i) : i);
  return withIndex && text !== index ? `${index} ${text}` : text;
}

/**
 * Mount a canvas heatmap in `container` (emptied). Returns a handle:
 *   draw(matrix, opts) shows a Mat {rows, cols, data} (NaN = masked, grey) with opts {rows,
 *     cols (token arrays for the axes), title, value ("weight" | "score" | …), diverging, zmin,
 *     zmax, rowTitle, colTitle, xLabel, yLabel, window {r0, r1, c0, c1}}; resolves once painted.
 *   window / setWindow(w) the cells shown; reset(); destroy();
 *   toBlob() a PNG of what is shown; onWindow(fn) is told every window change.
 */
export function canvasHeatmap(container) {
  const id = nextId++;
  let seq = 0;
  let mat = null;
  let opts = {};
  let win = null;
  let shown = null; // {bitmap, win}: the last painted cells, reused as a preview while panning
  let layout = null;
  let cursor = null; // keyboard cursor {i, j}
  let drag = null;
  let panMode = false;
  const windowListeners = new Set();

  const title = el("div", { class: "heat-title" });
  const windowText = el("span", { class: "heat-window" });
  const button = (text, label, onclick) =>
    el("button", { type: "button", class: "heat-tool", title: label, "aria-label": label, text, onclick });
  const panButton = button("pan", "Drag to pan (or hold shift while dragging)", () => {
    panMode = !panMode;
    panButton.setAttribute("aria-pressed", String(panMode));
  });
  panButton.setAttribute("aria-pressed", "false");
  const tools = el(
    "div",
    { class: "heat-tools", role: "group", "aria-label": "Zoom and pan" },
    button("+", "Zoom in (+)", () => zoomBy(0.5)),
    button("−", "Zoom out (−)", () => zoomBy(2)),
    button("all", "Show all tokens (0, or double-click)", () => reset()),
    panButton,
    windowText,
  );
  const canvas = el("canvas", { class: "heat-canvas", tabindex: 0, role: "img" });
  const tip = el("div", { class: "heat-tip", hidden: true });
  const stage = el("div", { class: "heat-stage" }, canvas, tip);
  const readout = el("p", { class: "heat-readout", "aria-live": "polite" });
  const note = el("p", { class: "heat-note" });
  container.replaceChildren(el("div", { class: "heat" }, title, tools, stage, readout, note));

  let laidOutWidth = 0;
  let laidOutFor = null; // what the layout was measured for
  let knownWidth = 0; // the container's width as the resize observer last saw it
  const resizer = new ResizeObserver((entries) => {
    knownWidth = entries[entries.length - 1].contentRect.width;
    if (mat && knownWidth !== laidOutWidth) {
      relayout();
      paint(true);
    }
  });
  resizer.observe(container);
  /** The container's width: the observer's (reading clientWidth would force a layout of the
   * page, whose other panels may have just changed). */
  const width = () => knownWidth || container.clientWidth;

  // -------------------------------------------------------------------------------------
  function fontPx() {
    return isProjector() ? 16 : 11;
  }

  function relayout() {
    const font = fontPx();
    const charW = font * 0.62;
    const widest = (tokens, n) => {
      let w = 3;
      const step = Math.max(1, Math.floor(n / 400)); // sample long axes: the width, not every label
      for (let i = 0; i < n; i += step) w = Math.max(w, axisLabel(tokens || [], i, true).length);
      return Math.min(LABEL_CHARS + 5, w);
    };
    const left = 28 + charW * widest(opts.rows, mat.rows);
    const bottom = 34 + charW * widest(opts.cols, mat.cols) * 0.87;
    const right = 78;
    const top = 8;
    const avail = Math.max(200, (width() || 700) - left - right);
    let plotW = avail;
    let plotH;
    if (opts.square) {
      plotH = Math.min(avail, opts.maxHeight || 720);
      plotW = plotH;
    } else {
      const cell = avail / mat.cols;
      plotH = Math.max(opts.minHeight || 180, Math.min(opts.maxHeight || 640, mat.rows * Math.max(cell, 3)));
    }
    const dpr = window.devicePixelRatio || 1;
    const cssW = Math.round(left + plotW + right);
    const cssH = Math.round(top + plotH + bottom);
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr); // (re)allocates the canvas: only when its size changes
      canvas.height = Math.round(cssH * dpr);
      canvas.style.width = `${cssW}px`;
      canvas.style.height = `${cssH}px`;
    }
    layout = { left, top, plotW, plotH, right, bottom, dpr, cssW, cssH, font };
    laidOutWidth = width();
    // where the cells are on the canvas, in CSS pixels (for scripts and the browser tests)
    container.dataset.plot = JSON.stringify({ left, top, w: plotW, h: plotH });
  }

  function cellAt(x, y) {
    const { left, top, plotW, plotH } = layout;
    if (x < left || y < top || x >= left + plotW || y >= top + plotH) return null;
    const i = Math.floor(win.r0 + ((y - top) / plotH) * (win.r1 - win.r0));
    const j = Math.floor(win.c0 + ((x - left) / plotW) * (win.c1 - win.c0));
    return { i: Math.min(mat.rows - 1, i), j: Math.min(mat.cols - 1, j) };
  }

  function describe({ i, j }) {
    const v = mat.data[i * mat.cols + j];
    const rowTok = axisLabel(opts.rows || [], i, false);
    const colTok = axisLabel(opts.cols || [], j, false);
    const ri = opts.rows && opts.rows[i] ? (opts.rows[i].index ?? i) : i;
    const cj = opts.cols && opts.cols[j] ? (opts.cols[j].index ?? j) : j;
    const value = Number.isNaN(v) ? "masked (−∞ before softmax)" : v.toFixed(4);
    return {
      lines: [
        `${opts.rowTitle || "query"}: ${rowTok} (${ri})`,
        `${opts.colTitle || "key"}: ${colTok} (${cj})`,
        `${opts.value || "weight"}: ${value}`,
      ],
      i,
      j,
      value: v,
    };
  }

  // -------------------------------------------------------------------------------------
  // painting: axes and colour bar here, the cells from the worker

  function paint(requestCells) {
    if (!layout) return Promise.resolve();
    const ctx = canvas.getContext("2d");
    const { dpr, cssW, cssH, left, top, plotW, plotH } = layout;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, cssW, cssH);
    drawCells(ctx);
    drawAxes(ctx);
    drawColourBar(ctx);
    if (drag && drag.box) {
      ctx.strokeStyle = "#e69f00";
      ctx.lineWidth = 2;
      ctx.setLineDash([5, 3]);
      const { x0, y0, x1, y1 } = drag.box;
      ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
      ctx.setLineDash([]);
    }
    if (cursor) {
      const cw = plotW / (win.c1 - win.c0);
      const ch = plotH / (win.r1 - win.r0);
      if (cursor.i >= win.r0 && cursor.i < win.r1 && cursor.j >= win.c0 && cursor.j < win.c1) {
        ctx.strokeStyle = "#e69f00";
        ctx.lineWidth = 2;
        ctx.strokeRect(
          left + (cursor.j - win.c0) * cw,
          top + (cursor.i - win.r0) * ch,
          Math.max(cw, 3),
          Math.max(ch, 3),
        );
      }
    }
    windowText.textContent =
      `${opts.rowTitle || "query"} ${win.r0}–${win.r1 - 1} · ${opts.colTitle || "key"} ${win.c0}–${win.c1 - 1}` +
      ` of ${mat.rows} × ${mat.cols}`;
    container.dataset.window = `${win.r0},${win.r1},${win.c0},${win.c1}`;
    const perPixel = Math.max((win.r1 - win.r0) / (plotH * dpr), (win.c1 - win.c0) / (plotW * dpr));
    note.textContent =
      perPixel > 1
        ? `Zoomed out: each pixel shows the largest ${opts.value || "value"} among the ` +
          `${Math.ceil(perPixel)} × ${Math.ceil(perPixel)} cells it covers; zoom in for single cells.`
        : "";
    return requestCells ? requestRender() : Promise.resolve();
  }

  function drawCells(ctx) {
    const { left, top, plotW, plotH } = layout;
    ctx.fillStyle = `rgb(${MASKED_RGB.join(",")})`;
    ctx.fillRect(left, top, plotW, plotH);
    if (!shown) return;
    // the last painted window, placed where it falls in the current one (a preview while the
    // worker paints the new window; exact once it has)
    const sx = (c) => left + ((c - win.c0) / (win.c1 - win.c0)) * plotW;
    const sy = (r) => top + ((r - win.r0) / (win.r1 - win.r0)) * plotH;
    const w = shown.win;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, plotW, plotH);
    ctx.clip();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(shown.bitmap, sx(w.c0), sy(w.r0), sx(w.c1) - sx(w.c0), sy(w.r1) - sy(w.r0));
    ctx.restore();
  }

  function drawAxes(ctx) {
    const { left, top, plotW, plotH, font } = layout;
    ctx.font = `${font}px ${MONO}`;
    ctx.fillStyle = INK;
    // rows
    const nr = win.r1 - win.r0;
    const ch = plotH / nr;
    const rowStep = niceStep(Math.ceil((font + 3) / ch));
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = Math.ceil(win.r0 / rowStep) * rowStep; i < win.r1; i += rowStep) {
      const t = opts.rows && opts.rows[i];
      ctx.fillStyle = t && t.special ? "#8a5a9e" : INK;
      ctx.fillText(axisLabel(opts.rows || [], i, rowStep > 1), left - 6, top + (i - win.r0 + 0.5) * ch);
    }
    // columns, rotated
    const nc = win.c1 - win.c0;
    const cw = plotW / nc;
    const colStep = niceStep(Math.ceil((font + 3) / cw));
    ctx.textAlign = "right";
    for (let j = Math.ceil(win.c0 / colStep) * colStep; j < win.c1; j += colStep) {
      const t = opts.cols && opts.cols[j];
      ctx.fillStyle = t && t.special ? "#8a5a9e" : INK;
      ctx.save();
      ctx.translate(left + (j - win.c0 + 0.5) * cw, top + plotH + 6);
      ctx.rotate(-Math.PI / 3);
      ctx.fillText(axisLabel(opts.cols || [], j, colStep > 1), 0, 0);
      ctx.restore();
    }
    // axis titles
    ctx.fillStyle = MUTED;
    ctx.font = `${font}px ${SANS}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(opts.xLabel || "key (attended to)", left, layout.cssH - 4);
    ctx.save();
    ctx.translate(10, top + plotH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText(opts.yLabel || "query (attending)", 0, -6);
    ctx.restore();
  }

  function drawColourBar(ctx) {
    const { left, top, plotW, plotH, font } = layout;
    const lut = opts.diverging ? LUT.diverging : LUT.sequential;
    const x = left + plotW + 14;
    const h = Math.min(plotH, 320);
    for (let k = 0; k < h; k++) {
      const idx = Math.round((1 - k / (h - 1)) * 255) * 4;
      ctx.fillStyle = `rgb(${lut[idx]},${lut[idx + 1]},${lut[idx + 2]})`;
      ctx.fillRect(x, top + k, 14, 1);
    }
    ctx.fillStyle = INK;
    ctx.font = `${font}px ${SANS}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const fmtTick = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
    ctx.fillText(fmtTick(opts.zmax), x + 18, top + 4);
    ctx.fillText(fmtTick((opts.zmax + opts.zmin) / 2), x + 18, top + h / 2);
    ctx.fillText(fmtTick(opts.zmin), x + 18, top + h - 4);
    ctx.fillStyle = MUTED;
    ctx.textBaseline = "top";
    ctx.fillText(cut(opts.colorbarTitle || opts.value || ""), x - 4, top + h + 6);
  }

  let painted = null;
  function requestRender() {
    const { plotW, plotH, dpr } = layout;
    const width = Math.max(1, Math.min(4096, Math.round(plotW * dpr)));
    const height = Math.max(1, Math.min(4096, Math.round(plotH * dpr)));
    const mySeq = ++seq;
    const w = { ...win };
    rasterWorker().postMessage({ type: "render", id, seq: mySeq, ...w, width, height });
    painted = new Promise((resolve) => waiting.set(`${id}:${mySeq}`, resolve)).then((bitmap) => {
      if (!bitmap) return;
      if (mySeq !== seq) {
        bitmap.close(); // a newer window is on its way
        return;
      }
      if (shown) shown.bitmap.close();
      shown = { bitmap, win: w };
      paint(false);
      container.dataset.painted = `${w.r0},${w.r1},${w.c0},${w.c1}`; // the cells are on screen
    });
    return painted;
  }

  // -------------------------------------------------------------------------------------
  // the window

  /** A window clamped to the matrix, at least MIN_SPAN cells a side (whole cells). */
  function clampWindow(next) {
    const spanR = Math.max(Math.min(MIN_SPAN, mat.rows), Math.min(mat.rows, Math.round(next.r1 - next.r0)));
    const spanC = Math.max(Math.min(MIN_SPAN, mat.cols), Math.min(mat.cols, Math.round(next.c1 - next.c0)));
    const r0 = clampInt(next.r0, 0, mat.rows - spanR);
    const c0 = clampInt(next.c0, 0, mat.cols - spanC);
    return { r0, r1: r0 + spanR, c0, c1: c0 + spanC };
  }

  function setWindow(next, { silent = false } = {}) {
    const w = clampWindow(next);
    if (win && w.r0 === win.r0 && w.r1 === win.r1 && w.c0 === win.c0 && w.c1 === win.c1) return Promise.resolve();
    win = w;
    const done = paint(true);
    if (!silent) for (const fn of windowListeners) fn({ ...win });
    return done;
  }

  function zoomBy(factor, at = null) {
    const ci = at ? at.i + 0.5 : (win.r0 + win.r1) / 2;
    const cj = at ? at.j + 0.5 : (win.c0 + win.c1) / 2;
    const fr = at ? (ci - win.r0) / (win.r1 - win.r0) : 0.5;
    const fc = at ? (cj - win.c0) / (win.c1 - win.c0) : 0.5;
    const nr = (win.r1 - win.r0) * factor;
    const nc = (win.c1 - win.c0) * factor;
    return setWindow({ r0: ci - fr * nr, r1: ci - fr * nr + nr, c0: cj - fc * nc, c1: cj - fc * nc + nc });
  }

  function reset() {
    return setWindow({ r0: 0, r1: mat.rows, c0: 0, c1: mat.cols });
  }

  function pan(di, dj) {
    return setWindow({ r0: win.r0 + di, r1: win.r1 + di, c0: win.c0 + dj, c1: win.c1 + dj });
  }

  // -------------------------------------------------------------------------------------
  // pointer and keyboard

  const local = (event) => {
    const box = canvas.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  };

  function showTip(cell, x, y) {
    if (!cell) {
      tip.hidden = true;
      return;
    }
    const d = describe(cell);
    tip.replaceChildren(...d.lines.map((line) => el("div", { text: line })));
    tip.hidden = false;
    const maxX = layout.cssW - tip.offsetWidth - 4;
    tip.style.left = `${Math.max(0, Math.min(maxX, x + 14))}px`;
    tip.style.top = `${Math.max(0, y + 14)}px`;
    container.dataset.hover = `${d.i},${d.j}`;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!mat || event.button !== 0) return;
    const p = local(event);
    if (!cellAt(p.x, p.y)) return;
    canvas.setPointerCapture(event.pointerId);
    drag = { x0: p.x, y0: p.y, pan: panMode || event.shiftKey, start: { ...win }, moved: false };
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!mat) return;
    const p = local(event);
    if (!drag) {
      showTip(cellAt(p.x, p.y), p.x, p.y);
      return;
    }
    if (Math.abs(p.x - drag.x0) + Math.abs(p.y - drag.y0) > 4) drag.moved = true;
    if (!drag.moved) return;
    tip.hidden = true;
    if (drag.pan) {
      const s = drag.start;
      const di = -((p.y - drag.y0) / layout.plotH) * (s.r1 - s.r0);
      const dj = -((p.x - drag.x0) / layout.plotW) * (s.c1 - s.c0);
      setWindow({ r0: s.r0 + di, r1: s.r1 + di, c0: s.c0 + dj, c1: s.c1 + dj });
    } else {
      const { left, top, plotW, plotH } = layout;
      const clampX = (x) => Math.max(left, Math.min(left + plotW, x));
      const clampY = (y) => Math.max(top, Math.min(top + plotH, y));
      drag.box = { x0: drag.x0, y0: drag.y0, x1: clampX(p.x), y1: clampY(p.y) };
      paint(false);
    }
  });
  canvas.addEventListener("pointerup", () => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.box) {
      const a = cellAt(Math.min(d.box.x0, d.box.x1), Math.min(d.box.y0, d.box.y1));
      const b = cellAt(Math.max(d.box.x0, d.box.x1) - 1, Math.max(d.box.y0, d.box.y1) - 1);
      if (a && b) setWindow({ r0: a.i, r1: b.i + 1, c0: a.j, c1: b.j + 1 });
      else paint(false);
    }
  });
  canvas.addEventListener("pointerleave", () => {
    tip.hidden = true;
  });
  canvas.addEventListener("dblclick", () => mat && reset());
  canvas.addEventListener(
    "wheel",
    (event) => {
      if (!mat || !(event.ctrlKey || event.metaKey)) return; // plain wheel scrolls the page
      event.preventDefault();
      const p = local(event);
      zoomBy(event.deltaY > 0 ? 1.25 : 0.8, cellAt(p.x, p.y));
    },
    { passive: false },
  );

  function moveCursor(di, dj) {
    const c = cursor || { i: win.r0, j: win.c0 };
    cursor = { i: clampInt(c.i + di, 0, mat.rows - 1), j: clampInt(c.j + dj, 0, mat.cols - 1) };
    // keep the cursor in view
    const next = { ...win };
    if (cursor.i < win.r0) Object.assign(next, { r0: cursor.i, r1: cursor.i + (win.r1 - win.r0) });
    if (cursor.i >= win.r1) Object.assign(next, { r1: cursor.i + 1, r0: cursor.i + 1 - (win.r1 - win.r0) });
    if (cursor.j < win.c0) Object.assign(next, { c0: cursor.j, c1: cursor.j + (win.c1 - win.c0) });
    if (cursor.j >= win.c1) Object.assign(next, { c1: cursor.j + 1, c0: cursor.j + 1 - (win.c1 - win.c0) });
    setWindow(next);
    paint(false);
    readout.textContent = describe(cursor).lines.join(" · ");
  }

  canvas.addEventListener("keydown", (event) => {
    if (!mat || event.ctrlKey || event.metaKey || event.altKey) return;
    const arrows = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    let handled = true;
    if (arrows[event.key]) {
      const [di, dj] = arrows[event.key];
      if (event.shiftKey) pan(di * Math.max(1, (win.r1 - win.r0) / 4), dj * Math.max(1, (win.c1 - win.c0) / 4));
      else moveCursor(di, dj);
    } else if (event.key === "+" || event.key === "=") zoomBy(0.5, cursor);
    else if (event.key === "-" || event.key === "_") zoomBy(2, cursor);
    else if (event.key === "0" || event.key === "Home") reset();
    else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  });
  canvas.addEventListener("blur", () => {
    cursor = null;
    if (mat) paint(false);
  });

  // -------------------------------------------------------------------------------------
  return {
    /** Show a matrix; resolves once its cells are painted. */
    draw(matrix, options) {
      const sameShape = mat && matrix.rows === mat.rows && matrix.cols === mat.cols;
      mat = matrix;
      const diverging = Boolean(options.diverging);
      let { zmin, zmax } = options;
      if (zmin === undefined || zmax === undefined) {
        let m = 0;
        for (let k = 0; k < matrix.data.length; k++) {
          const v = Math.abs(matrix.data[k]);
          if (v > m) m = v;
        }
        zmin = diverging ? -m || -1 : 0;
        zmax = m || 1;
      }
      opts = { ...options, zmin, zmax };
      tip.hidden = true; // it described the matrix before
      title.textContent = options.title || "";
      canvas.setAttribute(
        "aria-label",
        `${options.title || "heatmap"}: ${matrix.rows} × ${matrix.cols} ${options.value || "values"}. ` +
          "Arrow keys move a cursor cell, shift + arrows pan, + and − zoom, 0 shows everything.",
      );
      const values = matrix.data.slice(); // the worker's own copy, handed over without a second one
      rasterWorker().postMessage(
        {
          type: "set",
          id,
          rows: matrix.rows,
          cols: matrix.cols,
          values,
          lut: diverging ? LUT.diverging : LUT.sequential,
          zmin,
          zmax,
          masked: MASKED_RGB,
        },
        [values.buffer],
      );
      const full = { r0: 0, r1: matrix.rows, c0: 0, c1: matrix.cols };
      win = clampWindow(options.window || (sameShape && win ? win : full));
      cursor = cursor && cursor.i < matrix.rows && cursor.j < matrix.cols ? cursor : null;
      if (!sameShape && shown) {
        shown.bitmap.close();
        shown = null; // another shape: the old cells would be no preview
      }
      // the margins follow the labels and the fonts (projector mode): measured again when they change
      const key = [matrix.rows, matrix.cols, fontPx(), options.rows, options.cols, options.square];
      if (!layout || !laidOutFor || key.some((v, i) => v !== laidOutFor[i])) {
        relayout();
        laidOutFor = key;
      }
      return paint(true);
    },
    get window() {
      return win ? { ...win } : null;
    },
    setWindow: (w) => (mat ? setWindow(w) : Promise.resolve()),
    reset: () => (mat ? reset() : Promise.resolve()),
    zoomBy,
    onWindow(fn) {
      windowListeners.add(fn);
    },
    /** The painted figure as a PNG Blob (what is shown: the window, its axes, the colour bar). */
    toBlob() {
      return new Promise((resolve, reject) =>
        canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("PNG encoding failed"))), "image/png"),
      );
    },
    /** An <svg> holding the painted figure (its pixels as an image). */
    toSVG() {
      const url = canvas.toDataURL("image/png");
      const ns = "http://www.w3.org/2000/svg";
      const root = document.createElementNS(ns, "svg");
      root.setAttribute("width", String(layout.cssW));
      root.setAttribute("height", String(layout.cssH));
      root.setAttribute("viewBox", `0 0 ${layout.cssW} ${layout.cssH}`);
      const image = document.createElementNS(ns, "image");
      image.setAttribute("href", url);
      image.setAttribute("width", String(layout.cssW));
      image.setAttribute("height", String(layout.cssH));
      root.append(image);
      return root;
    },
    destroy() {
      resizer.disconnect();
      if (shown) shown.bitmap.close();
      rasterWorker().postMessage({ type: "drop", id });
      container.replaceChildren();
      delete container.dataset.window;
      delete container.dataset.hover;
      delete container.dataset.plot;
      delete container.dataset.painted;
    },
    get painted() {
      return painted;
    },
  };
}
