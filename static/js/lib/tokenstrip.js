// The token strip: each token a chip with its id, special tokens dashed, a piece that continues
// the word before it joined to it. The explorer shows it; the lesson's first step too.

import { clear, el } from "./dom.js";

/** A long input's chips go in this many at a time (laying out 512 at once is one long task). */
const TOKENS_PER_TASK = 128;
const turns = new WeakMap(); // box -> the latest strip drawn in it

/** Let the browser run other tasks (input, painting) before going on. */
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

function chip(t, i, marked) {
  const chars = Number.isInteger(t.start) ? ` · chars ${t.start}–${t.end}` : "";
  const mark = marked && marked.has(i);
  return el(
    "span",
    {
      class: `token${t.special ? " special" : ""}${t.cont ? " cont" : ""}${mark ? " marked" : ""}`,
      title:
        `position ${i} · id ${t.id}${t.special ? " · special token" : ""}` +
        `${t.cont ? " · continues the word before" : ""}${chars}${mark ? " · differs" : ""}`,
    },
    el("span", { class: "tok-text", text: t.cont ? t.label.slice(2) : t.label }), // "##": CSS
    el("span", { class: "tok-id", text: String(t.id) }),
  );
}

/**
 * rows: [[label, tokens, marked?]] (tokens labelled by lib/tokens.js labelTokens; marked: a Set
 * of positions to mark, e.g. where two inputs differ). The first chips go in
 * straight away, the rest a task at a time; a newer strip in the same box stops an older one.
 */
export async function renderTokenStrip(box, rows) {
  const turn = (turns.get(box) || 0) + 1;
  turns.set(box, turn);
  clear(box);
  const total = rows.reduce((n, [, tokens]) => n + tokens.length, 0);
  box.classList.toggle("long", total > 120);
  for (const [label, tokens, marked] of rows) {
    const row = el(
      "div",
      { class: "token-row" },
      el("span", { class: "token-row-label", text: rows.length > 1 ? label : `${tokens.length} tokens` }),
    );
    box.append(row);
    for (let start = 0; start < tokens.length; start += TOKENS_PER_TASK) {
      if (start > 0) await nextTask();
      if (turns.get(box) !== turn) return; // another input took the strip
      row.append(...tokens.slice(start, start + TOKENS_PER_TASK).map((t, k) => chip(t, start + k, marked)));
    }
  }
}
