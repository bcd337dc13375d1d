// A model card's training metrics in words. card.json keeps them under keys
// (perplexity_ratio_heldout, greedy_continuations_grammatical); a student reads
// "perplexity ÷ a unigram model's, held-out". A key of several parts (a nested metric) is said
// part by part: "copying accuracy without the induction heads · zero-ablated · run of 5".

const SPLIT = {
  heldout: "held-out (unseen combinations)",
  validation: "validation set",
};

/** Base names (their split suffix taken off) in words. */
const WORDS = {
  perplexity: "perplexity",
  unigram_perplexity: "a unigram model's perplexity",
  perplexity_ratio: "perplexity ÷ a unigram model's",
  greedy_continuations: "greedy continuation of",
  greedy_continuations_grammatical: "greedy continuation is grammatical, for",
  sentiment_accuracy: "sentiment accuracy",
  sentiment_accuracy_negated: "sentiment accuracy on negated sentences",
  n_sentiment: "sentences scored for sentiment",
  mlm_top1: "[MASK] filled right (top-1)",
  fill_mask_i_went_to_the: "fills of “i went to the [MASK]”",
  fill_mask_top_is_place: "top fill of “i went to the [MASK]” is a place",
  exact_match: "exact-match translations",
  n: "sentences",
  lecture_translations: "translation of",
  lecture_exact: "every lecture sentence translated exactly",
  encoder_state_gradients: "‖∂loss/∂hₜ‖ over the encoder's states",
  source_tokens: "source tokens",
  recurrence: "along the recurrence alone",
  all: "along every path",
  norms: "norms, step by step",
  first_over_last: "first ÷ last",
  eval_run_lengths: "run lengths measured",
  loss_second_copy: "loss on the second copy",
  induction_scores: "induction score of",
  previous_token_scores: "previous-token score of",
  induction_heads: "induction heads",
  previous_token_head: "previous-token head",
  copy_accuracy: "copying accuracy",
  copy_accuracy_without_induction_heads: "copying accuracy without the induction heads",
  copy_accuracy_without_previous_token_head: "copying accuracy without the previous-token head",
  induction_heads_mean_score: "induction heads' mean score",
  induction_heads_mean_score_without_previous_token_head: "induction heads' mean score without the previous-token head",
  zero: "zero-ablated",
  mean: "mean-ablated",
};

/** One part of a key in words: a known name, a head (L1H0 → L1 H0), a sentence in quotes. */
function partWords(part) {
  if (/^L\d+H\d+$/.test(part)) return part.replace("H", " H");
  if (/\s/.test(part)) return `“${part}”`;
  if (part in WORDS) return WORDS[part];
  const split = Object.keys(SPLIT).find((s) => part.endsWith(`_${s}`));
  if (split) {
    const base = part.slice(0, -split.length - 1);
    return `${WORDS[base] || base.replace(/_/g, " ")}, ${SPLIT[split]}`;
  }
  return part.replace(/_/g, " ");
}

/** A metric's key (its parts joined by " · ", as the card's table flattens them) in words. A
 * number under an induction metric is the length of the repeated run it was measured at. */
export function metricWords(key) {
  const parts = key.split(" · ");
  const runs = /^(loss_second_copy|induction_scores|copy_accuracy|induction_heads_mean_score)/.test(parts[0]);
  return parts
    .map((part, i) => (i > 0 && runs && /^\d+$/.test(part) ? `, run of ${part}` : ` · ${partWords(part)}`))
    .join("")
    .slice(3)
    .replace(/ (of|for) · /g, " $1 ")
    .replace(/ · , run/g, ", run");
}
