// What every page shares: the error banner, projector mode, the keyboard panel, and nav
// links that carry the current model and sentence to the other views.

import { $, $$, el } from "./dom.js";
import { onStateWritten } from "./state.js";

const SHARED_KEYS = ["model", "text", "target"];
const projectorListeners = new Set();

export function isProjector() {
  return document.documentElement.classList.contains("projector");
}

export function onProjectorChange(fn) {
  projectorListeners.add(fn);
}

function setProjector(on) {
  document.documentElement.classList.toggle("projector", on);
  const button = $("#projector-toggle");
  if (button) button.setAttribute("aria-pressed", String(on));
  try {
    localStorage.setItem("attnviz.projector", on ? "1" : "0");
  } catch {
    /* private mode: fine */
  }
  for (const fn of projectorListeners) fn(on);
  // the panels changed width with the fonts: let every figure fit its panel again
  requestAnimationFrame(() => {
    if (!window.Plotly) return;
    for (const gd of document.querySelectorAll(".js-plotly-plot")) window.Plotly.Plots.resize(gd);
  });
}

function toggleHelp(open) {
  const panel = $("#help-panel");
  const button = $("#help-toggle");
  const show = open ?? panel.hidden;
  panel.hidden = !show;
  button.setAttribute("aria-expanded", String(show));
}

/** True when a key press belongs to a text field, not to a shortcut. */
export function isTyping(event) {
  const t = event.target;
  if (!(t instanceof Element)) return false;
  if (t.isContentEditable) return true;
  if (t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  if (t.tagName === "INPUT") return !["checkbox", "radio", "range", "button", "submit"].includes(t.type);
  return false;
}

/** Register single-key shortcuts: {"[": fn, "]": fn}. Ignored while typing in a field, and for
 * a key a focused widget already took (a canvas heatmap's arrows move its cursor). */
export function bindKeys(map) {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented) return;
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event)) return;
    const fn = map[event.key];
    if (fn) {
      const handled = fn(event);
      if (handled !== false) event.preventDefault();
    }
  });
}

export function showError(error) {
  const banner = $("#error-banner");
  const text = $(".error-text", banner);
  text.textContent = "";
  const status = error && error.status ? `${error.status}` : "";
  const code = error && error.code ? error.code : "error";
  text.append(el("strong", { text: `Error${status ? ` ${status}` : ""} (${code}):` }));
  text.append(document.createTextNode(error && error.message ? error.message : String(error)));
  if (error && error.field) text.append(document.createTextNode(` — field: ${error.field}`));
  banner.hidden = false;
  if (error && error.field) {
    const input = document.querySelector(`[name="${CSS.escape(String(error.field).split(".")[0])}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
}

export function clearError() {
  const banner = $("#error-banner");
  if (banner) banner.hidden = true;
  for (const node of $$('[aria-invalid="true"]')) node.removeAttribute("aria-invalid");
}

/** Run an async task with a busy status line; errors go to the banner. */
export async function withStatus(statusNode, label, task) {
  if (statusNode) {
    statusNode.textContent = label;
    statusNode.classList.add("busy");
  }
  try {
    const result = await task();
    if (statusNode) statusNode.textContent = "";
    return result;
  } catch (error) {
    if (error && error.name === "AbortError") return undefined;
    if (statusNode) statusNode.textContent = "";
    showError(error);
    return undefined;
  } finally {
    if (statusNode) statusNode.classList.remove("busy");
  }
}

/**
 * withStatus for work that may take long (a forward pass over 2048 tokens takes tens of
 * seconds on a CPU): the label, then the time elapsed, ticking. The ticking part is hidden
 * from screen readers, which hear the label once (the status line is a live region).
 */
export async function withProgress(statusNode, label, task) {
  if (!statusNode) return withStatus(statusNode, label, task);
  const started = performance.now();
  const clock = el("span", { class: "elapsed", "aria-hidden": "true" });
  const result = withStatus(statusNode, label, task);
  statusNode.append(clock);
  const timer = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    if (s >= 0.5) clock.textContent = ` ${s.toFixed(1)} s`;
  }, 100);
  try {
    return await result;
  } finally {
    clearInterval(timer);
    clock.remove();
  }
}

export function initShell() {
  let stored = "0";
  try {
    stored = localStorage.getItem("attnviz.projector") || "0";
  } catch {
    /* ignore */
  }
  const fromUrl = new URLSearchParams(window.location.search).get("projector");
  setProjector(fromUrl !== null ? fromUrl === "1" : stored === "1");
  $("#projector-toggle").addEventListener("click", () => setProjector(!isProjector()));
  $("#help-toggle").addEventListener("click", () => toggleHelp());
  $(".error-close").addEventListener("click", clearError);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#help-panel").hidden) toggleHelp(false);
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event)) return;
    if (event.key === "?") toggleHelp();
    else if (event.key === "p" || event.key === "P") setProjector(!isProjector());
  });
  onStateWritten((values) => {
    for (const link of $$("a[data-nav]")) {
      const url = new URL(link.getAttribute("href"), window.location.origin);
      const params = new URLSearchParams();
      for (const key of SHARED_KEYS) if (values[key]) params.set(key, values[key]);
      const base = url.pathname.startsWith("/models/") ? "/card" : url.pathname;
      link.setAttribute("href", `${base}${params.toString() ? `?${params}` : ""}`);
    }
  });
}
