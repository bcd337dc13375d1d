// The head view (after BertViz): queries on the left, keys on the right, one line per
// (query, key) pair and head, coloured per head, opacity = attention weight.
// Hover a token to isolate its lines; click (or Enter) to lock; Esc unlocks.
// Built with createElementNS; token text goes in through textContent only.

import { displayToken, svg } from "./dom.js";
import { headColor } from "./palette.js";
import { isProjector } from "./shell.js";

const MIN_WEIGHT = 0.01; // lines fainter than this are not drawn

function textWidth(tokens, px) {
  return Math.max(3, ...tokens.map((t) => displayToken(t.text).length)) * px;
}

/**
 * left, right: tokens [{text, special, index}]; weights: [H][left][right];
 * active: boolean per head; lock: {side: "q"|"k", i} or null; onLock(lockOrNull).
 * Returns {node, lineCount}.
 */
export function renderHeadView(
  container,
  { left, right, weights, active, lock, onLock, leftTitle = "query", rightTitle = "key" },
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
  const height = titleH + Math.max(left.length, right.length) * rowH + pad;
  const yOf = (i) => titleH + i * rowH + rowH / 2;

  const root = svg("svg", {
    class: "head-view",
    id: "head-view",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "group", // not "img": its tokens are buttons, and an image has no controls inside
    "aria-label": "Head view: lines from each query token to the key tokens it attends to",
  });
  root.append(
    svg("text", { class: "col-title", x: x1 - 6, y: 16, "text-anchor": "end", text: leftTitle }),
    svg("text", { class: "col-title", x: x2 + 6, y: 16, "text-anchor": "start", text: rightTitle }),
  );

  const lineLayer = svg("g", { class: "lines" });
  root.append(lineLayer);
  const heads = weights.map((_, h) => h).filter((h) => active[h]);
  const lines = [];
  const sw = big ? 3 : 2;
  for (const h of heads) {
    const g = svg("g", { class: `head head-${h}`, "data-head": h });
    const color = headColor(h);
    const w = weights[h];
    for (let q = 0; q < left.length; q++) {
      const row = w[q];
      if (!row) continue;
      for (let k = 0; k < right.length; k++) {
        const a = row[k];
        if (!(a >= MIN_WEIGHT)) continue;
        const line = svg("line", {
          x1,
          y1: yOf(q),
          x2,
          y2: yOf(k),
          stroke: color,
          "stroke-width": sw,
          "stroke-opacity": Math.min(1, a).toFixed(3),
          "data-q": q,
          "data-k": k,
        });
        g.append(line);
        lines.push({ node: line, q, k, h, a });
      }
    }
    lineLayer.append(g);
  }

  // Token labels with a highlight rect behind each, and weight bars on the far side.
  const tokGroups = { q: [], k: [] };
  const bars = { q: [], k: [] };
  function addTokens(tokens, side) {
    const isLeft = side === "q";
    tokens.forEach((t, i) => {
      const label = displayToken(t.text);
      const g = svg("g", {
        class: "tok",
        tabindex: 0,
        role: "button",
        "aria-label": `${isLeft ? leftTitle : rightTitle} token ${i}: ${label}${t.special ? " (special)" : ""}`,
        "data-side": side,
        "data-i": i,
      });
      const bx = isLeft ? pad : x2 + 2;
      const bw = isLeft ? leftW : rightW;
      const bar = svg("rect", {
        class: "bar",
        x: bx,
        y: yOf(i) - rowH / 2 + 2,
        width: bw,
        height: rowH - 4,
        rx: 4,
        fill: "#0072B2",
        "fill-opacity": 0,
      });
      const hl = svg("rect", { class: "hl", x: bx, y: yOf(i) - rowH / 2 + 2, width: bw, height: rowH - 4, rx: 4 });
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
      g.addEventListener("mouseenter", () => hover({ side, i }));
      g.addEventListener("mouseleave", () => hover(null));
      g.addEventListener("focus", () => hover({ side, i }));
      g.addEventListener("blur", () => hover(null));
      g.addEventListener("click", () => toggleLock({ side, i }));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          toggleLock({ side, i });
        }
      });
      root.append(g);
      tokGroups[side].push(g);
      bars[side].push(bar);
    });
  }
  addTokens(left, "q");
  addTokens(right, "k");

  let locked =
    lock && ((lock.side === "q" && lock.i < left.length) || (lock.side === "k" && lock.i < right.length)) ? lock : null;

  function apply(focus) {
    for (const l of lines) {
      const show = !focus || (focus.side === "q" ? l.q === focus.i : l.k === focus.i);
      l.node.style.display = show ? "" : "none";
    }
    // weight bars on the other side: the mean over the active heads
    for (const side of ["q", "k"]) for (const b of bars[side]) b.setAttribute("fill-opacity", "0");
    if (focus && heads.length) {
      const other = focus.side === "q" ? "k" : "q";
      const n = other === "k" ? right.length : left.length;
      const color = heads.length === 1 ? headColor(heads[0]) : "#1b2130";
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (const h of heads)
          s += focus.side === "q" ? (weights[h][focus.i]?.[j] ?? 0) : (weights[h][j]?.[focus.i] ?? 0);
        const bar = bars[other][j];
        bar.setAttribute("fill", color);
        bar.setAttribute("fill-opacity", (0.45 * Math.min(1, s / heads.length)).toFixed(3));
      }
    }
    for (const side of ["q", "k"]) {
      tokGroups[side].forEach((g, i) =>
        g.classList.toggle("locked", !!locked && locked.side === side && locked.i === i),
      );
    }
  }
  function hover(focus) {
    if (!locked) apply(focus);
  }
  function toggleLock(target) {
    locked = locked && locked.side === target.side && locked.i === target.i ? null : target;
    apply(locked);
    if (onLock) onLock(locked);
  }
  root.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && locked) {
      locked = null;
      apply(null);
      if (onLock) onLock(null);
    }
  });

  container.replaceChildren(root);
  apply(locked);
  return { node: root, lineCount: lines.length, unlock: () => locked && toggleLock(locked) };
}
