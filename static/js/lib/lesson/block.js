// What the lesson's two block steps (Add & Norm, the FFN) share: the stack and layer they
// show, the POST /block answer, their pickers, "Open in full view" at /block.

import * as api from "../api.js";
import { batchChoices } from "../block/comparison.js";
import { el } from "../dom.js";
import { depthOf, numbered, optionsRow, stacksOf, viewUrl } from "./common.js";

export function blockPicks(ctx) {
  const { model, state } = ctx;
  const stacks = stacksOf(model);
  const stack = stacks.includes(state.stack) ? state.stack : stacks[0];
  const layer = Math.min(Math.max(0, state.layer), depthOf(model, stack) - 1);
  return { stack, layer };
}

export async function blockAnswer(ctx) {
  const { model, state, signal } = ctx;
  const { stack, layer } = blockPicks(ctx);
  const batch = batchChoices(model, state.text, state.drop)
    .filter((c) => c.checked)
    .map((c) => c.text);
  return api.block(model, { text: state.text, target: state.target, stack, layer, batch }, { signal });
}

export function blockOptions(body, ctx) {
  const { model, state, save, redraw } = ctx;
  const { stack, layer } = blockPicks(ctx);
  const fields = [];
  if (stacksOf(model).length > 1) {
    fields.push({
      label: "Stack",
      name: "stack",
      options: stacksOf(model).map((s) => ({ value: s, label: s })),
      value: stack,
      onChange: (v) => {
        save({ stack: v, layer: -1, norm: "", token: -1, unit: -1 });
        redraw();
      },
    });
  }
  fields.push({
    label: "Layer",
    name: "layer",
    options: numbered(depthOf(model, stack)),
    value: layer,
    onChange: (v) => {
      save({ layer: Number(v), unit: -1 });
      redraw();
    },
  });
  body.append(optionsRow(fields));
  return state;
}

export const blockUrl = (ctx, extra = {}) => {
  const { stack, layer } = blockPicks(ctx);
  return viewUrl("/block", ctx, { stack: stacksOf(ctx.model).length > 1 ? stack : "", layer, ...extra });
};

export function mount(body, cls = "stack-panels") {
  const div = el("div", { class: cls });
  body.append(div);
  return div;
}
