// A long job's progress, as the server streams it (/patch/stream, /heads/scores/stream): a
// <progress> bar and a line of text that say how far it is ("117 of 270 heads (layer 13 of 30) —
// about 40 s left"), not only how long it has run. One per run: a run that starts while an older
// one is still shown gets a meter of its own, and each removes only its own.

import { el } from "./dom.js";

/** "40 s", "3 min 5 s". */
export function seconds(s) {
  const n = Math.max(1, Math.round(s));
  return n < 60 ? `${n} s` : `${Math.floor(n / 60)} min${n % 60 ? ` ${n % 60} s` : ""}`;
}

/** "Ablating heads: 117 of 270 (layer 13 of 30) — about 40 s left" from a progress event
 * ({done, total, layer?, n_layers?, eta_s?}); `unit` is said after the count when given. */
export function progressText(verb, { done, total, layer, n_layers: layers, eta_s: eta }, unit = "") {
  let text = `${verb}: ${done} of ${total}${unit ? ` ${unit}` : ""}`;
  if (layer && layers) text += ` (layer ${layer} of ${layers})`;
  if (eta !== null && eta !== undefined && done < total) text += ` — about ${seconds(eta)} left`;
  return text;
}

/**
 * A meter in `container` (hidden until the first update): update(event) moves the bar and
 * rewrites the text (`describe(event)`), remove() takes it away. The bar's accessible name is
 * `label`; its value and text are also its aria-valuetext, so a screen reader hears the words.
 */
export function progressMeter(container, { label, describe }) {
  const bar = el("progress", { max: "1", value: "0", "aria-label": label });
  const text = el("span", { class: "job-progress-text" });
  const node = el("div", { class: "job-progress", hidden: true }, bar, text);
  container.append(node);
  return {
    update(event) {
      const words = describe(event);
      bar.max = Math.max(1, event.total);
      bar.value = event.done;
      bar.setAttribute("aria-valuetext", words);
      text.textContent = words;
      node.hidden = false;
    },
    remove() {
      node.remove();
    },
  };
}
