"""Tokenizers for the shipped models, trained with the Hugging Face ``tokenizers`` library.

* ``train_wordpiece``  WordPiece for ``encoder-mini`` (BERT-style, adds [CLS] ... [SEP])
* ``train_byte_bpe``   byte-level BPE for the decoders (GPT-2 style)
* ``train_shared_bpe`` one BPE for English and French, for ``seq2seq-en-fr``

Any text tokenizes: the byte-level BPE has all 256 bytes in its vocabulary, the two others
map what they never saw to their unknown token. Every token carries character offsets
(``encoding.offsets``) into the text the user typed, so the UI can show that text.

Only the WordPiece tokenizer adds special tokens by itself. For the two BPE tokenizers the
caller adds them where the model needs them: ``<|endoftext|>`` as BOS and EOS for the
decoders, ``<s>`` / ``</s>`` around the French side of seq2seq.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer, WordPieceTrainer

WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4
BYTE_BPE_SPECIALS = ["<pad>", "<|endoftext|>"]  # ids 0, 1
SHARED_BPE_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]  # ids 0..3

# Characters every vocabulary gets even if the corpus lacks them, so that digits,
# accents and punctuation ("crème brûlée", "2024", "it's") give real tokens, not unknowns.
ALPHABET = list("abcdefghijklmnopqrstuvwxyz0123456789àâäçéèêëîïôöùûüÿœæ.,;:!?'\"-()")


def train_wordpiece(texts: Iterable[str], vocab_size: int = 1000) -> Tokenizer:
    """A BERT-style WordPiece tokenizer: lowercase (accents kept), [CLS] text [SEP].

    The normalizer drops control characters and NUL; a word with a character outside the
    vocabulary (emoji, most other scripts) becomes one [UNK].
    """
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.NFC(),
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
            ),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=WORDPIECE_SPECIALS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    # The trainer's initial_alphabet would only add "c", not "##c": add both forms.
    vocab = tok.get_vocab()
    for piece in ALPHABET + ["##" + c for c in ALPHABET]:
        vocab.setdefault(piece, len(vocab))
    tok.model = models.WordPiece(vocab=vocab, unk_token="[UNK]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok


def train_byte_bpe(texts: Iterable[str], vocab_size: int = 1000) -> Tokenizer:
    """A GPT-2 style byte-level BPE: never an unknown token, since all 256 bytes are in
    the vocabulary. A space is put before the text so the first word gets the same token
    as inside a sentence ("Ġcat")."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)  # offsets without the space
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BYTE_BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def train_shared_bpe(texts: Iterable[str], vocab_size: int = 2000) -> Tokenizer:
    """One BPE for both sides of English -> French. Metaspace marks word starts with "▁",
    so decoding restores the spaces; characters never seen become <unk>."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SHARED_BPE_SPECIALS,
        initial_alphabet=ALPHABET,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok
