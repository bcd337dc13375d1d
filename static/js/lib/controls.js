// The shared input strip: model picker, text (+ target for seq2seq), presets, Run.

import { listModels } from "./api.js";
import { $, clear, el, fillSelect } from "./dom.js";
import { presetsFor } from "./presets.js";
import { CELL_NAME } from "./recurrence.js";
import { showError, clearError } from "./shell.js";
import { str } from "./state.js";

/** The URL state of the strip, for a view that takes a target sentence (allowTarget). */
export const INPUT_STATE = { model: str(""), text: str(""), target: str("") };

const KIND_LABEL = { encoder: "encoder", decoder: "decoder", seq2seq: "encoder-decoder" };

/** One line on how a model is built, under the picker. */
function describe(model) {
  const title = model.title || model.id;
  if (model.architecture === "rnn") {
    return (
      `${title}: ${CELL_NAME[model.cell] || model.cell} encoder and decoder, states of ${model.d_model} numbers, ` +
      "one additive attention head from the decoder to the encoder states; no positions (the recurrence gives the order)."
    );
  }
  const pos = model.positional === "rope" ? "RoPE" : model.positional;
  const layers =
    model.kind === "seq2seq" ? `${model.n_layers}+${model.n_decoder_layers ?? model.n_layers}` : `${model.n_layers}`;
  return (
    `${title}: ${layers} layers × ${model.n_heads} heads, d_model ${model.d_model}, ` +
    `${pos} positions, ${model.norm} (${model.norm_position}-norm), up to ${model.max_len} tokens` +
    (model.tasks && model.tasks.length === 1 ? "; no output head: attention only." : ".")
  );
}

/**
 * state: a urlState with at least `model` and `text` (and `target` when allowTarget).
 * filter(model) picks the models this view can show, prefer(model) the default one when the
 * URL names none; unfit(model) says in a sentence why a model the view cannot show (say, a link
 * from another view names one) is not shown, `none` what is missing when no model fits. onRun() is called on Run, on a preset click and
 * on a model change. Resolves to {models, current()} once the picker is filled.
 */
export async function setupControls(
  state,
  {
    filter = () => true,
    prefer = () => false,
    unfit = null,
    none = "No suitable model is loaded on this server (is checkpoints/ empty?).",
    onRun,
    allowTarget = false,
    onModelChange,
  } = {},
) {
  const select = $("#model-select");
  const text = $("#text-input");
  const target = $("#target-input");
  const targetField = $("#target-field");
  const presets = $("#presets");
  const blurb = $("#model-blurb");
  const form = $("#input-form");

  let all;
  try {
    all = await listModels();
  } catch (error) {
    showError(error);
    return { models: [], current: () => null, configure: () => null };
  }
  let models = all.filter(filter);
  let byId = new Map(models.map((m) => [m.id, m]));
  const notice = $("#view-notice");
  const named = all.find((m) => m.id === state.model);
  if (notice && named && !models.includes(named) && unfit) {
    notice.textContent = unfit(named);
    notice.hidden = false;
  }
  if (!models.length) {
    showError({ code: "no_models", message: none });
    return { models: [], current: () => null, configure: () => null };
  }
  const fillModels = () =>
    fillSelect(
      select,
      models.map((m) => ({ value: m.id, label: `${m.id} — ${KIND_LABEL[m.kind] || m.kind}` })),
    );
  fillModels();
  const current = () => byId.get(state.model) || null;

  function refreshForModel() {
    const model = current();
    select.value = model.id;
    if (targetField) targetField.hidden = !(allowTarget && model.kind === "seq2seq");
    blurb.textContent = describe(model);
    clear(presets);
    presets.append(el("span", { class: "presets-label", text: "From the lecture notes:" }));
    shownPresets = presetsFor(model);
    for (const preset of shownPresets) {
      const chip = el("button", {
        type: "button",
        class: "preset",
        title: preset.target ? `${preset.text} → ${preset.target}` : preset.note || preset.text,
        "aria-pressed": String(preset.text === state.text && (!preset.target || preset.target === state.target)),
        text: preset.label || preset.text,
      });
      chip.addEventListener("click", () => {
        text.value = preset.text;
        if (target) target.value = preset.target || "";
        commit(true);
      });
      presets.append(chip);
    }
  }

  let shownPresets = [];
  function markPresets() {
    presets.querySelectorAll(".preset").forEach((chip, i) => {
      chip.setAttribute("aria-pressed", String(shownPresets[i].text === state.text));
    });
  }

  function commit(push) {
    clearError();
    const patch = { text: text.value };
    if (target && "target" in state.values) patch.target = current().kind === "seq2seq" ? target.value.trim() : "";
    state.set(patch, { push, silent: true });
    markPresets();
    onRun();
  }

  // Start: a model from the URL if it fits this view, else the first one.
  if (!current()) state.set({ model: (models.find(prefer) || models[0]).id }, { silent: true });
  if (!state.text) {
    const first = presetsFor(current())[0];
    if (first)
      state.set(
        { text: first.text, ...(allowTarget && first.target ? { target: first.target } : {}) },
        { silent: true },
      );
  }
  text.value = state.text;
  if (target) target.value = state.target || "";
  refreshForModel();

  select.addEventListener("change", () => {
    if (notice) notice.hidden = true;
    state.set({ model: select.value }, { push: true, silent: true });
    refreshForModel();
    if (onModelChange) onModelChange(current());
    commit(false);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    commit(true);
  });

  // Back/forward: refill the inputs from the URL.
  state.subscribe((changed) => {
    if (changed.includes("model") && current()) refreshForModel();
    if (changed.includes("text")) text.value = state.text;
    if (changed.includes("target") && target) target.value = state.target || "";
  });

  /**
   * Show other models (the lesson: each step has its own): refill the picker with those
   * `filter` keeps, keep the URL's model when it is one of them (else `prefer`'s, else the
   * first), and refill the presets and inputs (`allowTarget`: whether a seq2seq model's target
   * is asked for). Returns the model shown, or null when none fits.
   */
  function configure(next) {
    if ("allowTarget" in next) allowTarget = next.allowTarget;
    models = all.filter(next.filter);
    byId = new Map(models.map((m) => [m.id, m]));
    fillModels();
    if (!models.length) return null;
    if (!current()) state.set({ model: (models.find(next.prefer || prefer) || models[0]).id }, { silent: true });
    text.value = state.text;
    if (target) target.value = state.target || "";
    refreshForModel();
    return current();
  }

  return {
    get models() {
      return models;
    },
    get byId() {
      return byId;
    },
    current,
    configure,
  };
}
