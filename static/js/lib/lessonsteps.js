// The lesson's eleven steps, in the lecture notes' order, one module each under lib/lesson/.
// Each step is {slug, title, text (its explanation, written for this project), models (which
// models it can show), prefer (the models it opens on, best first), sentence (the preset it
// opens on), full(ctx) (its view's URL with the same state), show(body, ctx) (fetch, then mount
// the views' lib components)}; lib/lesson/common.js says what ctx holds.

import { addNorm } from "./lesson/addnorm.js";
import { bert } from "./lesson/bert.js";
import { cross } from "./lesson/cross.js";
import { decoding } from "./lesson/decoding.js";
import { ffn } from "./lesson/ffn.js";
import { heads } from "./lesson/heads.js";
import { mask } from "./lesson/mask.js";
import { positions } from "./lesson/positions.js";
import { qkv } from "./lesson/qkv.js";
import { rnn } from "./lesson/rnn.js";
import { tokens } from "./lesson/tokens.js";

export { LESSON_STATE, startOf } from "./lesson/common.js";

export const STEPS = [tokens, positions, qkv, heads, addNorm, ffn, mask, cross, decoding, bert, rnn];
