"""Reading a Hugging Face checkpoint folder: config.json, *.safetensors, tokenizer, license.

Only json, text and safetensors files are read, so nothing in a checkpoint can run code:
no pickle (``torch.load``), no ``trust_remote_code``. ``transformers`` is needed only to
build a missing tokenizer.json, and ``huggingface_hub`` only to download a hub id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open


class ConversionError(ValueError):
    """The source cannot be imported; the message says why and, where it can, what to do."""


#: weight files that are pickles: torch.load on them could run arbitrary code
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: what a hub download fetches: configs, the HF weights as safetensors (model.safetensors or
#: its shards), tokenizer files, the README (for its license); never pickles or code
HUB_PATTERNS = ["*.json", "model*.safetensors", "*.txt", "*.model", "*.spm", "README.md"]
CONVERT_HINT = (
    "attnviz reads safetensors only and never unpickles a file. Convert it once, where you "
    'trust the file, e.g.: python -c "from transformers import AutoModel; '
    "AutoModel.from_pretrained('SRC').save_pretrained('SRC-safetensors')\" "
    "(use the model's own class, e.g. AutoModelForMaskedLM, to keep its head)"
)


class Weights:
    """The source's tensors by name. Converters `take` what they use, so whatever is left at
    the end is either listed as deliberately dropped or reported as unexpected."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self._tensors = {_modern_name(k): v for k, v in tensors.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def prefix(self, probe: str, *candidates: str) -> str:
        """The prefix of the head class (``bert.``, ``transformer.``, ``model.``, or none for a
        bare model): the first of ``candidates`` under which ``probe`` exists."""
        for prefix in candidates:
            if prefix + probe in self._tensors:
                return prefix
        raise ConversionError(
            f"no tensor {probe!r} under any of the prefixes {candidates}: the weights do not "
            "match the architecture that config.json names"
        )

    def take(self, name: str) -> torch.Tensor:
        try:
            return self._tensors.pop(name)
        except KeyError:
            raise ConversionError(f"the checkpoint has no tensor {name!r}") from None

    def drop(self, name: str) -> bool:
        """Discard a tensor the model does not need (an alias, a derived table); True if present."""
        return self._tensors.pop(name, None) is not None

    def remaining(self) -> list[str]:
        return sorted(self._tensors)


def _modern_name(name: str) -> str:
    # TF-era BERT checkpoints call LayerNorm's weight and bias gamma and beta
    if name.endswith(".gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        return name[: -len("beta")] + "bias"
    return name


@dataclass
class Source:
    """A local Hugging Face checkpoint folder, read without running any of it."""

    path: Path
    origin: str  # what the user named: a folder or a hub id
    config: dict[str, Any]
    weights: Weights
    generation: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, origin: str | None = None) -> Source:
        if not (path / "config.json").is_file():
            pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
            if pickles:
                raise ConversionError(
                    f"{path} holds only pickle weights ({', '.join(pickles)}) and no "
                    f"config.json. {CONVERT_HINT}"
                )
            raise ConversionError(
                f"{path} has no config.json and no .gguf file: not a Hugging Face checkpoint"
            )
        config = json.loads((path / "config.json").read_text())
        generation_file = path / "generation_config.json"
        generation = json.loads(generation_file.read_text()) if generation_file.is_file() else {}
        return cls(path, origin or str(path), config, Weights(read_safetensors(path)), generation)

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else ""

    def get(self, key: str, default: Any = None) -> Any:
        """A config value; special token ids missing from config.json come from
        generation_config.json, as in Hugging Face's generate."""
        value = self.config.get(key)
        if value is None:
            value = self.generation.get(key)
        return default if value is None else value

    def token_id(self, key: str) -> int | None:
        value = self.get(key)
        if isinstance(value, list):  # several EOS ids (Llama 3): we stop on the first
            value = value[0] if value else None
        return value

    def license(self) -> str | None:
        """The license named in the model card's front matter (README.md), if any."""
        readme = self.path / "README.md"
        if not readme.is_file():
            return None
        match = re.match(r"---\n(.*?)\n---", readme.read_text(errors="replace"), re.S)
        if not match:
            return None
        meta = dict(re.findall(r"^(license(?:_name|_link)?):\s*(.+?)\s*$", match[1], re.M))
        name = meta.get("license")
        if name == "other":
            name = meta.get("license_name") or meta.get("license_link") or name
        return name.strip("'\"") if name else None

    def special_tokens(self) -> dict[str, str]:
        """mask_token, cls_token... as the tokenizer's config names them (e.g. "<mask>")."""
        out: dict[str, str] = {}
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            file = self.path / name
            if not file.is_file():
                continue
            for key, value in json.loads(file.read_text()).items():
                if isinstance(value, dict):
                    value = value.get("content")
                if key.endswith("_token") and isinstance(value, str):
                    out.setdefault(key, value)
        return out


def weight_files(path: Path) -> list[Path]:
    """The Hugging Face weights of a folder: the shards its model.safetensors.index.json
    lists, else model.safetensors, else every *.safetensors (a repo may also hold other
    formats' files, e.g. Mistral's consolidated.safetensors, which must not be mixed in)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [name for name in shards if not (path / name).is_file()]
        if missing:
            raise ConversionError(f"{index.name} lists shards that are missing: {missing}")
        return [path / name for name in shards]
    if (path / "model.safetensors").is_file():
        return [path / "model.safetensors"]
    return sorted(path.glob("*.safetensors"))


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the folder's weight files (one file or several shards)."""
    files = weight_files(path)
    if not files:
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ConversionError(
                f"{path} holds only pickle weights ({', '.join(pickles)}). {CONVERT_HINT}"
            )
        raise ConversionError(f"{path} has no *.safetensors weights")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key in tensors:
                    raise ConversionError(f"tensor {key!r} appears in two weight files")
                tensors[key] = f.get_tensor(key)
    return tensors


def download(repo_id: str) -> Path:
    """Fetch a hub repository's configs, safetensors and tokenizer files (needs the network).

    A thin call to huggingface_hub, untested here (the project's machines are offline)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConversionError(
            f"{repo_id!r} is not a local folder, and downloading it needs huggingface_hub: "
            "pip install 'attnviz[hf]'"
        ) from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
    except Exception as e:  # offline, unknown repo, gated repo...: say which, plainly
        raise ConversionError(
            f"could not download {repo_id!r} from the Hugging Face hub ({type(e).__name__}: "
            f"{e}). Offline? Import a local folder instead (config.json, *.safetensors, "
            "tokenizer.json)."
        ) from None


def looks_like_hub_id(name: str) -> bool:
    """A hub id looks like gpt2 or owner/name (not ./model, ~/m, /abs or a/b/c: mistyped paths)."""
    return re.fullmatch(r"\w[\w.-]*(/\w[\w.-]*)?", name) is not None and ".." not in name
