"""Tiny Hugging Face models of every supported family, saved as safetensors into a tmp dir,
ready to import and compare with the `transformers` reference.

Weights are drawn wide (std 0.2, norms' gains around 1): with HF's default std 0.02 every
attention pattern is nearly uniform, and a wrong import (heads swapped, RoPE pairs mixed up,
positions shifted) would still pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

VOCAB = 99
SMALL = dict(vocab_size=VOCAB)
# Without an EOS (and a forced one) both generators run the full 20 steps.
NO_EOS = dict(eos_token_id=None, forced_eos_token_id=None)
ATTN = dict(attn_implementation="eager")


def _bert_like(**kw):
    return dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **SMALL,
        **kw,
    )


def family_specs() -> dict:
    """name -> (config class, config kwargs, model class, kind)."""
    T = pytest.importorskip("transformers")
    llama = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        **SMALL,
        **NO_EOS,
    )
    seq2seq = dict(
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        **SMALL,
        **NO_EOS,
    )
    return {
        "bert": (T.BertConfig, _bert_like(), T.BertForMaskedLM, "encoder"),
        "roberta": (
            T.RobertaConfig,
            {**_bert_like(), "max_position_embeddings": 66},
            T.RobertaForMaskedLM,
            "encoder",
        ),
        "distilbert": (
            T.DistilBertConfig,
            dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64, **SMALL),
            T.DistilBertForMaskedLM,
            "encoder",
        ),
        "gpt2": (
            T.GPT2Config,
            dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=1, **SMALL, **NO_EOS),
            T.GPT2LMHeadModel,
            "decoder",
        ),
        "llama": (T.LlamaConfig, llama, T.LlamaForCausalLM, "decoder"),
        "mistral": (
            T.MistralConfig,
            {**llama, "sliding_window": 32},
            T.MistralForCausalLM,
            "decoder",
        ),
        "qwen2": (
            T.Qwen2Config,
            {**llama, "tie_word_embeddings": True},
            T.Qwen2ForCausalLM,
            "decoder",
        ),
        "bart": (
            T.BartConfig,
            dict(seq2seq, decoder_start_token_id=2, pad_token_id=1),
            T.BartForConditionalGeneration,
            "seq2seq",
        ),
        "marian": (
            T.MarianConfig,
            dict(
                seq2seq,
                decoder_start_token_id=VOCAB - 1,
                pad_token_id=VOCAB - 1,
                scale_embedding=True,
                activation_function="swish",
            ),
            T.MarianMTModel,
            "seq2seq",
        ),
    }


def widen(model: torch.nn.Module, std: float = 0.2) -> None:
    """Every trained weight and bias ~ N(0, std); norms' gains ~ 1 + N(0, std). Frozen
    tables (Marian's sinusoid) keep their values."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0.0, std)
        for module in model.modules():
            if "Norm" in type(module).__name__ and getattr(module, "weight", None) is not None:
                module.weight.add_(1.0)  # LayerNorm, RMSNorm (GPT-2's are called ln_1...)
        for name, b in model.named_buffers():
            if name.endswith("final_logits_bias"):
                b.normal_(0.0, std)


def write_tokenizer(folder: Path, vocab_size: int = VOCAB) -> None:
    """A word-level tokenizer.json whose tokens t0..t98 are the ids themselves."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab_size)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))


def build_hf(name: str, folder: Path, seed: int = 0, **overrides):
    """A random tiny HF model of family ``name``, saved (safetensors) with a tokenizer.json."""
    config_cls, kwargs, model_cls, _ = family_specs()[name]
    torch.manual_seed(seed)
    model = model_cls(config_cls(**{**kwargs, **overrides}, **ATTN)).eval()
    widen(model)
    model.save_pretrained(folder)
    write_tokenizer(folder)
    return model


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory):
    """name -> (HF model, its saved folder). Float32, as attnviz serves models."""
    out = {}
    for name in family_specs():
        folder = tmp_path_factory.mktemp(f"hf-{name}")
        out[name] = (build_hf(name, folder), folder)
    return out
