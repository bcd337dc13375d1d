// A recurrent cell's arithmetic as the lecture notes write it: each cell's equations, and one
// unit of one step recomputed from the parts the server captured (POST /rnn/unroll: W_x·input
// and W_h·previous state cut in the cell's chunks, the gates, the state). The recomputed state
// is shown beside the captured one: the formula, checked on the model's own numbers.

import { fmt } from "./dom.js";

export const CELL_NAME = { lstm: "LSTM", gru: "GRU", tanh: "plain tanh RNN" };

export const GATE_LABEL = {
  i: "input gate i",
  f: "forget gate f",
  o: "output gate o",
  g: "candidate g",
  c: "cell state c",
  r: "reset gate r",
  z: "update gate z",
  n: "candidate n",
};

/** The gates the gates panel shows for each cell, in order (the plain RNN has none). */
export const SHOWN_GATES = { lstm: ["i", "f", "o", "c"], gru: ["z", "r"], tanh: [] };

/** The symbols of a stack: the encoder's hₜ over xₜ, the decoder's sᵢ over [yᵢ₋₁; ctxᵢ]. */
export function symbols(stack) {
  return stack === "encoder"
    ? { h: "hₜ", prev: "hₜ₋₁", x: "xₜ", c: "cₜ", cPrev: "cₜ₋₁", step: "t" }
    : { h: "sᵢ", prev: "sᵢ₋₁", x: "[yᵢ₋₁; ctxᵢ]", c: "cᵢ", cPrev: "cᵢ₋₁", step: "i" };
}

/** The cell's equations for a stack: [[equation, what it says], ...]. */
export function formula(cell, stack) {
  const s = symbols(stack);
  const a = `Wₓ ${s.x} + Wₕ ${s.prev} + b`;
  const lines = {
    tanh: [[`${s.h} = tanh(${a})`, "the whole state is rewritten at every step"]],
    lstm: [
      [`i, f, o = σ(${a})`, "three gates, one block of rows each, between 0 and 1"],
      [`g = tanh(${a})`, "the candidate content"],
      [`${s.c} = f ⊙ ${s.cPrev} + i ⊙ g`, "keep part of the old memory, write part of the new"],
      [`${s.h} = o ⊙ tanh(${s.c})`, "show part of the memory"],
    ],
    gru: [
      [`r, z = σ(${a})`, "reset and update gates"],
      [`n = tanh(Wₓ ${s.x} + b + r ⊙ (Wₕ ${s.prev} + b'))`, "the candidate, seeing r ⊙ the past"],
      [`${s.h} = (1 − z) ⊙ n + z ⊙ ${s.prev}`, "z keeps the old state, 1 − z takes the new"],
    ],
  }[cell];
  if (stack === "decoder") lines.push(["ctxᵢ = Σⱼ αᵢⱼ hⱼ", "the attention's context over the English states"]);
  return lines;
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/**
 * One unit k of step t: rows [symbol, how, value] recomputed from the captured parts, and the
 * state the server captured. steps: one stack of an /rnn/unroll answer (decoded); chunks: the
 * answer's chunk names; prev: {h, c} the unit's previous state (and cell state for an LSTM).
 */
export function unitArithmetic(cell, chunks, steps, stack, t, k, prev) {
  const s = symbols(stack);
  const part = (name) => {
    const j = chunks.indexOf(name);
    return { wx: steps.wx[t][j][k], wh: steps.wh[t][j][k] };
  };
  const rows = [];
  const pre = (name, label, squash, fn) => {
    const { wx, wh } = part(name);
    const value = fn(wx + wh);
    rows.push([label, `${squash}(${fmt(wx, 3)} + ${fmt(wh, 3)})`, value]);
    return value;
  };
  let h;
  if (cell === "tanh") {
    const { wx, wh } = part("h");
    rows.push([`Wₓ ${s.x} + bₓ`, "the input's part", wx]);
    rows.push([`Wₕ ${s.prev} + bₕ`, `the past's part (${s.prev} = ${fmt(prev.h, 3)})`, wh]);
    h = Math.tanh(wx + wh);
    rows.push([s.h, `tanh(${fmt(wx, 3)} + ${fmt(wh, 3)})`, h]);
  } else if (cell === "lstm") {
    const i = pre("i", "i", "σ", sigmoid);
    const f = pre("f", "f", "σ", sigmoid);
    const g = pre("g", "g", "tanh", Math.tanh);
    const o = pre("o", "o", "σ", sigmoid);
    const c = f * prev.c + i * g;
    rows.push([s.c, `${fmt(f, 3)} · ${fmt(prev.c, 3)} + ${fmt(i, 3)} · ${fmt(g, 3)}`, c]);
    h = o * Math.tanh(c);
    rows.push([s.h, `${fmt(o, 3)} · tanh(${fmt(c, 3)})`, h]);
  } else {
    const r = pre("r", "r", "σ", sigmoid);
    const z = pre("z", "z", "σ", sigmoid);
    const { wx, wh } = part("n");
    const n = Math.tanh(wx + r * wh);
    rows.push(["n", `tanh(${fmt(wx, 3)} + ${fmt(r, 3)} · ${fmt(wh, 3)})`, n]);
    h = (1 - z) * n + z * prev.h;
    rows.push([s.h, `(1 − ${fmt(z, 3)}) · ${fmt(n, 3)} + ${fmt(z, 3)} · ${fmt(prev.h, 3)}`, h]);
  }
  return { rows, recomputed: h, captured: steps.h[t][k] };
}

/** The unit's previous state (and cell state) before step t: zeros, or the decoder's s₀. */
export function previousState(steps, stack, t, k, s0) {
  if (t > 0) return { h: steps.h[t - 1][k], c: steps.gates.c ? steps.gates.c[t - 1][k] : 0 };
  return { h: stack === "decoder" ? s0[k] : 0, c: 0 };
}

export const norm = (v) => Math.sqrt(v.reduce((acc, x) => acc + x * x, 0));

/** ‖v‖ of a [K][d] chunked vector, all chunks together. */
export const chunkedNorm = (m) => Math.sqrt(m.reduce((acc, row) => acc + norm(row) ** 2, 0));

/** Mean over units of each step: [T][d] -> [T]. */
export const stepMeans = (m) => m.map((row) => row.reduce((a, b) => a + b, 0) / row.length);
