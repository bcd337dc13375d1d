// The attention pickers the views share: #site-select (in #site-field, shown when a response
// has several sites), #layer-select and #head-select, kept in the URL state, and their keys:
// [ ] the previous / next layer, , . the previous / next head.

import { SITE_LABEL } from "./attn.js";
import { $, fillSelect } from "./dom.js";
import { tokenLabel } from "./tokens.js";
import { bindKeys } from "./shell.js";
import { int, str } from "./state.js";

/** The URL state of the pickers, for a view that shows every site of an /attention response. */
export const PICKER_STATE = { site: str(""), layer: int(0), head: int(0) };

const numbered = (n) => Array.from({ length: n }, (_, i) => ({ value: i, label: String(i) }));
const clamp = (x, lo, hi) => Math.min(Math.max(lo, x), hi);

/** Options for a token picker: "3: cat". */
export const tokenOptions = (tokens) => tokens.map((t, i) => ({ value: i, label: `${i}: ${tokenLabel(t)}` }));

/**
 * state: a urlState with `layer` and `head` (and `site` where the page has #site-select).
 * onChange(key) runs once a picker or a key has changed "site", "layer" or "head" (the new
 * value already saved in the URL). siteReset: what else a new site resets, e.g. {lock: ""}.
 * meanOfHeads: the head picker starts with "mean of heads" (value -1).
 */
export function attentionPickers(state, { onChange, siteReset = {}, meanOfHeads = false }) {
  const save = (patch) => state.set(patch, { silent: true });
  const siteSelect = $("#site-select");
  const selects = { layer: $("#layer-select"), head: $("#head-select") };

  if (siteSelect) {
    siteSelect.addEventListener("change", () => {
      save({ site: siteSelect.value, layer: 0, head: 0, ...siteReset });
      onChange("site");
    });
  }
  for (const [key, select] of Object.entries(selects)) {
    select.addEventListener("change", () => {
      save({ [key]: Number(select.value) });
      onChange(key);
    });
  }

  /** Move a picker to its previous / next option, as a student would with the mouse. */
  function step(key, delta) {
    const select = selects[key];
    const i = select.selectedIndex + delta;
    if (select.selectedIndex < 0 || i < 0 || i >= select.options.length) return;
    select.selectedIndex = i;
    save({ [key]: Number(select.value) });
    onChange(key);
  }
  bindKeys({
    "[": () => step("layer", -1),
    "]": () => step("layer", 1),
    ",": () => step("head", -1),
    ".": () => step("head", 1),
  });

  /**
   * Fill the pickers for `layers` × `heads` (and `sites`, showing `site`), with `layer` and
   * `head` kept in range; saves them to the URL unless `save` is false. Returns {layer, head}.
   */
  function fill({ layers, heads, layer, head, sites = [], site = "", save: keep = true }) {
    const shown = {
      layer: clamp(layer, 0, layers - 1),
      head: clamp(head, meanOfHeads ? -1 : 0, heads - 1),
    };
    if (siteSelect) {
      $("#site-field").hidden = sites.length < 2;
      fillSelect(
        siteSelect,
        sites.map((s) => ({ value: s, label: SITE_LABEL[s] || s })),
        site,
      );
    }
    fillSelect(selects.layer, numbered(layers), shown.layer);
    const means = meanOfHeads ? [{ value: -1, label: "mean of heads" }] : [];
    fillSelect(selects.head, [...means, ...numbered(heads)], shown.head);
    if (keep) save({ ...shown, ...(siteSelect ? { site: sites.length > 1 ? site : "" } : {}) });
    return shown;
  }

  return { fill, step };
}
