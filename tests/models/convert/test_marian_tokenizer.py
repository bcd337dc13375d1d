"""Marian (opus-mt) ships two SentencePiece models and a vocab.json, no tokenizer.json; the
import builds one. Checked against transformers' own (slow, sentencepiece-based)
MarianTokenizer on SentencePiece models trained here on a few sentences."""

from __future__ import annotations

import json

import pytest

from models.convert import import_checkpoint
from tests.models.convert.conftest import build_hf

transformers = pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")
# MarianTokenizer would also apply Moses punctuation rules if sacremoses were installed
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

ENGLISH = [
    "the black cat ate the mouse",
    "i love machine learning",
    "you are welcome",
    "the cat sat on the mat",
    "the dog bites the man",
    "the man bites the dog",
    "the bear ate the honey",
    "i went to the store",
] * 4
FRENCH = [
    "le chat noir a mangé la souris",
    "j'aime l'apprentissage automatique",
    "de rien",
    "le chat s'est assis sur le tapis",
    "le chien mord l'homme",
    "l'homme mord le chien",
    "l'ours a mangé le miel",
    "je suis allé au magasin",
] * 4


def _train(tmp_path, name, lines, size):
    text = tmp_path / f"{name}.txt"
    text.write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(tmp_path / name), vocab_size=size,
        model_type="unigram", hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    (tmp_path / f"{name}.model").rename(tmp_path / f"{name}.spm")
    processor = spm.SentencePieceProcessor(model_file=str(tmp_path / f"{name}.spm"))
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    """A Marian folder as the hub has it: weights, config, source.spm, target.spm, vocab.json."""
    folder = tmp_path_factory.mktemp("opus-mt-tiny")
    source = _train(folder, "source", ENGLISH, 60)
    target = _train(folder, "target", FRENCH, 60)
    control = {"<unk>", "<s>", "</s>"}
    pieces = ["</s>", "<unk>"]
    pieces += [p for p in source + target if p not in control and p not in pieces]
    vocab = {p: i for i, p in enumerate([*dict.fromkeys(pieces), "<pad>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    pad = vocab["<pad>"]
    build_hf("marian", folder, vocab_size=len(vocab), decoder_start_token_id=pad, pad_token_id=pad)
    (folder / "tokenizer.json").unlink()  # build_hf writes one; Marian repos have none
    reference = transformers.MarianTokenizer(
        source_spm=str(folder / "source.spm"),
        target_spm=str(folder / "target.spm"),
        vocab=str(folder / "vocab.json"),
    )
    reference.punc_normalizer = lambda text: text  # no Moses rules, even with sacremoses
    out = tmp_path_factory.mktemp("out")
    from tokenizers import Tokenizer

    path = import_checkpoint(str(folder), "opus-mt-tiny", out)
    return Tokenizer.from_file(str(path / "tokenizer.json")), reference, path


@pytest.mark.parametrize(
    "text",
    [
        "the black cat ate the mouse",
        "I love  machine-learning!",
        "the bear went to  the mat",
        "zebra ☃ über",
    ],  # fmt: skip
)
def test_source_text_gets_marians_ids(marian, text):
    ours, reference, _ = marian
    assert ours.encode(text).ids == reference(text)["input_ids"]


def test_target_ids_decode_to_marians_text(marian):
    ours, reference, _ = marian
    for text in FRENCH[:8]:
        ids = reference(text_target=text)["input_ids"]
        assert ours.decode(ids) == reference.decode(ids, skip_special_tokens=True)


def test_the_card_says_how_the_tokenizer_was_built(marian):
    card = json.loads((marian[2] / "card.json").read_text())
    assert any("source.spm" in note for note in card["conversion"]["notes"])
