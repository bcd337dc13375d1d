// One-click sentences from the lecture notes (and DESIGN section 4), per kind of model.

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

const BY_ARCHITECTURE = {
  rnn: [...BY_KIND.seq2seq, RNN_GRADIENT_PRESET],
};

const BY_MODEL = {
  "induction-2l": [
    { text: "cat honey store mat dog bear cat honey store mat dog bear", note: "a run, repeated" },
    { text: "the black cat ate the mouse the black cat ate the mouse" },
    { text: "red green blue apple car red green blue apple car" },
  ],
};

/** [{text, target?, note?}] for a model (ModelInfo). */
export function presetsFor(model) {
  if (!model) return [];
  return (
    BY_MODEL[model.id] ||
    BY_ARCHITECTURE[model.architecture] ||
    BY_KIND[model.kind] ||
    ENGLISH.map((text) => ({ text }))
  );
}

export const REFERENCE_TRANSLATIONS = Object.fromEntries(TRANSLATIONS);
