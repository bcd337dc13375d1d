"""Import Hugging Face checkpoints as attnviz models: ``attnviz import SRC --id ID --out DIR``.

As TransformerLens does, a checkpoint is *converted*, not wrapped: it becomes a `ModelConfig`
plus the weights of our own `Transformer`, so every hook name, the KV cache, every endpoint
and every view work on it unchanged. One module per family (`bert`, `gpt2`, `llama`,
`bart`) maps the source's tensors onto ours; this one picks the family from config.json's
``model_type``, checks that every source tensor was used or knowingly dropped and that every
shape fits, and writes the checkpoint folder: config.json, model.safetensors, tokenizer.json
and card.json (source, architecture, license, parameters per part).

A GGUF file (or a folder holding one) is read through transformers' GGUF reader and
dequantized (`gguf_source`), then converted like any Hugging Face checkpoint.

Only json, text, safetensors and GGUF files are read: no pickle, no code from the checkpoint.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from models.checkpoint import EMBEDDINGS, TIED_HEAD, write_checkpoint
from models.config import ModelConfig
from models.convert import bart, bert, gpt2, llama
from models.convert.gguf_source import GGUFSource, find_gguf, gguf_tokenizer, open_gguf
from models.convert.mapping import Converted
from models.convert.source import ConversionError, Source, download, looks_like_hub_id
from models.convert.tokenizer import load_tokenizer
from models.transformer import Transformer, count_parameters

__all__ = ["SUPPORTED", "ConversionError", "convert", "import_checkpoint"]

FAMILY_MODULES = (bert, gpt2, llama, bart)
FAMILIES = {model_type: module for module in FAMILY_MODULES for model_type in module.MODEL_TYPES}
SUPPORTED = (
    "encoder: BERT, RoBERTa, DistilBERT; decoder: GPT-2, Llama, Mistral, Qwen2; "
    "seq2seq: BART, Marian"
)
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def convert(source: Source) -> Converted:
    """The source as one of our models, checked: every tensor used or knowingly dropped,
    every shape the one `Transformer(config)` expects."""
    model_type = source.config.get("model_type")
    family = FAMILIES.get(model_type)
    if family is None:
        arch = source.architecture or "no architectures listed"
        raise ConversionError(
            f"{source.origin}: model_type {model_type!r} ({arch}) is not supported. "
            f"Supported families: {SUPPORTED}"
        )
    try:
        converted = family.convert(source)
    except KeyError as e:  # a config.json without a key its family always has
        raise ConversionError(f"config.json has no {e.args[0]!r}") from None
    _account_for_leftovers(source, converted, family.DROPPABLE)
    _check_special_ids(converted)
    _check_shapes(converted)
    return converted


def _account_for_leftovers(source: Source, converted: Converted, droppable: dict) -> None:
    unexpected = []
    for name in source.weights.remaining():
        reason = next((why for part, why in droppable.items() if part in name), None)
        if reason is None:
            unexpected.append(name)
        else:
            converted.dropped.append(f"{name}: {reason}")
    if unexpected:
        shown = ", ".join(unexpected[:8]) + (" ..." if len(unexpected) > 8 else "")
        raise ConversionError(
            f"{len(unexpected)} tensor(s) of the checkpoint have no place in the converted "
            f"model: {shown}. The weights do not match the {source.config['model_type']} "
            "architecture as attnviz knows it."
        )


def _check_special_ids(converted: Converted) -> None:
    cfg = converted.config
    for name in ("bos_id", "eos_id"):
        value = getattr(cfg, name)
        if value is not None and not 0 <= value < cfg.vocab_size:
            setattr(cfg, name, None)
            converted.notes.append(f"{name} {value} lies outside the vocabulary: unset")
    if not 0 <= cfg.pad_id < cfg.vocab_size:
        converted.notes.append(f"pad_id {cfg.pad_id} lies outside the vocabulary: set to 0")
        cfg.pad_id = 0


def _check_shapes(converted: Converted) -> None:
    model = _skeleton(converted.config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    if converted.config.tie_embeddings:
        del expected[TIED_HEAD]
    got = {k: v.shape for k, v in converted.state.items()}
    missing, extra = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    wrong = [
        f"{k}: {tuple(got[k])} != {tuple(expected[k])}"
        for k in expected.keys() & got.keys()
        if got[k] != expected[k]
    ]
    if missing or extra or wrong:  # a converter bug, or a config.json that lies about sizes
        raise ConversionError(
            f"converted weights do not fit the model: missing {missing[:5]}, unexpected "
            f"{extra[:5]}, wrong shapes {wrong[:5]}"
        )
    converted.parameters = count_parameters(model)


class _SkipNormalInit(TorchFunctionMode):
    """Makes normal_ a no-op (in this thread only): on the meta device it would import
    torch._dynamo, ~3 s, to fill tensors that hold no values anyway."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") == "normal_":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def _skeleton(config: ModelConfig) -> Transformer:
    """`Transformer(config)` on the meta device: every shape, no memory, no values."""
    with torch.device("meta"), _SkipNormalInit():
        return Transformer(config)


def make_card(model_id: str, source: Source, converted: Converted) -> dict:
    cfg = converted.config
    layers = (
        f"{cfg.n_layers} + {cfg.n_decoder_layers} layers"
        if cfg.kind == "seq2seq"
        else f"{cfg.n_layers} layers"
    )
    kv = f" ({cfg.n_kv_heads} key/value heads)" if cfg.n_kv_heads else ""
    origin = "Hugging Face weights"
    if isinstance(source, GGUFSource):
        origin = f"a GGUF file ({source.gguf['quantization']}, dequantized to float32)"
    card = {
        "id": model_id,
        "title": f"{model_id} (imported)",
        "description": (
            f"{source.architecture or source.config['model_type']}, imported from {origin}: "
            f"{layers} × {cfg.n_heads} heads{kv}, d_model {cfg.d_model}, "
            f"{cfg.vocab_size} tokens."
        ),
        "tasks": converted.tasks,
        "source": {
            "origin": source.origin,
            "architecture": source.architecture,
            "model_type": source.config["model_type"],
            "license": source.license(),
            "transformers_version": source.config.get("transformers_version"),
            "imported": datetime.date.today().isoformat(),
        },
        "special_tokens": source.special_tokens(),
        "parameters": converted.parameters,
        "conversion": {"notes": converted.notes, "dropped": converted.dropped},
    }
    if isinstance(source, GGUFSource):
        gguf = {
            k: v for k, v in source.gguf.items() if k not in ("special_tokens", "chat_template")
        }
        card["gguf"] = gguf
        if source.gguf["chat_template"]:
            card["chat_template"] = source.gguf["chat_template"]
            card["tasks"] = [*card["tasks"], "chat"]  # /decode offers "ask it a question"
    return card


def _gguf_tokenizer(file: Path, source: GGUFSource, converted: Converted):
    tokenizer = gguf_tokenizer(file)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    cfg = converted.config
    converted.notes.append("tokenizer.json built with transformers from the GGUF's tokenizer")
    if not source.gguf["add_bos_token"] and cfg.bos_id is not None:
        # attnviz puts bos_id before a decoder's prompt; this model was not trained so
        converted.notes.append(
            f"the GGUF's tokenizer adds no BOS (add_bos_token false): bos_id {cfg.bos_id} "
            "unset, prompts are fed as the tokenizer encodes them"
        )
        cfg.bos_id = None
    return tokenizer


def _measured_heads(converted: Converted) -> dict:
    """The heads' roles on the card, measured on the converted weights (`heads.py`)."""
    from models.convert.heads import head_summary

    cfg = converted.config
    with _SkipNormalInit():  # every weight is loaded next
        model = Transformer(cfg)
    state = dict(converted.state)
    if cfg.tie_embeddings:
        state[TIED_HEAD] = state[EMBEDDINGS]
    model.load_state_dict(state, strict=True)
    specials = [i for i in (cfg.bos_id, cfg.eos_id, cfg.pad_id) if i is not None]
    return head_summary(model.eval(), specials)


def _plain_permissions(folder: Path) -> None:
    """mkdtemp makes the folder private (0700): give it the modes of any folder the operator
    creates, so a server running as another user (the Docker image's) can read it."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def import_checkpoint(
    src: str,
    model_id: str,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_bytes: int | None = None,
) -> Path:
    """Convert ``src`` (a local folder, a GGUF file, or a hub id when online) into
    ``out/model_id``; a GGUF whose float32 weights exceed ``max_bytes`` is refused."""
    if not MODEL_ID.fullmatch(model_id):
        raise ConversionError(
            f"--id {model_id!r}: use letters, digits, '.', '_' and '-' (at most 64)"
        )
    target = Path(out) / model_id
    if target.exists() and not overwrite:
        raise ConversionError(f"{target} exists (pass --force to replace it)")
    path = Path(src).expanduser()
    gguf_file = find_gguf(path) if path.exists() else None
    if gguf_file is not None:
        source = open_gguf(gguf_file, str(gguf_file.resolve()), max_bytes=max_bytes)
    elif path.is_dir():
        source = Source.open(path, str(path.resolve()))
    elif not path.exists() and looks_like_hub_id(src):
        source = Source.open(download(src), f"hub:{src}")
    else:
        raise ConversionError(f"{src!r} is neither a checkpoint folder nor a hub id")

    converted = convert(source)
    if isinstance(source, GGUFSource):
        tokenizer = _gguf_tokenizer(gguf_file, source, converted)
    else:
        tokenizer, notes = load_tokenizer(source)
        converted.notes += notes
    card = make_card(model_id, source, converted)
    if isinstance(source, GGUFSource) and converted.config.kind == "decoder":
        card["heads"] = _measured_heads(converted)
    # Written one level further down, then renamed: a server scanning `out` for folders
    # with a config.json never loads half a model, even one an interrupted import left.
    work = Path(out) / ".attnviz-import"
    work.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{model_id}.", dir=work))
    try:
        write_checkpoint(staging, converted.config, converted.state, tokenizer, card)
        _plain_permissions(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not any(work.iterdir()):
            work.rmdir()
    return target
