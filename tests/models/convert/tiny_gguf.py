"""Tiny GGUF files written with the ``gguf`` package's writer: a random 2-layer Llama with a
byte-level BPE tokenizer of a few dozen tokens, and variants the importer must refuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np

D, FF, HEADS, KV_HEADS, LAYERS = 32, 64, 4, 2, 2
CHARS = "abcdefghijklmnopqrstuvwxyz.,!?"
SPECIALS = ["<unk>", "<s>", "</s>"]
MERGES = ["t h", "th e", "Ġ th", "Ġth e"]


def vocabulary() -> list[str]:
    merged = ["th", "the", "Ġth", "Ġthe"]
    return [*SPECIALS, *CHARS, "Ġ", *merged]


def write_llama(
    path: Path,
    *,
    arch: str = "llama",
    tokenizer: bool = True,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """A random Llama (F32 tensors; Q8_0 blocks for the FFN's matrices) as GGUF at ``path``."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = vocabulary()
    vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny-llama")
    writer.add_license("mit")
    writer.add_block_count(LAYERS)
    writer.add_context_length(64)
    writer.add_embedding_length(D)
    writer.add_feed_forward_length(FF)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(D // HEADS)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    if tokenizer:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types([3] * len(SPECIALS) + [1] * (vocab - len(SPECIALS)))
        writer.add_token_merges(MERGES)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        writer.add_add_bos_token(True)
    if chat_template:
        writer.add_chat_template(chat_template)

    def f32(name: str, *shape: int, std: float = 0.2, mean: float = 0.0) -> None:
        writer.add_tensor(name, (mean + std * rng.standard_normal(shape)).astype(np.float32))

    def q8(name: str, *shape: int) -> None:
        data = (0.2 * rng.standard_normal(shape)).astype(np.float32)
        writer.add_tensor(
            name,
            gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
            raw_dtype=gguf.GGMLQuantizationType.Q8_0,
        )

    d_kv = D // HEADS * KV_HEADS
    f32("token_embd.weight", vocab, D)
    for i in range(LAYERS):
        f32(f"blk.{i}.attn_norm.weight", D, mean=1.0)
        f32(f"blk.{i}.attn_q.weight", D, D)
        f32(f"blk.{i}.attn_k.weight", d_kv, D)
        f32(f"blk.{i}.attn_v.weight", d_kv, D)
        f32(f"blk.{i}.attn_output.weight", D, D)
        f32(f"blk.{i}.ffn_norm.weight", D, mean=1.0)
        q8(f"blk.{i}.ffn_gate.weight", FF, D)
        q8(f"blk.{i}.ffn_up.weight", FF, D)
        q8(f"blk.{i}.ffn_down.weight", D, FF)
    f32("output_norm.weight", D, mean=1.0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
