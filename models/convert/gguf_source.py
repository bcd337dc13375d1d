"""Reading a GGUF file (llama.cpp, Ollama, LM Studio) as a `Source`: config, dequantized
weights under Hugging Face's names, the tokenizer and the chat template.

Everything goes through transformers' GGUF reader (``load_gguf_checkpoint``, which reads
with the ``gguf`` package): its config mapping, its tensor-name map (built from the HF model
class on the meta device, so no memory) and its dequantization. Quantized blocks become
float32, so the imported model is the *quantized* model, not the float original: the card
says so. The family converters then see an ordinary Hugging Face checkpoint.

A GGUF holds only metadata, tensors and a tokenizer (no pickle, no code).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.convert.source import ConversionError, Source, Weights

MAGIC = b"GGUF"
INSTALL_GGUF = "pip install 'attnviz[hf]' (transformers and gguf)"
#: GGUF architectures whose config and tensor names transformers maps onto a family we convert
ARCHITECTURES = ("llama", "mistral", "qwen2", "gpt2")
#: llama.cpp's special-token ids -> the Hugging Face names of the card's special tokens
SPECIAL_IDS = {
    "bos_token_id": "bos_token",
    "eos_token_id": "eos_token",
    "unknown_token_id": "unk_token",
    "padding_token_id": "pad_token",
}


def find_gguf(path: Path) -> Path | None:
    """The GGUF file ``path`` names: itself, or the one *.gguf of a folder (None: not GGUF)."""
    if path.is_file():
        return path if path.suffix.lower() == ".gguf" or _has_magic(path) else None
    if not path.is_dir():
        return None
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf")
    if len(files) > 1:
        raise ConversionError(
            f"{path} holds {len(files)} GGUF files ({', '.join(p.name for p in files)}): "
            "name the one to import"
        )
    if files and (path / "config.json").is_file():
        return None  # a Hugging Face folder that also ships a GGUF: its safetensors win
    return files[0] if files else None


def _has_magic(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == MAGIC


@dataclass
class GGUFSource(Source):
    """A GGUF file as a Hugging Face checkpoint: what `convert` and `make_card` read."""

    gguf: dict[str, Any] = field(default_factory=dict)  # what the card records about the file

    def license(self) -> str | None:
        return self.gguf.get("license")

    def special_tokens(self) -> dict[str, str]:
        return dict(self.gguf.get("special_tokens", {}))


def open_gguf(file: Path, origin: str, *, max_bytes: int | None = None) -> GGUFSource:
    """Read, check and dequantize ``file``. Every refusal comes before the dequantization:
    not a GGUF, truncated or corrupt, an architecture we do not convert, no tokenizer, or
    float32 weights larger than ``max_bytes``."""
    if not _has_magic(file):
        raise ConversionError(f"{file} is not a GGUF file (it does not start with 'GGUF')")
    reader = _reader(file)
    architecture = _field(reader, "general.architecture")
    if architecture not in ARCHITECTURES:
        raise ConversionError(
            f"{file}: GGUF architecture {architecture!r} is not supported (attnviz imports "
            f"GGUF files of {', '.join(ARCHITECTURES)})"
        )
    if "tokenizer.ggml.tokens" not in reader.fields:
        raise ConversionError(
            f"{file} has no tokenizer (no tokenizer.ggml.tokens in its metadata): attnviz "
            "needs the model's own tokenizer to show its tokens"
        )
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    if max_bytes is not None and n_params * 4 > max_bytes:
        raise ConversionError(
            f"{file}: {n_params / 1e6:.0f} M parameters are {n_params * 4 >> 20} MB in float32, "
            f"more than the memory budget ({max_bytes >> 20} MB; ATTNVIZ_MEMORY_BUDGET_MB or "
            "--memory-budget-mb): import a smaller model"
        )
    types = collections.Counter(t.tensor_type.name for t in reader.tensors)
    config, tensors, tokenizer_config = _dequantized(file, reader)
    info = {
        "file": file.name,
        "architecture": architecture,
        "name": _field(reader, "general.name"),
        "license": _field(reader, "general.license"),
        "quantization": _file_type(reader, types),
        "tensor_types": dict(types.most_common()),
        "dequantized": True,
        "note": (
            "the weights were dequantized to float32 from the GGUF's quantized blocks: every "
            "figure describes this quantized model, not the float original"
        ),
        "add_bos_token": bool(tokenizer_config.get("add_bos_token", False)),
        "chat_template": tokenizer_config.get("chat_template"),
        "special_tokens": _special_tokens(reader),
    }
    return GGUFSource(file.parent, origin, config, Weights(tensors), gguf=info)


def _reader(file: Path):
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ConversionError(
            f"reading {file.name} needs the gguf package: {INSTALL_GGUF}"
        ) from None
    try:
        return GGUFReader(str(file))
    except Exception as e:  # numpy's view / reshape errors on a file cut short
        raise ConversionError(
            f"{file} is truncated or corrupt: the GGUF reader failed ({type(e).__name__}: {e})"
        ) from None


def _field(reader, key: str) -> Any:
    value = reader.fields.get(key)
    return None if value is None else value.contents()


def _file_type(reader, types: collections.Counter) -> str:
    """llama.cpp's name for the file's quantization (Q4_1...), else its commonest block type."""
    from gguf import LlamaFileType

    value = _field(reader, "general.file_type")
    try:
        return LlamaFileType(value).name.removeprefix("MOSTLY_")
    except ValueError:
        return types.most_common(1)[0][0]


def _special_tokens(reader) -> dict[str, str]:
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    out = {}
    for key, name in SPECIAL_IDS.items():
        i = _field(reader, f"tokenizer.ggml.{key}")
        if i is not None and 0 <= i < len(tokens):
            out[name] = tokens[i]
    return out


def _dequantized(file: Path, reader) -> tuple[dict, dict, dict]:
    """(the HF config as a dict, its tensors by HF name in float32, the tokenizer config).

    The loop of transformers' ``load_gguf_checkpoint(return_tensors=True)`` on the reader we
    already hold (each new reader parses the 49k-token vocabulary again, seconds), with its
    per-architecture tensor processor and name map (asked once, of the model class's
    parameter names: its recursion into every submodule takes seconds more)."""
    try:
        import numpy as np
        import torch
        from gguf import dequantize
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.modeling_gguf_pytorch_utils import (
            TENSOR_PROCESSORS,
            TensorProcessor,
            get_gguf_hf_weights_map,
            load_gguf_checkpoint,
        )
    except ImportError:
        raise ConversionError(f"importing a GGUF needs transformers: {INSTALL_GGUF}") from None
    try:
        meta = load_gguf_checkpoint(str(file), return_tensors=False)
        hf_config = AutoConfig.for_model(**_config_fixes(meta["config"]))
        with torch.device("meta"):  # only for its parameter names
            skeleton = AutoModelForCausalLM.from_config(hf_config)
        processor = TENSOR_PROCESSORS.get(_field(reader, "general.architecture"), TensorProcessor)
        processor = processor(config=meta["config"])
        names = _weights_map(file, reader, skeleton, processor, get_gguf_hf_weights_map)
        # a processor may store a tensor itself, under its HF name (GPT-2's ``output.weight``
        # becomes ``lm_head.weight`` there, and the loop sees no name for it)
        parsed = {"tensors": {}}
        tensors = parsed["tensors"]
        for tensor in reader.tensors:
            weights = dequantize(tensor.data, tensor.tensor_type)
            result = processor.process(
                weights=weights,
                name=tensor.name,
                tensor_key_mapping=names,
                parsed_parameters=parsed,
            )
            if result.name in names:
                tensors[names[result.name]] = torch.from_numpy(np.copy(result.weights))
    except ConversionError:
        raise
    except (ValueError, KeyError, TypeError, NotImplementedError) as e:
        raise ConversionError(
            f"{file}: transformers could not read this GGUF ({type(e).__name__}: {e})"
        ) from None
    config = hf_config.to_dict()
    config["architectures"] = [type(skeleton).__name__]
    return config, tensors, meta.get("tokenizer_config", {})


#: GGUF keys transformers reads into a GPT2Config attribute GPT-2 does not use -> the one it
#: builds its shapes from (its GGUF config map says n_ctx for context_length, which leaves the
#: position table at n_positions' default 1024, and keeps feed_forward_length as is, which
#: leaves the MLP at n_inner's default 4·n_embd): a file of another size loads only with
#: them passed to from_pretrained
GPT2_CONFIG_FIXES = {"n_ctx": "n_positions", "feed_forward_length": "n_inner"}


def _config_fixes(config: dict) -> dict:
    """transformers' config of the GGUF, with GPT-2's sizes where GPT2Config reads them."""
    config = dict(config)
    if config.get("model_type") == "gpt2":
        for theirs, ours in GPT2_CONFIG_FIXES.items():
            if theirs in config:
                config.setdefault(ours, config[theirs])
    return config


def _weights_map(file: Path, reader, skeleton, processor, weights_map) -> dict[str, str]:
    """GGUF tensor name -> HF parameter name (transformers' ``get_gguf_hf_weights_map``), or
    a refusal naming the model type transformers reads the file as when its GGUF reader has
    no tensor-name map for it. transformers 5 has none for ``mistral``: a file declaring
    ``general.architecture = mistral``, or a ``llama`` one named exactly "mistral" (which
    transformers renames to ``mistral``), cannot be read by transformers itself."""
    try:
        return weights_map(_Names(skeleton), processor)
    except NotImplementedError as e:
        import transformers

        raise ConversionError(
            f"{file}: transformers {transformers.__version__} reads this GGUF (architecture "
            f"{_field(reader, 'general.architecture')!r}, named {_field(reader, 'general.name')!r})"
            f" as model type {skeleton.config.model_type!r} but cannot map its tensors, so "
            f"attnviz cannot import it (transformers: {e}). llama.cpp writes Mistral models as "
            "architecture 'llama' under their own name, and those import as Llama"
        ) from None


class _Names:
    """A model's config and parameter names, without its submodules."""

    def __init__(self, model) -> None:
        self.config, self._names = model.config, dict.fromkeys(model.state_dict())

    def state_dict(self) -> dict:
        return self._names

    def named_children(self) -> list:
        return []


def gguf_tokenizer(file: Path) -> Any:
    """The file's tokenizer as transformers builds it from the GGUF (a `tokenizers.Tokenizer`)."""
    from transformers import PreTrainedTokenizerFast

    try:  # (AutoTokenizer would first parse the file's whole metadata for its config again)
        built = PreTrainedTokenizerFast.from_pretrained(str(file.parent), gguf_file=file.name)
    except Exception as e:
        raise ConversionError(
            f"{file}: transformers could not build the tokenizer of this GGUF "
            f"({type(e).__name__}: {e})"
        ) from None
    return built.backend_tokenizer
