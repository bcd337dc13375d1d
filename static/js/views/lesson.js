// The lesson: the lecture notes' sequence in eleven steps (lib/lessonsteps.js), each a short
// explanation and live panels of the views, mounted from their lib components, on the notes'
// own sentences. The URL holds the step and its input, so a teacher can start at any step and
// share it; → / PageDown and ← / PageUp walk the steps, Home / End jump to the ends, and
// "Open in full view" opens the step's view with the same model, sentence and picks.

import * as api from "../lib/api.js";
import { INPUT_STATE, setupControls } from "../lib/controls.js";
import { $, clear, el } from "../lib/dom.js";
import { initExports } from "../lib/export.js";
import { LESSON_STATE, STEPS, startOf } from "../lib/lessonsteps.js";
import { purge } from "../lib/plots.js";
import { presetsFor } from "../lib/presets.js";
import { bindKeys, initShell, onProjectorChange, showError, withStatus } from "../lib/shell.js";
import { int, urlState } from "../lib/state.js";

initShell();
initExports(showError);

const state = urlState({ step: int(1), ...INPUT_STATE, ...LESSON_STATE });
let shownCtx = null; // the step on the page: its ctx, for the full view's link
/** Keep a step's pick in the URL, and in the link to its full view. */
const save = (patch) => {
  state.set(patch, { silent: true });
  if (shownCtx) $("#full-view").setAttribute("href", current().full(shownCtx));
};
const status = $("#status");
const body = $("#step-body");
const nextRequest = api.latestOnly();
const number = () => Math.min(Math.max(1, state.step), STEPS.length);
const current = () => STEPS[number() - 1];
let shownStep = 0;

const models = await api.listModels().catch((error) => {
  showError(error);
  return [];
});

/** The patch that opens step n on its own model and sentence (the other picks reset). */
function entering(n) {
  const step = STEPS[n - 1];
  const model = startOf(step, models);
  const reset = Object.fromEntries(Object.entries(LESSON_STATE).map(([k, spec]) => [k, spec.def]));
  const preset = model && (presetsFor(model).find((p) => p.text === step.sentence) || presetsFor(model)[0]);
  return {
    step: n,
    ...reset,
    model: model ? model.id : "",
    text: preset ? preset.text : "",
    target: preset && preset.target && step.target !== false ? preset.target : "",
  };
}

const href = (patch) => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(patch))
    if (v !== "" && v !== -1 && !(Array.isArray(v) && !v.length)) params.set(k, v);
  return `/lesson?${params}`;
};

// A link with no step opens step 1, or the step it names on that step's own input.
if (!new URLSearchParams(window.location.search).has("step")) save(entering(1));
else if (!state.model) save(entering(number()));

const controls = await setupControls(state, {
  filter: () => true,
  allowTarget: true,
  onRun: () => show(),
  onModelChange: () => save(Object.fromEntries(Object.entries(LESSON_STATE).map(([k, spec]) => [k, spec.def]))),
});

function fillToc() {
  const toc = $("#lesson-toc");
  clear(toc);
  STEPS.forEach((step, i) => {
    const a = el("a", { href: href(entering(i + 1)), text: step.title });
    if (i + 1 === number()) a.setAttribute("aria-current", "step");
    a.addEventListener("click", (e) => {
      e.preventDefault();
      go(i + 1);
    });
    toc.append(el("li", {}, a));
  });
}

function fillPager() {
  const n = number();
  for (const [id, to] of [
    ["#prev-step", n - 1],
    ["#next-step", n + 1],
  ]) {
    const a = $(id);
    const ok = to >= 1 && to <= STEPS.length;
    a.setAttribute("aria-disabled", String(!ok));
    a.textContent = ok ? (to < n ? `← ${STEPS[to - 1].title}` : `${STEPS[to - 1].title} →`) : "";
    if (ok) a.setAttribute("href", href(entering(to)));
    else a.removeAttribute("href");
  }
}

/** Go to step n on its own model and sentence. */
function go(n) {
  if (n < 1 || n > STEPS.length || n === number()) return;
  state.set(entering(n), { push: true, silent: true });
  show({ focus: true });
}

/** Draw the step in the URL: its text, the input strip for its models, its panels. */
async function show({ focus = false } = {}) {
  const n = number();
  const step = current();
  if (n !== shownStep) {
    shownStep = n;
    $("#step-count").textContent = `Step ${n} of ${STEPS.length}`;
    $("#step-title").textContent = step.title;
    document.title = `attnviz — lesson ${n}: ${step.title}`;
    const text = $("#step-text");
    clear(text);
    for (const p of step.text) text.append(el("p", { text: p }));
    fillToc();
    fillPager();
    if (focus) $("#step-title").focus();
  }
  // A model the step cannot show (a Llama on the sinusoidal table, a decoder on [CLS]): the
  // step opens on its own model and sentence and says so (the reader's long text on another
  // model could be more tokens than that model reads).
  const asked = models.find((m) => m.id === state.model);
  const unfit = asked && !step.models(asked) ? asked : null;
  if (unfit) {
    const own = entering(n);
    if (own.model) state.set({ model: own.model, text: own.text, target: own.target }, { silent: true });
  }
  controls.configure({
    filter: step.models,
    prefer: (m) => startOf(step, [m]) !== null,
    allowTarget: step.target !== false,
  });
  const model = controls.current();
  for (const gd of body.querySelectorAll(".js-plotly-plot")) purge(gd); // their listeners go too
  clear(body);
  if (!model) {
    body.append(el("p", { class: "empty", text: step.missing || "No model on this server can show this step." }));
    $("#full-view").setAttribute("aria-disabled", "true");
    shownCtx = null;
    return;
  }
  if (unfit)
    body.append(
      el("p", {
        class: "note",
        id: "step-notice",
        text: `This step needs ${step.needs || "another kind of model"}; ${unfit.id} is not one, so the step is shown on ${model.id} with its own sentence.`,
      }),
    );
  const signal = nextRequest();
  const ctx = { model, models, state, save, signal, status, redraw: () => show() };
  shownCtx = ctx;
  $("#full-view").setAttribute("href", step.full(ctx));
  $("#full-view").removeAttribute("aria-disabled");
  await withStatus(status, step.busy || "Running the model…", () => step.show(body, ctx));
  $("#full-view").setAttribute("href", step.full(ctx)); // the picks the panels made
}

bindKeys({
  ArrowRight: () => go(number() + 1),
  PageDown: () => go(number() + 1),
  ArrowLeft: () => go(number() - 1),
  PageUp: () => go(number() - 1),
  Home: () => go(1),
  End: () => go(STEPS.length),
});
for (const id of ["#prev-step", "#next-step"]) {
  $(id).addEventListener("click", (e) => {
    e.preventDefault();
    go(number() + (id === "#prev-step" ? -1 : 1));
  });
}
state.subscribe(() => show()); // back / forward
onProjectorChange(() => show());

show();
