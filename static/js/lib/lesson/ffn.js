// Step 6: the feed-forward network (lib/block/ffn.js, as /block draws it).

import { blockTokens } from "../block/common.js";
import { renderFFN } from "../block/ffn.js";
import { blockAnswer, blockOptions, blockUrl, mount } from "./block.js";
import { isTransformer } from "./common.js";

export const ffn = {
  slug: "ffn",
  title: "The feed-forward network",
  text: [
    "Attention moves information between tokens. The feed-forward network then works on each token alone, with the same weights for all: a first matrix widens the vector (128 → 512 here), a non-linearity switches features on and off, and a second matrix brings it back to d_model. Its output is added to the stream.",
    "Without the non-linearity the two matrices would multiply into a single linear map. ReLU shuts every unit whose input is negative; GELU does it softly; SwiGLU lets a second projection decide, unit by unit, how much gets through. Below: the hidden units of one block, how strongly each token's units fire (ReLU's shut units are exactly 0; a smooth activation only damps them), and the strongest units of a token; pick one to see where else it fires.",
  ],
  needs: "a model with feed-forward layers",
  models: (m) => isTransformer(m) && !m.attn_only,
  prefer: ["seq2seq-en-fr", "encoder-mini", "decoder-mini"],
  sentence: "the black cat ate the mouse",
  target: false,
  full: (ctx) => blockUrl(ctx, { token: ctx.state.token, unit: ctx.state.unit }),
  async show(body, ctx) {
    const data = await blockAnswer(ctx);
    if (!data || ctx.signal.aborted) return;
    const { state, save } = ctx;
    blockOptions(body, ctx);
    const panels = mount(body);
    const draw = () => {
      const tokens = blockTokens(data);
      const token = state.token >= 0 && state.token < tokens.length ? state.token : tokens.length - 1;
      renderFFN(panels, data, {
        token,
        unit: state.unit,
        prefix: "lesson-",
        onUnit: (u) => {
          save({ unit: u });
          draw();
        },
        onToken: (t) => {
          save({ token: t, unit: -1 });
          draw();
        },
      });
    };
    draw();
  },
};
