"""BART and Marian: post-norm encoder-decoders with shared token embeddings, a head tied to
them and a ``final_logits_bias``.

BART learns its positions, offset by 2 (row p + 2 holds position p, rows 0 and 1 are never
read, so they are dropped), and normalises the embeddings (``layernorm_embedding``). Marian
adds a fixed sinusoid laid out as HF writes it (sines in the first half, cosines in the
second: ``pair_layout: "halves"``) and scales its embeddings by √d_model."""

from __future__ import annotations

import torch

from models.config import ModelConfig
from models.convert.mapping import Converted, State, activation, lm_head, move, require
from models.convert.source import ConversionError, Source, Weights

MODEL_TYPES = ("bart", "marian")
DROPPABLE = {"classification_head.": "a fine-tuned task head attnviz does not run"}
BART_POSITION_OFFSET = 2  # hard-coded in HF's BartLearnedPositionalEmbedding


def convert(source: Source) -> Converted:
    c = source.config
    marian = c["model_type"] == "marian"
    # Old configs carry keys (normalize_before, normalize_embedding...) that today's HF BART and
    # Marian ignore; so do we: the tensors decide (a stray one, e.g. mBART's final layer_norm,
    # is an error).
    if marian:
        require(source, share_encoder_decoder_embeddings=True)
        if c.get("decoder_vocab_size") not in (None, c["vocab_size"]):
            raise ConversionError("a Marian model with its own target vocabulary is not supported")
    for enc, dec in (
        ("encoder_attention_heads", "decoder_attention_heads"),
        ("encoder_ffn_dim", "decoder_ffn_dim"),
    ):
        if c[enc] != c[dec]:
            raise ConversionError(f"{enc} != {dec}: attnviz's two stacks share these sizes")

    w = source.weights
    p = w.prefix("shared.weight", "model.", "")
    state: State = {"tok_embed.weight": w.take(f"{p}shared.weight")}
    notes = []
    for stack, n_layers in (("encoder", c["encoder_layers"]), ("decoder", c["decoder_layers"])):
        w.drop(f"{p}{stack}.embed_tokens.weight")  # an alias of the shared embeddings
        if marian:
            w.drop(f"{p}{stack}.embed_positions.weight")  # the sinusoid, recomputed at load
        else:
            table = w.take(f"{p}{stack}.embed_positions.weight")
            state[f"{stack}.pos.table.weight"] = table[BART_POSITION_OFFSET:]
            move(state, w, f"{stack}.embed_norm", f"{p}{stack}.layernorm_embedding")
        for i in range(n_layers):
            _block(state, w, f"{stack}.blocks.{i}", f"{p}{stack}.layers.{i}", stack == "decoder")
    if not marian:
        notes.append("position rows 0 and 1 dropped: BART reads row p + 2 for position p")

    tied = lm_head(state, w, source, "lm_head.weight")
    if "final_logits_bias" in w:
        state["lm_head.bias"] = w.take("final_logits_bias").reshape(-1)
    else:  # e.g. a BartModel checkpoint: HF's generation model starts this buffer at zero
        state["lm_head.bias"] = torch.zeros(c["vocab_size"], dtype=state["tok_embed.weight"].dtype)
        notes.append("no final_logits_bias in the checkpoint: zeros, as in HF")
    config = ModelConfig(
        kind="seq2seq",
        vocab_size=c["vocab_size"],
        d_model=c["d_model"],
        n_heads=c["encoder_attention_heads"],
        n_layers=c["encoder_layers"],
        n_decoder_layers=c["decoder_layers"],
        d_ff=c["encoder_ffn_dim"],
        max_len=c["max_position_embeddings"],
        positional="sinusoidal" if marian else "learned",
        pair_layout="halves" if marian else "interleaved",
        norm="layernorm",
        norm_position="post",
        norm_eps=1e-5,
        activation=activation(c.get("activation_function", "gelu")),
        scale_embeddings=bool(c.get("scale_embedding", False)),
        embed_norm=not marian,
        tie_embeddings=tied,
        pad_id=source.token_id("pad_token_id") or 0,
        bos_id=source.token_id("decoder_start_token_id"),
        eos_id=source.token_id("eos_token_id"),
    )
    tasks = ["attention", "translate" if marian else "generate"]
    return Converted(config, state, tasks, notes=notes)


def _block(state: State, w: Weights, ours: str, theirs: str, decoder: bool) -> None:
    attention = [("attn", "self_attn")] + ([("cross_attn", "encoder_attn")] if decoder else [])
    for mine, hf in attention:
        for q in "qkv":
            move(state, w, f"{ours}.{mine}.W_{q}", f"{theirs}.{hf}.{q}_proj")
        move(state, w, f"{ours}.{mine}.W_o", f"{theirs}.{hf}.out_proj")
    move(state, w, f"{ours}.attn_norm", f"{theirs}.self_attn_layer_norm")
    if decoder:
        move(state, w, f"{ours}.cross_norm", f"{theirs}.encoder_attn_layer_norm")
    move(state, w, f"{ours}.ffn.W_1", f"{theirs}.fc1")
    move(state, w, f"{ours}.ffn.W_2", f"{theirs}.fc2")
    move(state, w, f"{ours}.ffn_norm", f"{theirs}.final_layer_norm")
