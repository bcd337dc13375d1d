"""GPT-2: a pre-norm decoder with learned positions, tanh-approximated GELU, one final
LayerNorm and a head tied to the token embeddings.

Its linear layers are ``Conv1D`` modules, which store the weight as (in, out), and its
attention projects Q, K and V with one matrix (``c_attn``); both are undone here."""

from __future__ import annotations

from models.config import ModelConfig
from models.convert.mapping import (
    Converted,
    State,
    activation,
    decoder_pad_id,
    lm_head,
    move,
    require,
)
from models.convert.source import Source

MODEL_TYPES = ("gpt2",)
DROPPABLE = {"score.": "a fine-tuned task head attnviz does not run"}


def convert(source: Source) -> Converted:
    c = source.config
    require(
        source,
        scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False,
        reorder_and_upcast_attn=False,
        add_cross_attention=False,
    )
    w = source.weights
    p = w.prefix("wte.weight", "transformer.", "")
    d = c["n_embd"]
    state: State = {
        "tok_embed.weight": w.take(f"{p}wte.weight"),
        "decoder.pos.table.weight": w.take(f"{p}wpe.weight"),
    }
    for i in range(c["n_layer"]):
        ours, theirs = f"decoder.blocks.{i}", f"{p}h.{i}"
        move(state, w, f"{ours}.attn_norm", f"{theirs}.ln_1")
        qkv_weight = w.take(f"{theirs}.attn.c_attn.weight").T  # (3d, d)
        qkv_bias = w.take(f"{theirs}.attn.c_attn.bias")
        for q, weight, bias in zip("qkv", qkv_weight.split(d), qkv_bias.split(d), strict=True):
            state[f"{ours}.attn.W_{q}.weight"], state[f"{ours}.attn.W_{q}.bias"] = weight, bias
        _conv1d(state, w, f"{ours}.attn.W_o", f"{theirs}.attn.c_proj")
        move(state, w, f"{ours}.ffn_norm", f"{theirs}.ln_2")
        _conv1d(state, w, f"{ours}.ffn.W_1", f"{theirs}.mlp.c_fc")
        _conv1d(state, w, f"{ours}.ffn.W_2", f"{theirs}.mlp.c_proj")
        for buffer in ("attn.bias", "attn.masked_bias"):  # causal-mask buffers, not weights
            w.drop(f"{theirs}.{buffer}")
    move(state, w, "decoder.final_norm", f"{p}ln_f")
    tied = lm_head(state, w, source, "lm_head.weight")
    config = ModelConfig(
        kind="decoder",
        vocab_size=c["vocab_size"],
        d_model=d,
        n_heads=c["n_head"],
        n_layers=c["n_layer"],
        d_ff=c.get("n_inner") or 4 * d,
        max_len=c["n_positions"],
        positional="learned",
        norm="layernorm",
        norm_position="pre",
        norm_eps=c.get("layer_norm_epsilon", 1e-5),
        activation=activation(c.get("activation_function", "gelu_new")),
        lm_head_bias=False,
        tie_embeddings=tied,
        pad_id=decoder_pad_id(source),
        bos_id=source.token_id("bos_token_id"),
        eos_id=source.token_id("eos_token_id"),
    )
    return Converted(config, state, ["attention", "generate"])


def _conv1d(state: State, w, ours: str, theirs: str) -> None:
    """A Conv1D (y = x W + b, W stored as (in, out)) as our Linear (W stored as (out, in))."""
    state[f"{ours}.weight"] = w.take(f"{theirs}.weight").T
    state[f"{ours}.bias"] = w.take(f"{theirs}.bias")
