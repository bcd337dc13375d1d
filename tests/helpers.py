"""Helpers that several test folders share: small random models, fixture checkpoints built
with real tokenizers, and the app's test settings. (Fixtures stay in the conftest files.)

When the shipped checkpoints are all in ``checkpoints/`` the app and browser tests run on
them (that is what CI checks). Otherwise (or with ATTNVIZ_TEST_CHECKPOINTS=fixture) they run
on small random models of the same ids and families, with real tokenizers trained here on a
handful of sentences. ATTNVIZ_TEST_CHECKPOINT_DIR=<folder> picks any other folder. The tests
only rely on the contract, so all pass the same tests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from app.config import ROOT, Settings
from models import ModelConfig, RNNConfig, RNNSeq2Seq, build_model, save_checkpoint

SHIPPED = ROOT / "checkpoints"
MODEL_IDS = ("encoder-mini", "decoder-mini", "seq2seq-en-fr", "induction-2l")
FILES = ("config.json", "model.safetensors", "tokenizer.json")

SENTENCES = [
    "the black cat ate the mouse",
    "i love machine learning",
    "you are welcome",
    "the cat sat on the mat",
    "the dog bites the man",
    "the man bites the dog",
    "the bear ate the honey",
    "i went to the store",
    "the small white bird saw the big red fish",
    "the young girl liked the green apple",
    "the happy boy found the book",
    "the woman sees the house and the car",
    "the movie was not good",
    "the food was really bad",
    "this book is very long",
]
FRENCH = [
    "le chat noir a mangé la souris",
    "j'aime l'apprentissage automatique",
    "de rien",
    "le chat s'est assis sur le tapis",
    "le chien mord l'homme",
    "l'homme mord le chien",
    "l'ours a mangé le miel",
    "je suis allé au magasin",
    "le petit oiseau blanc a vu le grand poisson rouge",
    "la jeune fille a aimé la pomme verte",
]


def shipped_ready() -> bool:
    if os.environ.get("ATTNVIZ_TEST_CHECKPOINTS") == "fixture":
        return False
    return all((SHIPPED / m / f).exists() for m in MODEL_IDS for f in FILES)


def wordpiece():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(SENTENCES, WordPieceTrainer(vocab_size=300, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def byte_bpe(texts, specials):
    """Like training/tokenizer.py's decoder tokenizer: byte-level BPE."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def shared_bpe(texts, specials):
    """Like training/tokenizer.py's seq2seq tokenizer: Metaspace BPE with <unk>, lowercased."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, BpeTrainer(vocab_size=300, special_tokens=specials))
    return tok


def build_fixture_checkpoints(root: Path) -> Path:
    torch.manual_seed(0)
    small = dict(d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=128)
    enc_tok = wordpiece()
    enc = ModelConfig(
        kind="encoder",
        vocab_size=enc_tok.get_vocab_size(),
        positional="learned",
        norm="layernorm",
        norm_position="post",
        activation="gelu",
        n_classes=3,
        labels=["negative", "neutral", "positive"],
        pad_id=0,
        **small,
    )
    dec_tok = byte_bpe(SENTENCES, ["<pad>", "<|endoftext|>"])
    dec = ModelConfig(
        kind="decoder",
        vocab_size=dec_tok.get_vocab_size(),
        positional="rope",
        norm="rmsnorm",
        norm_position="pre",
        activation="swiglu",
        pad_id=0,
        bos_id=1,
        eos_id=1,
        **small,
    )
    ind = ModelConfig(
        kind="decoder",
        vocab_size=dec_tok.get_vocab_size(),
        positional="rope",
        norm="rmsnorm",  # as the shipped induction-2l: pre-norm RMSNorm, attention only
        norm_position="pre",
        attn_only=True,
        pad_id=0,
        bos_id=1,
        eos_id=1,
        **small,
    )
    s2s_tok = shared_bpe(SENTENCES + FRENCH, ["<pad>", "<unk>", "<s>", "</s>"])
    s2s = ModelConfig(
        kind="seq2seq",
        vocab_size=s2s_tok.get_vocab_size(),
        positional="sinusoidal",
        norm="layernorm",
        norm_position="post",
        scale_embeddings=True,
        pad_id=0,
        bos_id=2,
        eos_id=3,
        **small,
    )
    for name, cfg, tok in (
        ("encoder-mini", enc, enc_tok),
        ("decoder-mini", dec, dec_tok),
        ("induction-2l", ind, dec_tok),
        ("seq2seq-en-fr", s2s, s2s_tok),
    ):
        model = build_model(cfg).eval()
        card = {"title": f"{name} (random test weights)", "description": "test fixture"}
        save_checkpoint(root / name, model, tok, card)
    for name, cell in (("rnn-en-fr", "lstm"), ("rnn-tanh-en-fr", "tanh")):
        rnn = RNNConfig(
            vocab_size=s2s.vocab_size, cell=cell, d_embed=16, d_model=32, d_attn=16, max_len=128,
            pad_id=0, bos_id=2, eos_id=3,
        )  # fmt: skip
        card = {"title": f"{name} (random test weights)", "description": "test fixture"}
        save_checkpoint(root / name, RNNSeq2Seq(rnn).eval(), s2s_tok, card)
    return root


def make_settings(checkpoint_dir: Path, **overrides) -> Settings:
    """The app's settings for tests. The queue deadline is long: on a machine busy with other
    work a job can wait for CPU, and only the tests of the deadline should see it fire."""
    base = dict(
        checkpoint_dir=checkpoint_dir,
        device="cpu",
        max_concurrency=2,
        cache_size=256,
        queue_deadline_s=60,
    )
    return Settings(**{**base, **overrides})


def tiny(kind: str, **overrides):
    """A small random model of each family, in float64 so references agree to 1e-5 easily."""
    defaults = {
        "encoder": dict(positional="learned", norm="layernorm", norm_position="post"),
        "decoder": dict(
            positional="rope", norm="rmsnorm", norm_position="pre", activation="swiglu"
        ),
        "seq2seq": dict(positional="sinusoidal", norm="layernorm", norm_position="post"),
    }[kind]
    cfg = ModelConfig(
        kind=kind,
        vocab_size=40,
        d_model=32,
        n_heads=4,
        n_layers=2,
        d_ff=64,
        max_len=64,
        bos_id=1,
        eos_id=2,
        **{**defaults, **overrides},
    )
    return build_model(cfg).double().eval()


def checkpoints_under_test(make_tmp) -> tuple[Path, bool]:
    """(folder, trained?): ATTNVIZ_TEST_CHECKPOINT_DIR, else the shipped checkpoints when they
    are all there, else fixture checkpoints built in ``make_tmp()`` (random weights)."""
    if os.environ.get("ATTNVIZ_TEST_CHECKPOINT_DIR"):  # e.g. a folder `attnviz train` wrote
        return Path(os.environ["ATTNVIZ_TEST_CHECKPOINT_DIR"]), True
    if shipped_ready():
        return SHIPPED, True
    return build_fixture_checkpoints(make_tmp()), False


@contextmanager
def serve(app, protocol=None) -> Iterator[str]:
    """``app`` under a real uvicorn on 127.0.0.1 (a free port), in a thread: real sockets, so
    tests see what a client sees (disconnects, timeouts, connection limits). Yields the URL.
    ``protocol``: uvicorn's HTTP protocol class (e.g. app.server.GuardedHttpProtocol.using)."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=protocol or "auto", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server under test did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
