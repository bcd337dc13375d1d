"""The three tokenizers: any input tokenizes with offsets into the text the user typed,
corpus words are single tokens, special ids are fixed, JSON round-trips."""

import unicodedata

import pytest
from tokenizers import Tokenizer, pre_tokenizers

from training import corpus
from training.tokenizer import train_byte_bpe, train_shared_bpe, train_wordpiece

ODD_INPUTS = [
    "the black cat ate the mouse",
    "The Zyxwvut flibbertigibbets!",  # unseen words, capitals, punctuation
    "😀🐈",
    "crème brûlée",
    "猫が好き",
    "مرحبا",
    "İstanbul ﬁne",  # lowercasing and NFC change the length
    "a\x00b\x07c\x1b[0m",
    "it's 2024, isn't it?",
    "the cat " * 250,
    "x" * 2000,
    "",
    "   \t\n ",
]


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Tokenizer]:
    lm = corpus.lm_sentences(seed=0).train
    pairs = corpus.translation_splits(seed=0).train
    return {
        "wordpiece": train_wordpiece(lm),
        "byte_bpe": train_byte_bpe(lm),
        "shared_bpe": train_shared_bpe([t for pair in pairs for t in pair]),
    }


KINDS = ["wordpiece", "byte_bpe", "shared_bpe"]


def test_special_token_ids(tokenizers):
    expected = {
        "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        "byte_bpe": ["<pad>", "<|endoftext|>"],
        "shared_bpe": ["<pad>", "<unk>", "<s>", "</s>"],
    }
    for kind, specials in expected.items():
        for i, token in enumerate(specials):
            assert tokenizers[kind].token_to_id(token) == i, (kind, token)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", ODD_INPUTS, ids=range(len(ODD_INPUTS)))
def test_any_input_tokenizes_with_offsets_into_the_input(tokenizers, kind, text):
    tok = tokenizers[kind]
    enc = tok.encode(text)
    assert len(enc.ids) == len(enc.offsets) == len(enc.tokens)
    assert all(0 <= i < tok.get_vocab_size() for i in enc.ids)
    covered = set()
    starts = []
    for (start, end), special in zip(enc.offsets, enc.special_tokens_mask, strict=True):
        assert 0 <= start <= end <= len(text), (start, end)
        if not special:
            covered.update(range(start, end))
            starts.append(start)
    assert starts == sorted(starts)
    # nothing the user typed silently disappears (whitespace and control characters may)
    for i, ch in enumerate(text):
        if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"):
            assert i in covered, (i, ch)
    tok.decode(enc.ids)  # never raises


def test_wordpiece_adds_cls_sep_and_keeps_mask(tokenizers):
    tok = tokenizers["wordpiece"]
    enc = tok.encode("i went to the [MASK]")
    assert enc.tokens == ["[CLS]", "i", "went", "to", "the", "[MASK]", "[SEP]"]
    assert enc.ids[0] == 2 and enc.ids[-1] == 3 and enc.ids[5] == 4
    assert enc.offsets[5] == (14, 20)
    assert tok.encode("").ids == [2, 3]
    assert tok.decode(tok.encode("the cat sat on the mat").ids) == "the cat sat on the mat"


def test_byte_bpe_has_every_byte_and_never_an_unknown(tokenizers):
    tok = tokenizers["byte_bpe"]
    vocab = tok.get_vocab()
    assert all(ch in vocab for ch in pre_tokenizers.ByteLevel.alphabet())
    for text in ODD_INPUTS:
        # the space put before a text that does not start with one comes back in front
        expected = text.lower() if text[:1] in ("", " ") else " " + text.lower()
        assert tok.decode(tok.encode(text).ids) == expected


def test_shared_bpe_decodes_both_languages(tokenizers):
    tok = tokenizers["shared_bpe"]
    for en, fr in corpus.LECTURE_PAIRS:
        assert tok.decode(tok.encode(en).ids) == en
        assert tok.decode(tok.encode(fr).ids) == fr
    assert tok.decode(tok.encode("crème brûlée").ids) == "crème brûlée"


def _words(texts) -> set[str]:
    return {w for t in texts for w in t.split()}


def test_every_corpus_word_is_one_token(tokenizers):
    english = _words(corpus.lm_sentences(seed=0).train)
    pairs = corpus.translation_splits(seed=0).train
    both = _words(t for pair in pairs for t in pair)
    assert {"cat", "mouse", "machine", "learning", "store"} <= english
    assert {"chat", "mangé", "souris", "j'aime", "l'homme"} <= both
    for word in english:
        assert len(tokenizers["wordpiece"].encode(word, add_special_tokens=False).ids) == 1, word
        assert len(tokenizers["byte_bpe"].encode(word).ids) == 1, word
    for word in both:
        assert len(tokenizers["shared_bpe"].encode(word).ids) == 1, word


@pytest.mark.parametrize("kind", KINDS)
def test_json_round_trip(tokenizers, kind):
    tok = tokenizers[kind]
    again = Tokenizer.from_str(tok.to_str())
    for text in ODD_INPUTS + [fr for _, fr in corpus.LECTURE_PAIRS]:
        a, b = tok.encode(text), again.encode(text)
        assert a.ids == b.ids and a.offsets == b.offsets


def test_vocabularies_stay_small(tokenizers):
    for tok in tokenizers.values():
        assert 256 < tok.get_vocab_size() <= 2000
