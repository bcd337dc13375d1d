// One-click sentences from the lecture notes (and DESIGN section 4), per kind of model, and
// for models that read 512 tokens or more (imported ones), a long passage told after the notes.

import { can } from "./api.js";

const TRANSLATIONS = [
  ["the black cat ate the mouse", "le chat noir a mangé la souris"],
  ["i love machine learning", "j'aime l'apprentissage automatique"],
  ["you are welcome", "de rien"],
  ["the cat sat on the mat", "le chat s'est assis sur le tapis"],
  ["the dog bites the man", "le chien mord l'homme"],
  ["the man bites the dog", "l'homme mord le chien"],
  ["the bear ate the honey", "l'ours a mangé le miel"],
  ["i went to the store", "je suis allé au magasin"],
];

const ENGLISH = [
  "the black cat ate the mouse",
  "the cat sat on the mat",
  "the dog bites the man",
  "the man bites the dog",
  "i love machine learning",
  "i went to the store",
  "the bear ate the honey",
  "you are welcome",
];

const BY_KIND = {
  encoder: [
    { text: "i went to the store", note: "the MLM example" },
    { text: "i [MASK] to the [MASK]", note: "masked: what does BERT fill in?" },
    { text: "the movie was not good", note: "negation: negative" },
    { text: "i love machine learning" },
    { text: "the cat sat on the mat" },
    { text: "the dog bites the man" },
    { text: "i am chetan", note: "an unseen name" },
  ],
  decoder: ENGLISH.map((text) => ({ text })),
  seq2seq: TRANSLATIONS.map(([text, target]) => ({ text, target })),
};

/** The first four lecture sentences run together: 20 source tokens, the sentence on which
 * the RNN cards measure the gradient norms (training/evaluate.py GRADIENT_PAIR). */
export const RNN_GRADIENT_PRESET = {
  text: TRANSLATIONS.slice(0, 4)
    .map(([en]) => en)
    .join(" "),
  target: TRANSLATIONS.slice(0, 4)
    .map(([, fr]) => fr)
    .join(" "),
  note: "20 tokens: the four first lecture sentences in a row, the distance a gradient must travel",
};

/** A role-swap sentence (training/corpus.py role_swap_pairs): "cheese" is never a subject in
 * training. The LSTM writes a subject it has seen instead ("le chien noir…"), the
 * transformer translates it; tests/quality and tests/e2e measure both. */
export const RNN_ROLE_SWAP_PRESET = {
  text: "the black cheese bites the boy",
  target: "le fromage noir mord le garçon",
  label: "where the RNN fails and the transformer does not",
  note: "a noun as a subject it never was in training",
};

const BY_ARCHITECTURE = {
  rnn: [...BY_KIND.seq2seq, RNN_GRADIENT_PRESET, RNN_ROLE_SWAP_PRESET],
};

const BY_MODEL = {
  "induction-2l": [
    { text: "cat honey store mat dog bear cat honey store mat dog bear", note: "a run, repeated" },
    { text: "the black cat ate the mouse the black cat ate the mouse" },
    { text: "red green blue apple car red green blue apple car" },
  ],
};

// What the lecture notes say about attention, retold in one passage: 489 tokens for
// all-MiniLM-L6-v2's WordPiece, a long input for every view's long-input path.
export const LONG_PASSAGE =
  "Before transformers, recurrent networks read a sentence one word at a time. Each step squeezed everything seen so far into one hidden vector, so the last word depended on the first only through a long chain of updates. Training was slow, because no step could start before the previous one had finished, and gradients faded or exploded on the way back through that chain. A transformer reads every word at once. Each token first becomes an embedding, a vector of a few hundred numbers, and a positional encoding is added so that the model knows where the token sits: attention alone does not see word order. Then comes self-attention. Every token asks a question with its query vector, every token offers an answer with its key vector, and the dot product of a query with a key says how well they match. The scores are divided by the square root of the key size, so that the softmax does not saturate, and the softmax turns each row of scores into weights that sum to one. Each token then takes the weighted average of the value vectors: what it passes on depends on where it looked. A head does this with its own projections, and a layer runs several heads side by side, so that one head can follow the previous word, another the subject of the verb, another the end of the sentence. Their outputs are concatenated and mixed by one more matrix, added back to the input through a residual connection, normalised, and passed through a small feed-forward network applied to each token alone. Stacking such layers lets later heads build on what earlier heads found. In a decoder, a mask hides the future: a token may only attend to itself and to the tokens before it, which is what lets the model generate text one token at a time, feeding each choice back as the next input. With rotary position embeddings the queries and keys are rotated by an angle that grows with their position, so that their score depends only on how far apart they are. In an encoder-decoder, the decoder also attends to the encoder's output: this cross-attention is where a translation model looks at the source sentence while it writes each word of the target. Because every pair of tokens is compared, the cost grows with the square of the length: a thousand tokens mean a million scores per head.";

/** [{text, target?, note?}] for a model (ModelInfo). */
export function presetsFor(model) {
  if (!model) return [];
  let presets =
    BY_MODEL[model.id] ||
    BY_ARCHITECTURE[model.architecture] ||
    BY_KIND[model.kind] ||
    ENGLISH.map((text) => ({ text }));
  if (model.kind === "encoder" && !can(model, "fill-mask")) presets = presets.filter((p) => !p.text.includes("[MASK]"));
  if (model.max_len >= 512 && model.kind !== "seq2seq") {
    presets = [...presets, { text: LONG_PASSAGE, label: "a long passage (~490 tokens)", note: "the lecture, retold" }];
  }
  return presets;
}

export const REFERENCE_TRANSLATIONS = Object.fromEntries(TRANSLATIONS);
