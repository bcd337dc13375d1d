"""Tiny GGUF files written with the ``gguf`` package's writer: a random 2-layer model of each
family attnviz imports from GGUF (llama, mistral, qwen2, gpt2) with a tokenizer of a few
dozen tokens, and variants the importer must refuse.

Each file is laid out the way llama.cpp's ``convert_hf_to_gguf.py`` writes that family, which
is what transformers' GGUF reader undoes (``modeling_gguf_pytorch_utils``):

- llama / mistral: separate ``attn_q/k/v`` with Q and K rows permuted per head (llama.cpp's
  ``LlamaModel.permute``; transformers' ``LlamaTensorProcessor`` reverses it), a SentencePiece
  (``llama``) tokenizer for mistral and byte-level BPE for llama, tied embeddings;
- qwen2: llama's tensors plus q/k/v biases, no permutation (Qwen2 is converted as is), a
  separate ``output`` matrix (untied), byte-level BPE with Qwen2's pre-tokenizer;
- gpt2: LayerNorms with biases, one fused ``attn_qkv`` (rows q, k, v; stored as (out, in),
  transformers transposes it back to Conv1D's (in, out)), learned positions, GELU MLP of
  width 4·d (the width GPT2Config builds: transformers does not read ``feed_forward_length``
  into ``n_inner``), 1024 positions (transformers reads ``context_length`` into ``n_ctx``, not
  ``n_positions``, so the table must have GPT2Config's default 1024 rows), and ``output`` as
  a copy of ``token_embd`` (llama.cpp writes GPT-2's tied unembedding out).

Every file holds some Q8_0 tensors, so dequantization is exercised."""

from __future__ import annotations

from pathlib import Path

import numpy as np

D, FF, HEADS, KV_HEADS, LAYERS = 32, 64, 4, 2, 2
GPT2_POSITIONS = 1024
FAMILIES = ("llama", "mistral", "qwen2", "gpt2")
CHARS = "abcdefghijklmnopqrstuvwxyz.,!?"
SPECIALS = ["<unk>", "<s>", "</s>"]
MERGES = ["t h", "th e", "Ġ th", "Ġth e"]
#: SentencePiece pieces (mistral): ▁ marks a word start; scores rank the merges
SP_MERGED = ["▁t", "th", "he", "▁th", "the", "▁the"]
#: Qwen2's / GPT-2's end-of-text token, a control token at the end of the vocabulary
ENDOFTEXT = "<|endoftext|>"


def vocabulary() -> list[str]:
    merged = ["th", "the", "Ġth", "Ġthe"]
    return [*SPECIALS, *CHARS, "Ġ", *merged]


def sp_vocabulary() -> list[str]:
    return [*SPECIALS, "▁", *CHARS, *SP_MERGED]


def write_llama(
    path: Path,
    *,
    arch: str = "llama",
    tokenizer: bool = True,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """A random Llama (F32 tensors; Q8_0 blocks for the FFN's matrices) as GGUF at ``path``
    (``arch``: the architecture it claims, for the refusals)."""
    return write_gguf(
        path, "llama", arch=arch, tokenizer=tokenizer, seed=seed, chat_template=chat_template
    )


def write_gguf(
    path: Path,
    family: str,
    *,
    arch: str | None = None,
    tokenizer: bool = True,
    seed: int = 0,
    chat_template: str | None = None,
    name: str | None = None,
    context: int | None = None,
    d_ff: int | None = None,
) -> Path:
    """A random 2-layer ``family`` model (one of FAMILIES) as GGUF at ``path``; ``arch``:
    the ``general.architecture`` it declares (default: the family's own); ``context`` and
    ``d_ff``: its positions and MLP width (default 64 and FF; GPT-2's 1024 and 4·D)."""
    import gguf

    assert family in FAMILIES, family
    arch = arch or family
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name or f"tiny-{family}")
    writer.add_license("mit")
    writer.add_block_count(LAYERS)
    writer.add_embedding_length(D)
    writer.add_head_count(HEADS)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    gpt2 = family == "gpt2"
    ff = d_ff or (4 * D if gpt2 else FF)
    context = context or (GPT2_POSITIONS if gpt2 else 64)
    writer.add_context_length(context)
    writer.add_feed_forward_length(ff)
    if gpt2:
        writer.add_layer_norm_eps(1e-5)
    else:
        writer.add_head_count_kv(KV_HEADS)
        writer.add_rope_freq_base(10000.0)
        writer.add_layer_norm_rms_eps(1e-5)
        if family != "qwen2":  # llama.cpp's Qwen2 converter writes no rope dimension count
            writer.add_rope_dimension_count(D // HEADS)
    tokens = _write_tokenizer(writer, family) if tokenizer else vocabulary()
    vocab = len(tokens)
    if family != "gpt2":  # transformers reads no vocab_size for gpt2 (it counts the tokens)
        writer.add_vocab_size(vocab)
    if chat_template:
        writer.add_chat_template(chat_template)

    def f32(name: str, *shape: int, std: float = 0.2, mean: float = 0.0) -> np.ndarray:
        data = (mean + std * rng.standard_normal(shape)).astype(np.float32)
        writer.add_tensor(name, data)
        return data

    def q8(name: str, *shape: int) -> None:
        data = (0.2 * rng.standard_normal(shape)).astype(np.float32)
        writer.add_tensor(
            name,
            gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
            raw_dtype=gguf.GGMLQuantizationType.Q8_0,
        )

    if family == "gpt2":
        embedding = f32("token_embd.weight", vocab, D)
        f32("position_embd.weight", context, D, std=0.05)
        for i in range(LAYERS):
            f32(f"blk.{i}.attn_norm.weight", D, mean=1.0)
            f32(f"blk.{i}.attn_norm.bias", D, std=0.05)
            q8(f"blk.{i}.attn_qkv.weight", 3 * D, D)
            f32(f"blk.{i}.attn_qkv.bias", 3 * D, std=0.05)
            f32(f"blk.{i}.attn_output.weight", D, D)
            f32(f"blk.{i}.attn_output.bias", D, std=0.05)
            f32(f"blk.{i}.ffn_norm.weight", D, mean=1.0)
            f32(f"blk.{i}.ffn_norm.bias", D, std=0.05)
            q8(f"blk.{i}.ffn_up.weight", ff, D)
            f32(f"blk.{i}.ffn_up.bias", ff, std=0.05)
            q8(f"blk.{i}.ffn_down.weight", D, ff)
            f32(f"blk.{i}.ffn_down.bias", D, std=0.05)
        f32("output_norm.weight", D, mean=1.0)
        f32("output_norm.bias", D, std=0.05)
        writer.add_tensor("output.weight", embedding)  # llama.cpp writes GPT-2's tie out
    else:
        d_kv = D // HEADS * KV_HEADS
        f32("token_embd.weight", vocab, D)
        for i in range(LAYERS):
            f32(f"blk.{i}.attn_norm.weight", D, mean=1.0)
            # random, so a permutation of random rows is random rows: the file stands for
            # a checkpoint whose HF weights are the reader's reverse permutation of these
            f32(f"blk.{i}.attn_q.weight", D, D)
            f32(f"blk.{i}.attn_k.weight", d_kv, D)
            f32(f"blk.{i}.attn_v.weight", d_kv, D)
            if family == "qwen2":
                f32(f"blk.{i}.attn_q.bias", D)
                f32(f"blk.{i}.attn_k.bias", d_kv)
                f32(f"blk.{i}.attn_v.bias", d_kv)
            f32(f"blk.{i}.attn_output.weight", D, D)
            f32(f"blk.{i}.ffn_norm.weight", D, mean=1.0)
            q8(f"blk.{i}.ffn_gate.weight", ff, D)
            q8(f"blk.{i}.ffn_up.weight", ff, D)
            q8(f"blk.{i}.ffn_down.weight", D, ff)
        f32("output_norm.weight", D, mean=1.0)
        if family == "qwen2":
            q8("output.weight", vocab, D)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _write_tokenizer(writer, family: str) -> list[str]:
    """llama.cpp's tokenizer metadata for ``family``; returns the vocabulary."""
    if family == "mistral":  # SentencePiece: pieces, scores, types (2 unknown, 3 control)
        tokens = sp_vocabulary()
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        n_plain = len(tokens) - len(SPECIALS)
        writer.add_token_scores([0.0] * len(SPECIALS) + [-float(i) for i in range(n_plain)])
        writer.add_token_types([2, 3, 3] + [1] * n_plain)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        return tokens
    tokens = vocabulary()
    bos, eos, unk = 1, 2, 0
    if family in ("qwen2", "gpt2"):  # one <|endoftext|>: BOS, EOS (and no unknown token)
        tokens = [*tokens, ENDOFTEXT]
        bos = eos = len(tokens) - 1
        unk = None
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre({"qwen2": "qwen2", "gpt2": "gpt-2"}.get(family, "default"))
    writer.add_token_list(tokens)
    types = [3 if t in SPECIALS or t == ENDOFTEXT else 1 for t in tokens]
    writer.add_token_types(types)
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    if unk is not None:
        writer.add_unk_token_id(unk)
    writer.add_add_bos_token(family == "llama")
    return tokens
