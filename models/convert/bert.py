"""BERT, RoBERTa and DistilBERT: post-norm encoders with learned positions and a LayerNorm
on the embeddings, and BERT's masked-LM head (dense -> GELU -> LayerNorm -> vocabulary) when
the checkpoint has one. A bare encoder (e.g. all-MiniLM's BertModel) has no vocabulary head,
so its config says ``lm_head: false`` and fill-mask is unavailable."""

from __future__ import annotations

from models.config import ModelConfig
from models.convert.mapping import Converted, State, activation, lm_head, move, require
from models.convert.source import ConversionError, Source, Weights

MODEL_TYPES = ("bert", "roberta", "distilbert")
#: source tensors attnviz has no use for, with the reason the card gives
DROPPABLE = {
    "pooler.": "the pooler (dense + tanh on [CLS]) feeds only task heads",
    "classifier.": "a fine-tuned task head attnviz does not run",
    "pre_classifier.": "a fine-tuned task head attnviz does not run",
    "qa_outputs.": "a question-answering head attnviz does not run",
    "cls.seq_relationship.": "BERT's next-sentence head",
}


def convert(source: Source) -> Converted:
    if source.config["model_type"] == "distilbert":
        return _distilbert(source)
    return _bert(source)


def _bert(source: Source) -> Converted:
    c = source.config
    roberta = c["model_type"] == "roberta"
    require(source, position_embedding_type="absolute", is_decoder=False, add_cross_attention=False)
    w = source.weights
    p = w.prefix("embeddings.word_embeddings.weight", "roberta." if roberta else "bert.", "")
    state: State = {"tok_embed.weight": w.take(f"{p}embeddings.word_embeddings.weight")}
    notes = []
    # RoBERTa numbers positions from padding_idx + 1: its first rows are never read.
    pad = c.get("pad_token_id")
    offset = (1 if pad is None else pad) + 1 if roberta else 0
    state["encoder.pos.table.weight"] = w.take(f"{p}embeddings.position_embeddings.weight")[offset:]
    if offset:
        notes.append(
            f"position rows 0..{offset - 1} dropped: RoBERTa's positions start at row "
            f"{offset} (padding_idx + 1)"
        )
    state["encoder.type_embed.weight"] = w.take(f"{p}embeddings.token_type_embeddings.weight")
    move(state, w, "encoder.embed_norm", f"{p}embeddings.LayerNorm")
    for buffer in ("position_ids", "token_type_ids"):
        w.drop(f"{p}embeddings.{buffer}")
    for i in range(c["num_hidden_layers"]):
        ours, theirs = f"encoder.blocks.{i}", f"{p}encoder.layer.{i}"
        for q, name in (("q", "query"), ("k", "key"), ("v", "value")):
            move(state, w, f"{ours}.attn.W_{q}", f"{theirs}.attention.self.{name}")
        move(state, w, f"{ours}.attn.W_o", f"{theirs}.attention.output.dense")
        move(state, w, f"{ours}.attn_norm", f"{theirs}.attention.output.LayerNorm")
        move(state, w, f"{ours}.ffn.W_1", f"{theirs}.intermediate.dense")
        move(state, w, f"{ours}.ffn.W_2", f"{theirs}.output.dense")
        move(state, w, f"{ours}.ffn_norm", f"{theirs}.output.LayerNorm")

    act = activation(c.get("hidden_act", "gelu"))
    if roberta:  # lm_head.dense -> gelu -> lm_head.layer_norm -> lm_head.decoder (+ lm_head.bias)
        head = _mlm_head(state, w, source, "lm_head.", "dense", "layer_norm", "decoder")
        if head is not None and act != "gelu":
            raise ConversionError("RoBERTa's MLM head always uses gelu; hidden_act differs")
    else:
        head = _mlm_head(
            state,
            w,
            source,
            "cls.predictions.",
            "transform.dense",
            "transform.LayerNorm",
            "decoder",
        )
    config = ModelConfig(
        kind="encoder",
        vocab_size=c["vocab_size"],
        d_model=c["hidden_size"],
        n_heads=c["num_attention_heads"],
        n_layers=c["num_hidden_layers"],
        d_ff=c["intermediate_size"],
        max_len=c["max_position_embeddings"] - offset,
        positional="learned",
        norm="layernorm",
        norm_position="post",
        norm_eps=c.get("layer_norm_eps", 1e-12),
        activation=act,
        type_vocab_size=c.get("type_vocab_size", 2),
        embed_norm=True,
        mlm_transform=head is not None,
        lm_head=head is not None,
        tie_embeddings=head is True,
        pad_id=c.get("pad_token_id") or 0,
    )
    return Converted(config, state, _tasks(head), notes=notes)


def _distilbert(source: Source) -> Converted:
    c = source.config
    w = source.weights
    p = w.prefix("embeddings.word_embeddings.weight", "distilbert.", "")
    state: State = {
        "tok_embed.weight": w.take(f"{p}embeddings.word_embeddings.weight"),
        # stored even when sinusoidal_pos_embds: a fixed table read like a learned one
        "encoder.pos.table.weight": w.take(f"{p}embeddings.position_embeddings.weight"),
    }
    move(state, w, "encoder.embed_norm", f"{p}embeddings.LayerNorm")
    w.drop(f"{p}embeddings.position_ids")
    for i in range(c["n_layers"]):
        ours, theirs = f"encoder.blocks.{i}", f"{p}transformer.layer.{i}"
        for q in "qkv":
            move(state, w, f"{ours}.attn.W_{q}", f"{theirs}.attention.{q}_lin")
        move(state, w, f"{ours}.attn.W_o", f"{theirs}.attention.out_lin")
        move(state, w, f"{ours}.attn_norm", f"{theirs}.sa_layer_norm")
        move(state, w, f"{ours}.ffn.W_1", f"{theirs}.ffn.lin1")
        move(state, w, f"{ours}.ffn.W_2", f"{theirs}.ffn.lin2")
        move(state, w, f"{ours}.ffn_norm", f"{theirs}.output_layer_norm")
    head = _mlm_head(
        state,
        w,
        source,
        "",
        "vocab_transform",
        "vocab_layer_norm",
        "vocab_projector",
        bias="vocab_projector.bias",
    )
    config = ModelConfig(
        kind="encoder",
        vocab_size=c["vocab_size"],
        d_model=c["dim"],
        n_heads=c["n_heads"],
        n_layers=c["n_layers"],
        d_ff=c["hidden_dim"],
        max_len=c["max_position_embeddings"],
        positional="learned",
        norm="layernorm",
        norm_position="post",
        norm_eps=1e-12,  # hard-coded in DistilBERT
        activation=activation(c.get("activation", "gelu")),
        embed_norm=True,
        mlm_transform=head is not None,
        lm_head=head is not None,
        tie_embeddings=head is True,
        pad_id=c.get("pad_token_id") or 0,
    )
    return Converted(config, state, _tasks(head))


def _mlm_head(
    state: State,
    w: Weights,
    source: Source,
    at: str,
    dense: str,
    norm: str,
    decoder: str,
    bias: str = "bias",
) -> bool | None:
    """The masked-LM head, if the checkpoint has one: None when absent, else whether its
    vocabulary matrix is tied to the embeddings."""
    if f"{at}{dense}.weight" not in w:
        return None
    move(state, w, "mlm_transform.dense", at + dense)
    move(state, w, "mlm_transform.norm", at + norm)
    state["lm_head.bias"] = w.take(at + bias)
    w.drop(f"{at}{decoder}.bias")  # HF keeps the same bias under a second name
    return lm_head(state, w, source, f"{at}{decoder}.weight")


def _tasks(head: bool | None) -> list[str]:
    return ["attention", "fill-mask"] if head is not None else ["attention"]
