// Panels built in the browser, with the markup of templates/_controls.html's panel_head: a
// title, a subtitle and the PNG / SVG / JSON buttons that export.js wires by `data-export`.
// Components that a view and the lesson both show (lib/block/) build their panels here.

import { el } from "./dom.js";

/** A panel header: {title, subtitle, exportId (null: no export buttons), level (h2 / h3)}. */
export function panelHead({ title, subtitle = "", exportId = null, level = 2 }) {
  const heading = el(`h${level}`, { text: title });
  const head = el(
    "header",
    { class: "panel-head" },
    el("div", {}, heading, subtitle && el("p", { class: "panel-sub", text: subtitle })),
  );
  if (exportId) {
    head.append(
      el(
        "div",
        { class: "export", "data-export": exportId, role: "group", "aria-label": `Export ${title}` },
        ["png", "svg", "json"].map((f) => el("button", { type: "button", "data-format": f, text: f.toUpperCase() })),
      ),
    );
  }
  return head;
}

/** A `section.panel` with its header; returns {root, body} (body: where its figures go). */
export function panel({ title, subtitle = "", exportId = null, level = 2, label = title }) {
  const body = el("div", { class: "panel-body" });
  const root = el(
    "section",
    { class: "panel", "aria-label": label },
    panelHead({ title, subtitle, exportId, level }),
    body,
  );
  return { root, body };
}

/** A figure's div with a caption under it: {box, plot, note}. */
export function figure(title, { note = "", cls = "plot" } = {}) {
  const plot = el("div", { class: cls });
  const caption = el("p", { class: "plot-note", text: note });
  const heading = title ? el("div", { class: "matrix-title" }, el("span", { text: title })) : null;
  return { box: el("div", { class: "matrix" }, heading, plot, note ? caption : null), plot, note: caption };
}
