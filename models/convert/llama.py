"""Llama, Mistral and Qwen2: pre-norm decoders with RMSNorm, SwiGLU, RoPE and grouped-query
attention.

Hugging Face rotates the two halves of each head (pair i = dimensions i and i + d_head/2),
so the config says ``pair_layout: "halves"``; ``rope_theta`` becomes ``rope_base``. Only the
plain RoPE is implemented: a ``rope_scaling`` of any type (linear, dynamic, yarn, llama3...)
is refused. Mistral's sliding window (and Qwen2's, when switched on) is honoured by capping
``max_len`` at the window: below it, the window masks nothing."""

from __future__ import annotations

from models.config import ModelConfig
from models.convert.mapping import Converted, State, decoder_pad_id, lm_head, move
from models.convert.source import ConversionError, Source

MODEL_TYPES = ("llama", "mistral", "qwen2")
DROPPABLE = {"score.": "a fine-tuned task head attnviz does not run"}


def convert(source: Source) -> Converted:
    c = source.config
    model_type = c["model_type"]
    d, n_heads = c["hidden_size"], c["num_attention_heads"]
    n_kv = c.get("num_key_value_heads") or n_heads
    if c.get("hidden_act", "silu") != "silu":
        raise ConversionError(f"hidden_act={c['hidden_act']!r}: only SwiGLU (silu) is supported")
    if (c.get("head_dim") or d // n_heads) != d // n_heads:
        raise ConversionError(
            f"head_dim={c['head_dim']} differs from hidden_size / num_attention_heads; "
            "attnviz's heads are d_model / n_heads wide"
        )
    base = _rope_base(c)
    bias, qkv_bias = _biases(c)
    notes = []
    max_len = c["max_position_embeddings"]
    window = _sliding_window(c)
    if window and window < max_len:
        notes.append(f"max_len capped at the sliding window ({window} of {max_len} positions)")
        max_len = window

    w = source.weights
    p = w.prefix("embed_tokens.weight", "model.", "")
    state: State = {"tok_embed.weight": w.take(f"{p}embed_tokens.weight")}
    for i in range(c["num_hidden_layers"]):
        ours, theirs = f"decoder.blocks.{i}", f"{p}layers.{i}"
        move(state, w, f"{ours}.attn_norm", f"{theirs}.input_layernorm", bias=False)
        for q in "qkv":
            move(state, w, f"{ours}.attn.W_{q}", f"{theirs}.self_attn.{q}_proj", bias=qkv_bias)
        move(state, w, f"{ours}.attn.W_o", f"{theirs}.self_attn.o_proj", bias=bias)
        move(state, w, f"{ours}.ffn_norm", f"{theirs}.post_attention_layernorm", bias=False)
        move(state, w, f"{ours}.ffn.W_1", f"{theirs}.mlp.gate_proj", bias=bias)
        move(state, w, f"{ours}.ffn.W_3", f"{theirs}.mlp.up_proj", bias=bias)
        move(state, w, f"{ours}.ffn.W_2", f"{theirs}.mlp.down_proj", bias=bias)
        w.drop(f"{theirs}.self_attn.rotary_emb.inv_freq")  # a derived buffer in old checkpoints
    move(state, w, "decoder.final_norm", f"{p}norm", bias=False)
    tied = lm_head(state, w, source, "lm_head.weight")
    config = ModelConfig(
        kind="decoder",
        vocab_size=c["vocab_size"],
        d_model=d,
        n_heads=n_heads,
        n_kv_heads=n_kv if n_kv != n_heads else None,
        n_layers=c["num_hidden_layers"],
        d_ff=c["intermediate_size"],
        max_len=max_len,
        positional="rope",
        rope_base=base,
        pair_layout="halves",
        norm="rmsnorm",
        norm_position="pre",
        norm_eps=c.get("rms_norm_eps", 1e-6),
        activation="swiglu",
        bias=bias,
        qkv_bias=qkv_bias if qkv_bias != bias else None,
        lm_head_bias=False,
        tie_embeddings=tied,
        pad_id=decoder_pad_id(source),
        bos_id=source.token_id("bos_token_id"),
        eos_id=source.token_id("eos_token_id"),
    )
    if model_type == "qwen2" and config.bos_id is None:
        notes.append("no BOS id: prompts are fed as the tokenizer encodes them")
    return Converted(config, state, ["attention", "generate"], notes=notes)


def _rope_base(c: dict) -> float:
    """rope_theta, from transformers 5's ``rope_parameters`` or the older top-level keys."""
    params = c.get("rope_parameters") or {}
    scaling = c.get("rope_scaling") or {}
    if params and "rope_type" not in params and "rope_theta" not in params:
        raise ConversionError(f"per-layer RoPE parameters are not supported: {params}")
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        raise ConversionError(
            f"rope_scaling of type {kind!r} is not supported: attnviz implements the plain "
            "RoPE only (rope_type 'default')"
        )
    factor = params.get("partial_rotary_factor", c.get("partial_rotary_factor", 1.0))
    if factor != 1.0:
        raise ConversionError(f"partial_rotary_factor={factor}: only full-width RoPE")
    return float(params.get("rope_theta", c.get("rope_theta", 10000.0)))


def _biases(c: dict) -> tuple[bool, bool]:
    """(bias of W_O and the FFN, bias of Q, K, V)."""
    if c["model_type"] == "qwen2":
        return False, True  # Qwen2: Q, K, V with bias; O and the MLP without
    attention, mlp = bool(c.get("attention_bias", False)), bool(c.get("mlp_bias", False))
    if attention != mlp:
        raise ConversionError(
            f"attention_bias={attention} with mlp_bias={mlp} is not supported (attnviz has "
            "one bias switch for W_O and the FFN)"
        )
    return attention, attention


def _sliding_window(c: dict) -> int | None:
    window = c.get("sliding_window")
    if not window:
        return None
    if c["model_type"] == "mistral":
        return window
    uses = c.get("use_sliding_window") or "sliding_attention" in (c.get("layer_types") or [])
    return window if uses else None
