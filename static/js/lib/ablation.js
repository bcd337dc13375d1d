// Head ablation in the browser: the URL's `ablate` list, the request field, the switch on a
// head chip, and the bar that lists what is ablated.
//
// The URL keeps the list as `ablate=site:layer:head:mode,…`, e.g.
// `ablate=decoder.self:1:0:zero,decoder.self:1:2:mean` (the mode may be left out: zero), the
// same items GET /generate/stream takes as its `ablate` query values. Ablating a head removes
// its output (`hook_z`, before W_O): `zero` writes nothing, `mean` writes its mean over the
// input's positions. Its own attention pattern is unchanged; later layers see the difference.

import { SITE_LABEL } from "./attn.js";
import { siteDepth } from "./attnstore.js";
import { el } from "./dom.js";

export const MODES = ["zero", "mean"];
const ITEM = /^(encoder\.self|decoder\.self|decoder\.cross):(\d+):(\d+)(?::(zero|mean))?$/;

const keyOf = (site, layer, head) => `${site}:${layer}:${head}`;

/** One URL item as {site, layer, head, mode}, or null when it is not one. */
export function parseItem(text) {
  const m = ITEM.exec(text.trim());
  if (!m) return null;
  return { site: m[1], layer: Number(m[2]), head: Number(m[3]), mode: m[4] || "zero" };
}

const itemText = (a) => `${keyOf(a.site, a.layer, a.head)}:${a.mode}`;

/**
 * The URL state spec of `ablate`: a list of canonical "site:layer:head:mode" strings (strings,
 * so that lib/state.js compares two lists item by item); malformed items and repeats of a head
 * are dropped.
 */
export const ablateList = () => ({
  parse: (s) => {
    const seen = new Set();
    const out = [];
    for (const part of s.split(",")) {
      const a = parseItem(part);
      if (!a || seen.has(keyOf(a.site, a.layer, a.head))) continue;
      seen.add(keyOf(a.site, a.layer, a.head));
      out.push(itemText(a));
    }
    return out;
  },
  format: (v) => v.join(","),
  def: [],
});

/** The list as {site, layer, head, mode} objects (the API's `Ablation`). */
export const ablations = (list) => list.map(parseItem).filter(Boolean);

/** The items of the list that exist in `model` (a link may name a head another model lacks). */
export function forModel(list, model) {
  return ablations(list)
    .filter((a) => model.sites && a.site in model.sites)
    .filter((a) => a.layer < siteDepth(model, a.site) && a.head < model.n_heads)
    .map(itemText);
}

/** The `ablate` field of a request body: the objects, or undefined for none. */
export const ablateField = (list) => (list.length ? ablations(list) : undefined);

/** The ablation of a head in the list (its {site, layer, head, mode}), or null. */
export function ablationOf(list, site, layer, head) {
  return ablations(list).find((a) => a.site === site && a.layer === layer && a.head === head) || null;
}

/** The list with the head switched: removed if ablated, else added with `mode`. */
export function toggled(list, site, layer, head, mode) {
  const rest = list.filter((t) => !t.startsWith(`${keyOf(site, layer, head)}:`));
  return rest.length < list.length ? rest : [...rest, itemText({ site, layer, head, mode })];
}

/** A head in words, its site named as everywhere else: "L1 H0 of the decoder self-attention (masked) · mean". */
export function describe(a, { site = true } = {}) {
  return `L${a.layer} H${a.head}${site ? ` of the ${SITE_LABEL[a.site] || a.site}` : ""} · ${a.mode}`;
}

/**
 * The switch on a head chip: a button, pressed when the head is ablated. Its text says so (✂
 * and "ablated"), not only its colour. `label`: the text beside the icon when off (the player's
 * chips say "head 2"; the explorer's sit beside the head's own chip and show the icon alone).
 */
export function ablateSwitch({ site, layer, head, list, label = "", onToggle }) {
  const on = ablationOf(list, site, layer, head);
  const button = el(
    "button",
    {
      type: "button",
      class: `ablate-switch${on ? " on" : ""}`,
      "aria-pressed": String(Boolean(on)),
      "aria-label": `ablate head ${head} of layer ${layer}${on ? ` (ablated, ${on.mode})` : ""}`,
      title: on
        ? `head ${head} is ablated (${on.mode}): click to restore it`
        : `ablate head ${head}: take its output out of the forward pass`,
      dataset: { site, layer: String(layer), head: String(head) },
    },
    el("span", { class: "ablate-icon", "aria-hidden": "true", text: "✂" }),
    on ? el("span", { class: "ablate-word", text: `${label ? `${label} ` : ""}ablated · ${on.mode}` }) : label,
  );
  button.addEventListener("click", () => onToggle(site, layer, head));
  return button;
}

/**
 * The ablation bar in `box`: where the switches are (`hint`), the mode new ablations take (zero
 * / mean), each head ablated (with a button to restore it) and "restore all". onChange(list)
 * when the list changes, onMode(mode) when the mode does.
 */
export function renderAblationBar(box, { list, mode, onChange, onMode, hint = "", name = "ablate-mode" }) {
  const radios = MODES.map((m) => {
    const input = el("input", { type: "radio", name, value: m });
    input.checked = m === mode;
    input.addEventListener("change", () => input.checked && onMode(m));
    return el("label", {}, input, ` ${m}`);
  });
  const modes = el(
    "div",
    { class: "segmented", role: "radiogroup", "aria-label": "How an ablated head is taken out" },
    ...radios,
  );
  const items = ablations(list).map((a) =>
    el(
      "li",
      { class: "ablated-item" },
      el("span", { class: "ablate-icon", "aria-hidden": "true", text: "✂ " }),
      el("s", { text: describe(a) }),
      el("button", {
        type: "button",
        class: "link-button",
        text: "restore",
        "aria-label": `restore ${describe(a)}`,
        onclick: () => onChange(list.filter((t) => parseItem(t) && describe(parseItem(t)) !== describe(a))),
      }),
    ),
  );
  box.replaceChildren(
    el(
      "div",
      { class: "ablation-head" },
      el("h2", { text: "Ablation" }),
      el("span", { class: "plot-note", text: `${hint} Mode of the next head:` }),
      modes,
      list.length
        ? el("button", { type: "button", class: "secondary", text: "restore all", onclick: () => onChange([]) })
        : null,
    ),
    list.length
      ? el("ul", { class: "ablated-list", "aria-label": "Heads ablated" }, ...items)
      : el("p", { class: "plot-note", text: "No head ablated: the model runs whole." }),
  );
}

/** The mode a new ablation takes: the last one chosen in the list, else zero. */
export const defaultMode = (list) => {
  const all = ablations(list);
  return all.length ? all[all.length - 1].mode : "zero";
};
