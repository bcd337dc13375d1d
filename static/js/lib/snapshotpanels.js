// The heads forming during training (GET /models/{id}/snapshots, issue 22): the model's own
// training loss with its snapshots marked, every head's induction and previous-token score
// per snapshot (measured on the probe from each snapshot's weights), and one head's attention
// on the probe at the snapshot a slider picks (GET /models/{id}/snapshots/{step}/attention).

import * as api from "./api.js";
import { $, clear, fmt } from "./dom.js";
import { registerExport } from "./export.js";
import { headName } from "./headscores.js";
import { headColor } from "./palette.js";
import { fontSize, react, tokenHeatmap } from "./plots.js";
import { labelTokens } from "./tokens.js";

const LAYER_DASH = ["dot", "solid", "dash", "dashdot"];
const SCORE_PLOTS = { induction: "#snap-induction", previous_token: "#snap-previous" };
const MARK = "#a64200"; // the snapshot shown: the diverging palette's dark orange

/** The mean of each window of `w` losses starting at every step (the curve the snapshots' losses are read off). */
function smoothed(loss, w) {
  const out = [];
  let sum = 0;
  for (let i = 0; i < loss.length; i++) {
    sum += loss[i];
    if (i >= w) sum -= loss[i - w];
    out.push(sum / Math.min(i + 1, w));
  }
  return out;
}

/** A vertical line at `x` across the plot (Plotly shape). */
const vline = (x, color, dash = "solid") => ({
  type: "line",
  xref: "x",
  yref: "paper",
  x0: x,
  x1: x,
  y0: 0,
  y1: 1,
  line: { color, width: 2, dash },
});

/** The causal pattern with the cells a query cannot see as null (drawn grey, "masked"). */
const causal = (m) => m.map((row, i) => row.map((v, j) => (j > i ? null : v)));

/**
 * The panels in section#training of /heads: update({model, seed, run, layer, head, step})
 * shows them for a model saved with snapshots (model.snapshots > 0), hide() hides them.
 * onStep(step) hears the snapshot the slider picks (for the URL).
 */
export function trainingPanels({ onStep, onError }) {
  const root = $("#training");
  const slider = $("#snap-slider");
  let data = null; // the /snapshots answer shown
  let dataKey = "";
  let view = null; // {model, seed, run, layer, head, step}
  let shown = null; // the /snapshots/{step}/attention answer drawn
  const attention = new Map(); // "step layer head seed run" -> its answer (a promise)
  let loading = null;

  const steps = () => data.snapshots.map((s) => s.step);
  const formedAt = () => data.formed.induction_formed_at_step;

  async function update(next) {
    view = next;
    root.hidden = false;
    const key = `${next.model.id} ${next.seed} ${next.run}`;
    if (key !== dataKey) {
      dataKey = key;
      attention.clear();
      const query = `seed=${next.seed}&run_length=${next.run}`;
      loading = api.get(`/models/${encodeURIComponent(next.model.id)}/snapshots?${query}`);
      let answer;
      try {
        answer = await loading;
      } catch (error) {
        if (dataKey === key) {
          dataKey = "";
          onError(error);
        }
        return;
      }
      if (dataKey !== key) return; // a newer probe was asked for meanwhile
      data = answer;
    } else if (!data) {
      return; // the answer for this probe is still on its way: it draws then
    }
    draw();
  }

  /** The step shown: the one asked for if it is a snapshot, else where the induction heads formed, else the last. */
  function stepShown() {
    const all = steps();
    if (all.includes(view.step)) return view.step;
    return all.includes(formedAt()) ? formedAt() : all.at(-1);
  }

  function draw() {
    const step = stepShown();
    explain();
    drawLoss(step);
    for (const [score, sel] of Object.entries(SCORE_PLOTS)) drawScores($(sel), score, step);
    const index = steps().indexOf(step);
    slider.max = String(data.snapshots.length - 1);
    slider.value = String(index);
    const snap = data.snapshots[index];
    const text = `step ${step} of ${data.steps} (snapshot ${index + 1} of ${data.snapshots.length}), loss ${fmt(snap.loss, 3)}`;
    $("#snap-value").textContent = text;
    slider.setAttribute("aria-valuetext", text);
    drawAttention(step);
  }

  function explain() {
    const f = data.formed;
    const box = $("#training-explain");
    clear(box);
    const [first, last] = [data.snapshots[0], data.snapshots.at(-1)];
    let text = "";
    if (data.run && !data.run.identical_to_checkpoint) {
      text +=
        `These snapshots come from a rerun of the model's recipe and seed (torch ${data.run.torch}, ${data.run.torch_threads} thread): ` +
        `it is not bit-identical to the weights the rest of this page reads (largest weight difference ${fmt(data.run.max_abs_weight_difference_from_checkpoint, 2)}), ` +
        `and its own induction heads are ${(data.run.induction_heads || []).join(", ") || "none"}, its previous-token head ${data.run.previous_token_head}. `;
    }
    text +=
      `${data.snapshots.length} snapshots of the ${data.steps}-step run (seed ${data.seed}), ` +
      `from the initial weights (loss ${fmt(first.loss, 2)}) to the trained model (loss ${fmt(last.loss, 3)}). `;
    if (f.induction_formed_at_step === null) {
      text += `No head's induction score passed ${f.threshold} in these snapshots.`;
    } else {
      const [before, at] = f.induction_formed_between_steps || [null, f.induction_formed_at_step];
      const means = f.induction_heads_mean_score;
      const i = data.snapshots.findIndex((s) => s.step === at);
      const [lossBefore, lossAt] = f.loss_before_and_at_formation || [null, null];
      text +=
        `The induction heads (${f.induction_heads.join(", ")}) formed ` +
        (before === null ? `by step ${at}` : `between steps ${before} and ${at}`) +
        `: their mean induction score went from ${fmt(means[i - 1] ?? 0, 2)} to ${fmt(means[i], 2)} ` +
        `(first past ${f.threshold})` +
        (lossBefore === null
          ? ". "
          : ` while the training loss went from ${fmt(lossBefore, 2)} to ${fmt(lossAt, 2)}. `);
      const fall = f.loss_fell_fastest;
      text += `The loss fell fastest between steps ${fall.from_step} and ${fall.to_step} (${fmt(fall.loss[0], 2)} → ${fmt(fall.loss[1], 2)}): the phase change of Olsson et al. (2022). `;
      text +=
        f.previous_token_formed_at_step === null
          ? `The previous-token head ${f.previous_token_head} never passed ${f.threshold} here.`
          : `The previous-token head ${f.previous_token_head} they read through first passed ${f.threshold} at step ${f.previous_token_formed_at_step}.`;
    }
    const { seed, run_length: n } = f.probe;
    box.textContent = `${text} (Measured when the snapshots were written, on the probe of seed ${seed}, a run of ${n}.)`;
  }

  function drawLoss(step) {
    const loss = data.loss;
    const x = loss.map((_, i) => i);
    const w = data.loss_window;
    const traces = [
      {
        type: "scatter",
        mode: "lines",
        x,
        y: loss,
        name: "loss of each batch",
        line: { color: "#b8bfcc", width: 1 },
        hovertemplate: "step %{x}: loss %{y:.4f}<extra>batch</extra>",
      },
      {
        type: "scatter",
        mode: "lines",
        x,
        y: smoothed(loss, w),
        name: `mean over ${w} batches`,
        line: { color: "#0072B2", width: 2 },
        hovertemplate: `step %{x}: loss %{y:.4f}<extra>mean of ${w}</extra>`,
      },
      {
        type: "scatter",
        mode: "markers",
        x: steps(),
        y: data.snapshots.map((s) => s.loss),
        name: "snapshots",
        marker: { color: "#000000", size: 9, symbol: "diamond" },
        hovertemplate: "snapshot at step %{x}: loss %{y:.4f}<extra></extra>",
      },
    ];
    const shapes = [vline(step, MARK)];
    if (formedAt() !== null) shapes.push(vline(formedAt(), "#009E73", "dash"));
    react($("#snap-loss"), traces, {
      height: 300,
      margin: { l: 60, r: 20, t: 12, b: 50 },
      xaxis: { title: { text: "training step" }, zeroline: false },
      yaxis: {
        title: { text: "loss (log scale)" },
        type: "log",
        tickvals: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
        ticktext: ["0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3", "10"],
      },
      legend: { orientation: "h", y: 1.12 },
      shapes,
    });
    $("#snap-loss-note").textContent =
      `The cross-entropy on the copied tokens of each training batch; diamonds: the snapshots (${data.selection}). ` +
      `Orange: the snapshot shown below${formedAt() === null ? "" : "; green, dashed: where the induction heads formed"}.`;
  }

  function drawScores(div, score, step) {
    const layers = data.snapshots[0].scores[score].length;
    const heads = data.snapshots[0].scores[score][0].length;
    const traces = [];
    for (let l = 0; l < layers; l++) {
      for (let h = 0; h < heads; h++) {
        const picked = l === view.layer && h === view.head;
        traces.push({
          type: "scatter",
          mode: "lines+markers",
          x: steps(),
          y: data.snapshots.map((s) => s.scores[score][l][h]),
          name: headName(l, h),
          line: { color: headColor(h), width: picked ? 4 : 1.5, dash: LAYER_DASH[l % LAYER_DASH.length] },
          marker: { size: picked ? 8 : 5 },
          hovertemplate: `${headName(l, h)} at step %{x}: %{y:.4f}<extra></extra>`,
        });
      }
    }
    react(div, traces, {
      height: 320,
      margin: { l: 56, r: 10, t: 12, b: 50 },
      xaxis: { title: { text: "training step" }, zeroline: false },
      yaxis: { title: { text: score === "induction" ? "induction score" : "previous-token score" }, range: [0, 1.02] },
      legend: { font: { size: fontSize() - 1 } },
      shapes: [vline(step, MARK)],
    });
    $("#snap-scores-note").textContent =
      `Measured now from each snapshot's weights on the probe (seed ${data.probe.seed}, a run of ${data.probe.run_length} tokens, twice). ` +
      `Dotted: layer 0, solid: layer 1; the thick line is the head picked above (${headName(view.layer, view.head)}). ` +
      `${data.definitions.induction[0].toUpperCase()}${data.definitions.induction.slice(1)} (induction); ${data.definitions.previous_token} (previous token).`;
  }

  async function drawAttention(step) {
    const { model, layer, head, seed, run } = view;
    const key = `${step} ${layer} ${head} ${seed} ${run}`;
    if (!attention.has(key)) {
      const query = `layer=${layer}&head=${head}&seed=${seed}&run_length=${run}`;
      const pending = api.get(`/models/${encodeURIComponent(model.id)}/snapshots/${step}/attention?${query}`);
      pending.catch(() => attention.delete(key));
      attention.set(key, pending);
    }
    let answer;
    try {
      answer = await attention.get(key);
    } catch (error) {
      onError(error);
      return;
    }
    const now = view;
    if (stepShown() !== step || now.layer !== layer || now.head !== head) return; // moved on meanwhile
    shown = answer;
    const tokens = labelTokens(answer.tokens.source).map((t, i) => ({ ...t, index: i }));
    const title = `${headName(layer, head)} at step ${step} (loss ${fmt(answer.loss, 3)})`;
    $("#snap-attn-title").textContent = `The head's attention at this snapshot: ${title}`;
    await tokenHeatmap($("#snap-attn"), causal(answer.attention), {
      rows: tokens,
      cols: tokens,
      value: "weight",
      zmin: 0,
      zmax: 1,
    });
    const s = answer.scores;
    $("#snap-attn-note").textContent =
      `${headName(layer, head)} on the probe at step ${step}: induction ${fmt(s.induction, 3)}, previous token ${fmt(s.previous_token, 3)}. ` +
      "In the second run an induction head lights a stripe parallel to the main diagonal, starting at the first run's second token " +
      "(each token looks at the one that followed its earlier occurrence); a previous-token head lights the diagonal just below the main one. " +
      "Grey cells are masked (a token sees only the ones before it).";
  }

  slider.addEventListener("input", () => {
    if (!data) return;
    const step = steps()[Number.parseInt(slider.value, 10)];
    view = { ...view, step };
    onStep(step);
    draw();
  });

  registerExport("snap-loss", {
    filename: () => `${data.model}-training-loss`,
    plot: () => $("#snap-loss"),
    data: () => ({ model: data.model, steps: data.steps, seed: data.seed, loss: data.loss, snapshots: data.snapshots }),
  });
  for (const [score, sel] of Object.entries(SCORE_PLOTS)) {
    registerExport(sel.slice(1), {
      filename: () => `${data.model}-snapshots-${score}`,
      plot: () => $(sel),
      data: () => ({
        model: data.model,
        probe: data.probe,
        score,
        definition: data.definitions[score],
        snapshots: data.snapshots.map((s) => ({ step: s.step, [score]: s.scores[score] })),
      }),
    });
  }
  registerExport("snap-attn", {
    filename: () => `${shown.model}-step${shown.step}-L${shown.layer}H${shown.head}`,
    plot: () => $("#snap-attn"),
    data: () => shown,
  });

  return {
    update,
    hide() {
      root.hidden = true;
    },
  };
}
