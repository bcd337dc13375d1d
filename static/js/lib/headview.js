// The head view (after BertViz): queries on the left, keys on the right, one line per
// (query, key) pair and head, coloured per head (lib/palette.js headStyle: hue and dash),
// opacity = attention weight. Hover a token to isolate its lines; click (or Enter) to lock; Esc
// unlocks; ↑ ↓ move between tokens.
//
// Long inputs: each query draws its `topk` strongest lines per head, and only the rows that
// are scrolled into view (plus a margin) exist in the page: the SVG is as tall as every row,
// the window of rows is redrawn as it scrolls. 2048 tokens × 12 heads never become 50 M lines.
// Built with createElementNS; token text goes in through textContent only.

import { svg } from "./dom.js";
import { standaloneSVG } from "./export.js";
import { headStyle } from "./palette.js";
import { isProjector } from "./shell.js";
import { topRow } from "./tensor.js";
import { tokenLabel } from "./tokens.js";

const MIN_WEIGHT = 0.01; // lines fainter than this are not drawn
const OVERSCAN = 12; // rows drawn above and below the visible ones
const HEADS_PER_TASK = 4; // a long input's lines are drawn this many heads at a time
/** Up to this many rows a side, every row is drawn at once (no windowing). */
export const ALL_ROWS = 80;

function textWidth(tokens, px) {
  let w = 3;
  for (const t of tokens) w = Math.max(w, tokenLabel(t).length + (t.special ? 2 : 0));
  return Math.min(w, 24) * px;
}

/**
 * left, right: tokens [{text, special, index, label}]; weights: per head a Mat (queries ×
 * keys, lib/tensor.js) or null when that head is not loaded; active: boolean per head;
 * topk: lines per query and head (0: all above 1 %); lock: {side: "q"|"k", i} or null;
 * onLock(lockOrNull). `scroller`: the element that scrolls (default: the container).
 * Returns {node, lineCount(), unlock(), toSVG()}.
 */
export function renderHeadView(
  container,
  { left, right, weights, active, lock, onLock, topk = 0, leftTitle = "query", rightTitle = "key", scroller = null },
) {
  const big = isProjector();
  const rowH = big ? 32 : 24;
  const charW = big ? 11.5 : 8.6;
  const pad = 10;
  const titleH = 26;
  const gap = big ? 260 : 200;
  const leftW = Math.max(textWidth(left, charW), leftTitle.length * charW * 0.85) + 14;
  const rightW = Math.max(textWidth(right, charW), rightTitle.length * charW * 0.85) + 14;
  const x1 = pad + leftW + 6;
  const x2 = x1 + gap;
  const width = x2 + 6 + rightW + pad;
  const nRows = Math.max(left.length, right.length);
  const height = titleH + nRows * rowH + pad;
  const yOf = (i) => titleH + i * rowH + rowH / 2;
  const x1s = String(x1);
  const x2s = String(x2);
  const windowed = nRows > ALL_ROWS;
  const k = topk > 0 ? topk : Number.POSITIVE_INFINITY;
  const scrollBox = scroller || container;
  // read before the page changes below (reading after would force a layout of the new drawing)
  const initialView = { top: scrollBox.scrollTop, height: scrollBox.clientHeight };

  const root = svg("svg", {
    class: "head-view",
    id: "head-view",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "group", // not "img": its tokens are buttons, and an image has no controls inside
    "aria-label":
      "Head view: lines from each query token to the key tokens it attends to" +
      (windowed ? ` (${left.length} queries; the rows in view are drawn as you scroll)` : ""),
    "data-windowed": String(windowed),
  });
  root.append(
    svg("text", { class: "col-title", x: x1 - 6, y: 16, "text-anchor": "end", text: leftTitle }),
    svg("text", { class: "col-title", x: x2 + 6, y: 16, "text-anchor": "start", text: rightTitle }),
  );
  const lineLayer = svg("g", { class: "lines", "pointer-events": "none" }); // never hit-tested
  const tokenLayer = svg("g", { class: "tokens" });
  root.append(lineLayer, tokenLayer);
  const heads = weights.map((_, h) => h).filter((h) => active[h] && weights[h]);

  let lines = [];
  let tokGroups = { q: new Map(), k: new Map() };
  let bars = { q: new Map(), k: new Map() };
  let range = null; // rows drawn: [from, to)
  let locked =
    lock && ((lock.side === "q" && lock.i < left.length) || (lock.side === "k" && lock.i < right.length)) ? lock : null;
  let focus = null;

  let drawing = 0; // the drawing of lines under way: a newer one stops an older one
  /**
   * The lines of the queries [from, to), head by head. A long input's heads are drawn a few at a
   * time, each batch in its own task, so that ~1500 new lines never make one long task.
   */
  function drawLines(from, to) {
    const mine = ++drawing;
    lines = [];
    lineLayer.replaceChildren();
    const sw = big ? 3 : 2;
    const NS = "http://www.w3.org/2000/svg";
    const batch = windowed ? HEADS_PER_TASK : heads.length;
    const drawHeads = (start) => {
      if (mine !== drawing || !root.isConnected) return;
      const groups = [];
      for (const h of heads.slice(start, start + batch)) {
        const style = headStyle(h);
        // what every line of a head shares sits on its group: a line sets only its ends and weight
        const g = svg("g", {
          class: `head head-${h}`,
          "data-head": h,
          stroke: style.color,
          "stroke-width": sw,
          "stroke-dasharray": style.dash,
        });
        const w = weights[h];
        for (let q = from; q < Math.min(to, left.length); q++) {
          const y1 = String(yOf(q));
          for (const { j, v } of topRow(w, q, k, MIN_WEIGHT)) {
            const line = document.createElementNS(NS, "line");
            line.setAttribute("x1", x1s);
            line.setAttribute("y1", y1);
            line.setAttribute("x2", x2s);
            line.setAttribute("y2", String(yOf(j)));
            line.setAttribute("stroke-opacity", Math.min(1, v).toFixed(3));
            g.append(line);
            lines.push({ node: line, q, k: j, h, a: v, shown: true });
          }
        }
        groups.push(g);
      }
      lineLayer.append(...groups);
      apply(locked || focus);
      if (start + batch < heads.length) setTimeout(() => drawHeads(start + batch), 0);
      else root.dataset.drawn = "true";
    };
    root.dataset.drawn = "false";
    drawHeads(0);
  }

  function tokenGroup(t, i, side) {
    const isLeft = side === "q";
    const label = tokenLabel(t);
    const g = svg("g", {
      class: `tok${t.cont ? " cont" : ""}`,
      tabindex: 0,
      role: "button",
      "aria-label": `${isLeft ? leftTitle : rightTitle} token ${i}: ${label}${t.special ? " (special)" : ""}`,
      "data-side": side,
      "data-i": i,
    });
    const bx = isLeft ? pad : x2 + 2;
    const bw = isLeft ? leftW : rightW;
    const y = yOf(i) - rowH / 2 + 2;
    const bar = svg("rect", { class: "bar", x: bx, y, width: bw, height: rowH - 4, rx: 4, fill: "#0072B2" });
    bar.setAttribute("fill-opacity", "0");
    const hl = svg("rect", { class: "hl", x: bx, y, width: bw, height: rowH - 4, rx: 4 });
    const text = svg("text", {
      x: isLeft ? x1 - 8 : x2 + 8,
      y: yOf(i),
      "text-anchor": isLeft ? "end" : "start",
      "dominant-baseline": "central",
      class: t.special ? "special" : null,
      text: label,
    });
    const title = svg("title", {
      text: `${label}  (position ${t.index ?? i}, id ${t.id ?? "?"})${t.special ? " — special token" : ""}`,
    });
    g.append(hl, bar, text, title);
    tokGroups[side].set(i, g);
    bars[side].set(i, bar);
    return g;
  }

  /** Draw the rows [from, to): their tokens on both sides and the lines of their queries. */
  function drawRows(from, to) {
    range = [from, to];
    tokGroups = { q: new Map(), k: new Map() };
    bars = { q: new Map(), k: new Map() };
    const nodes = [];
    for (let i = from; i < Math.min(to, left.length); i++) nodes.push(tokenGroup(left[i], i, "q"));
    for (let i = from; i < Math.min(to, right.length); i++) nodes.push(tokenGroup(right[i], i, "k"));
    drawLines(from, to);
    tokenLayer.replaceChildren(...nodes);
    apply(locked || focus);
  }

  /** How far the drawing's top has scrolled above the scrolling box's top, in px (the drawing
   * is the first thing in its scrolling box: its scrollTop; no layout is measured). */
  const scrolledBy = () => scrollBox.scrollTop;

  /** The rows in view of the scrolling box, with a margin; `view`: {top, height} when known. */
  function visibleRows(view = null) {
    if (!windowed) return [0, nRows];
    const top = Math.max(0, view ? view.top : scrolledBy());
    const height = (view ? view.height : scrollBox.clientHeight) || 600;
    const first = Math.max(0, Math.floor((top - titleH) / rowH) - OVERSCAN);
    const last = Math.min(nRows, Math.ceil((top + height - titleH) / rowH) + OVERSCAN);
    return [first, Math.max(first + 1, last)];
  }

  function apply(target) {
    for (const l of lines) {
      const show = !target || (target.side === "q" ? l.q === target.i : l.k === target.i);
      if (show !== l.shown) {
        l.node.style.display = show ? "" : "none";
        l.shown = show;
      }
    }
    // weight bars on the other side: the mean over the active heads
    for (const side of ["q", "k"]) for (const b of bars[side].values()) b.setAttribute("fill-opacity", "0");
    if (target && heads.length) {
      const other = target.side === "q" ? "k" : "q";
      const color = heads.length === 1 ? headStyle(heads[0]).color : "#1b2130";
      for (const [j, bar] of bars[other]) {
        let s = 0;
        for (const h of heads) {
          const w = weights[h];
          const v = target.side === "q" ? w.data[target.i * w.cols + j] : w.data[j * w.cols + target.i];
          if (Number.isFinite(v)) s += v;
        }
        bar.setAttribute("fill", color);
        bar.setAttribute("fill-opacity", (0.45 * Math.min(1, s / heads.length)).toFixed(3));
      }
    }
    for (const side of ["q", "k"]) {
      for (const [i, g] of tokGroups[side]) {
        g.classList.toggle("locked", !!locked && locked.side === side && locked.i === i);
      }
    }
  }
  function hover(target) {
    focus = target;
    if (!locked) apply(target);
  }
  function toggleLock(target) {
    locked = locked && locked.side === target.side && locked.i === target.i ? null : target;
    apply(locked || focus);
    if (onLock) onLock(locked);
  }

  /** Move the keyboard focus to token i of a side, scrolling it into view. */
  function focusToken(side, i) {
    const n = side === "q" ? left.length : right.length;
    if (i < 0 || i >= n) return;
    if (windowed) {
      const y = yOf(i);
      const top = scrolledBy();
      if (y - rowH < top || y + rowH > top + scrollBox.clientHeight) {
        scrollBox.scrollTop += y - top - scrollBox.clientHeight / 2;
      }
      const [from, to] = visibleRows();
      if (!range || from !== range[0] || to !== range[1]) drawRows(from, to);
    }
    const g = tokGroups[side].get(i);
    if (g) g.focus();
  }

  // one listener per kind of event for every token (they come and go as the rows scroll)
  const tokenOf = (e) => {
    const g = e.target instanceof Element ? e.target.closest("g.tok") : null;
    return g ? { side: g.dataset.side, i: Number(g.dataset.i), g } : null;
  };
  root.addEventListener("mouseover", (e) => {
    const t = tokenOf(e);
    if (t && !(e.relatedTarget instanceof Node && t.g.contains(e.relatedTarget))) hover({ side: t.side, i: t.i });
  });
  root.addEventListener("mouseout", (e) => {
    const t = tokenOf(e);
    if (t && !(e.relatedTarget instanceof Node && t.g.contains(e.relatedTarget))) hover(null);
  });
  root.addEventListener("focusin", (e) => {
    const t = tokenOf(e);
    if (t) hover({ side: t.side, i: t.i });
  });
  root.addEventListener("focusout", (e) => {
    if (tokenOf(e)) hover(null);
  });
  root.addEventListener("click", (e) => {
    const t = tokenOf(e);
    if (t) toggleLock({ side: t.side, i: t.i });
  });
  root.addEventListener("keydown", (e) => {
    const t = tokenOf(e);
    if (e.key === "Escape" && locked) {
      locked = null;
      apply(focus);
      if (onLock) onLock(null);
    } else if (t && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      toggleLock({ side: t.side, i: t.i });
    } else if (t && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      focusToken(t.side, t.i + (e.key === "ArrowDown" ? 1 : -1));
    }
  });

  container.replaceChildren(root);
  let frame = 0;
  function onScroll() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (!root.isConnected) {
        scrollBox.removeEventListener("scroll", onScroll);
        return;
      }
      const [from, to] = visibleRows();
      if (range && from === range[0] && to === range[1]) return;
      const active = document.activeElement;
      const had = active && active.closest && active.closest("g.tok");
      const keep = had ? { side: had.dataset.side, i: Number(had.dataset.i) } : null;
      drawRows(from, to);
      if (keep && tokGroups[keep.side].get(keep.i)) tokGroups[keep.side].get(keep.i).focus();
    });
  }
  if (windowed) {
    scrollBox.addEventListener("scroll", onScroll, { passive: true });
    if (locked) {
      // a locked token starts in view
      initialView.top = Math.max(0, yOf(locked.i) - initialView.height / 2);
      scrollBox.scrollTop = initialView.top;
    }
  }
  const [from, to] = visibleRows(initialView);
  drawRows(from, to);

  return {
    node: root,
    lineCount: () => lines.length,
    unlock: () => locked && toggleLock(locked),
    /** The drawing as a standalone <svg>: every row, or for a long input the rows drawn. */
    toSVG() {
      const clone = standaloneSVG(root);
      if (windowed) {
        const y0 = range[0] * rowH; // the column titles scroll away with the first rows
        const h = (range[1] - range[0]) * rowH + titleH + pad;
        clone.setAttribute("viewBox", `0 ${y0} ${width} ${h}`);
        clone.setAttribute("height", String(h));
      }
      return clone;
    },
  };
}
