// How a token reads to a student, whatever the tokenizer made it.
//
// Tokenizers mark word boundaries three ways: WordPiece (BERT) prefixes a piece that continues
// a word with "##"; byte-level BPE (GPT-2, RoBERTa) and SentencePiece (Llama, Marian) prefix a
// piece that *starts* a word with a space (shown as Ġ or ▁). The views show one convention for
// all of them: a word-initial piece bare ("jump"), a piece that continues the word before it
// with "##" ("##ing"), as the BERT papers and most lecture notes write it. Where chips sit in a
// row (the explorer's tokens, the player's output) a continuation is also drawn joined to the
// piece before it.

const WORD_START = /^[\sĠ▁]/;
const WORDY = /[\p{L}\p{N}]/u; // a piece with a letter or digit: punctuation never "continues"
// A special token's name, as a decoder writes it: <|endoftext|>, </s>, [SEP]
const SPECIAL_NAME = /^(<\|[^|]+\|>|<\/?[A-Za-z_]+>|\[[A-Z_]+\])$/;

/**
 * The characters of a piece, markers dropped: "Ġthe" / "▁the" / " the" -> "the", "##ing" ->
 * "ing"; a piece that is only whitespace shows as ␣ / ↵ / ⇥; an empty one as ∅.
 */
export function displayToken(text) {
  const s = String(text ?? "");
  if (s === "") return "∅";
  if (/^\s+$/.test(s)) return s.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
  const bare = s.length > 2 && s.startsWith("##") ? s.slice(2) : s.replace(/^[ Ġ▁]/, "");
  return bare.replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

/** True when a generated token continues the previous word: no word-start marker. */
export function continuesWord(text) {
  const s = String(text ?? "");
  if (s.length > 2 && s.startsWith("##")) return true;
  return !WORD_START.test(s) && WORDY.test(s);
}

/**
 * The tokens of one sequence with `label` (how to write the token in a label: "##ing" for a
 * continuation) and `cont` added. Tokens with character offsets (the user's own text) continue
 * a word when nothing separates them from the piece before; tokens known only by id (generated,
 * predicted, replayed) by their markers. A tokenizer that marks word starts (some piece begins
 * with a space, Ġ or ▁) makes every unmarked piece a continuation; WordPiece marks only "##".
 */
export function labelTokens(tokens) {
  const marksStarts = tokens.some((t) => !t.special && WORD_START.test(String(t.text ?? "")));
  let prev = null;
  return tokens.map((t) => {
    const raw = String(t.text ?? "");
    let cont = false;
    if (!t.special && prev && !prev.special) {
      if (raw.length > 2 && raw.startsWith("##")) cont = true;
      else if (Number.isInteger(t.start) && Number.isInteger(prev.end))
        cont = prev.end === t.start && WORDY.test(raw) && WORDY.test(String(prev.text ?? ""));
      else if (marksStarts) cont = !WORD_START.test(raw) && WORDY.test(raw);
    }
    prev = t;
    const bare = displayToken(raw);
    return { ...t, cont, label: cont ? `##${bare}` : bare };
  });
}

/** The label of a token: its `label` when labelTokens() made one, else its bare text. */
export function tokenLabel(t) {
  return t.label ?? displayToken(t.text);
}

/**
 * The label of a token known only by id, e.g. a top-k candidate. `afterWord`: there is a word
 * before it to continue; `marksStarts`: the model's tokenizer marks word starts (see
 * marksWordStarts). The id is added where the text is no readable character (a byte-level
 * piece of a multi-byte character decodes to �, a missing one to nothing).
 */
export function candidateLabel({ id, text }, { afterWord = true, marksStarts = true } = {}) {
  const raw = String(text ?? "");
  const named = SPECIAL_NAME.test(raw);
  const marked = raw.length > 2 && raw.startsWith("##");
  const cont = afterWord && !named && (marked || (marksStarts && continuesWord(raw)));
  const bare = named ? raw : displayToken(raw);
  const label = cont ? `##${bare}` : bare;
  return raw.includes("\uFFFD") || raw === "" ? `${label} (id ${id})` : label;
}

/** Whether a tokenizer marks word starts, judged from tokens it produced (e.g. a prompt). */
export function marksWordStarts(tokens) {
  return tokens.some((t) => !t.special && WORD_START.test(String(t.text ?? "")));
}
