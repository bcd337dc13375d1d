// The URL holds each view's state, so a pasted link reopens the same view.
//
//   const state = urlState({model: str(""), layer: int(0), scores: bool(false)});
//   state.model; state.set({layer: 2}); state.subscribe((changed) => ...);

export const str = (def = "") => ({ parse: (s) => s, format: (v) => String(v), def });
export const int = (def = 0) => ({
  parse: (s) => {
    const n = Number.parseInt(s, 10);
    return Number.isFinite(n) ? n : def;
  },
  format: (v) => String(v),
  def,
});
export const num = (def = 0) => ({
  parse: (s) => {
    const n = Number.parseFloat(s);
    return Number.isFinite(n) ? n : def;
  },
  format: (v) => String(v),
  def,
});
export const bool = (def = false) => ({ parse: (s) => s === "1" || s === "true", format: (v) => (v ? "1" : "0"), def });
/** A list of integers, e.g. heads that are switched off: "0,2". */
export const intList = (def = []) => ({
  parse: (s) =>
    s === ""
      ? []
      : s
          .split(",")
          .map((x) => Number.parseInt(x, 10))
          .filter(Number.isFinite),
  format: (v) => v.join(","),
  def,
});

const same = (a, b) =>
  Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b;

export function urlState(schema) {
  const values = {};
  const listeners = new Set();

  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    const changed = [];
    for (const [key, spec] of Object.entries(schema)) {
      const raw = params.get(key);
      const value = raw === null ? spec.def : spec.parse(raw);
      if (!same(values[key], value)) changed.push(key);
      values[key] = value;
    }
    return changed;
  }

  function writeUrl(push) {
    const params = new URLSearchParams(window.location.search);
    for (const [key, spec] of Object.entries(schema)) {
      const value = values[key];
      if (same(value, spec.def)) params.delete(key);
      else params.set(key, spec.format(value));
    }
    const search = params.toString();
    const url = `${window.location.pathname}${search ? `?${search}` : ""}${window.location.hash}`;
    if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) {
      if (push) window.history.pushState(null, "", url);
      else window.history.replaceState(null, "", url);
    }
    for (const fn of linkListeners) fn(values);
  }

  readUrl();

  const api = {
    get values() {
      return { ...values };
    },
    /** Merge a patch; write it to the URL (pushState when `push`); notify subscribers. */
    set(patch, { push = false, silent = false } = {}) {
      const changed = [];
      for (const [key, value] of Object.entries(patch)) {
        if (!(key in schema)) throw new Error(`unknown state key ${key}`);
        if (!same(values[key], value)) {
          values[key] = value;
          changed.push(key);
        }
      }
      if (changed.length) {
        writeUrl(push);
        if (!silent) for (const fn of listeners) fn(changed);
      }
      return changed;
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** Re-read the URL (e.g. after back/forward) and notify. */
    reload() {
      const changed = readUrl();
      for (const fn of linkListeners) fn(values);
      if (changed.length) for (const fn of listeners) fn(changed);
    },
    url() {
      return window.location.href;
    },
  };
  for (const key of Object.keys(schema)) {
    Object.defineProperty(api, key, { get: () => values[key], enumerable: true });
  }
  window.addEventListener("popstate", () => api.reload());
  for (const fn of linkListeners) fn(values);
  return api;
}

// The nav links carry the shared part of the state (model, text, target) to the other views.
const linkListeners = new Set();
export function onStateWritten(fn) {
  linkListeners.add(fn);
}
