"""What a notebook output or an exported page shows: the /attention answer, built in-process.

For a model (a shipped id, a checkpoint or Hugging Face folder, a loaded model) the request
goes through the server's own path without HTTP: ``AttentionRequest`` (the schema) ->
``Inputs.attention`` (every model-dependent check) -> ``app.inference.attention`` ->
``serialize.dumps``: the same f16 JSON bytes ``POST /api/v1/attention`` answers. Attention
that another library computed (``attention=``, ``cache=``) is put in the same shape, so the
page reads one format.

Every bad argument is an ``ArgumentError`` (a ``ValueError``) that names the argument.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pydantic
import torch

from app import inference
from app.config import Settings, get_settings
from app.errors import ApiError
from app.inputs import Inputs
from app.registry import Entry, Registry, resolve_device
from app.schemas import AttentionRequest
from app.serialize import dumps, tensor
from models.checkpoint import Checkpoint, load_checkpoint

VIEWS = ("heads", "grid", "heatmap", "explorer")
SITES = ("encoder.self", "decoder.self", "decoder.cross")
#: a token string a tokenizer reserves: [CLS], <|endoftext|>, </s>, <pad>
SPECIAL = re.compile(r"^(<\|[^|]+\|>|<\/?[A-Za-z_]+>|\[[A-Z_]+\])$")

#: the most half floats one output carries (64 MiB of them before base64): 2048 tokens × 12 heads
#: × 12 layers would be 1.2 GB, which no notebook should be asked to hold
MAX_CELLS = 32 << 20

FEWER = "pass some of its layers (attention[a:b]) or a shorter input"

_loaded: dict[str, Entry] = {}  # a model id or folder -> its entry: loaded once per kernel


class ArgumentError(ValueError):
    """A bad argument of ``show`` (or a field of the web UI's export): "name: what is wrong"."""

    def __init__(self, name: str, message: str, status: int = 422, code: str = "invalid") -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.status = status  # what the web UI's export answers (404: an unknown model)
        self.code = code


@dataclass
class Payload:
    """The answer the page draws, and what the page says about where it came from."""

    answer: bytes  # the /attention answer (f16 JSON)
    model: str
    input: str  # the text given, or a description of the attention given


# ---------------------------------------------------------------------------------------
# models


def _load_folder(path: Path, device: torch.device) -> Checkpoint:
    config = path / "config.json"
    if not config.is_file():
        raise ArgumentError("model", f"{path} has no config.json (not a checkpoint folder)")
    if '"model_type"' in config.read_text():  # a Hugging Face folder: converted, as on import
        from models.convert import ConversionError, import_checkpoint

        with tempfile.TemporaryDirectory(prefix="attnviz-") as tmp:
            try:
                folder = import_checkpoint(str(path), path.name or "model", tmp)
            except ConversionError as e:
                raise ArgumentError("model", str(e)) from None
            return load_checkpoint(folder, device)
    return load_checkpoint(path, device)


def _is_gguf(path: Path) -> bool:
    """A .gguf file, or a folder holding one and no checkpoint of ours."""
    if path.is_file():
        return path.suffix == ".gguf"
    return path.is_dir() and not (path / "config.json").exists() and any(path.glob("*.gguf"))


def _load_gguf(path: Path, device: torch.device) -> Checkpoint:
    """A GGUF file (llama.cpp, Ollama, LM Studio), dequantized as ``attnviz import`` does."""
    from models.convert import ConversionError, import_checkpoint

    model_id = re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:64] or "model"
    with tempfile.TemporaryDirectory(prefix="attnviz-") as tmp:
        try:
            folder = import_checkpoint(str(path), model_id, tmp)
        except ConversionError as e:
            raise ArgumentError("model", str(e)) from None
        return load_checkpoint(folder, device)


def _from_hugging_face(model: Any, tokenizer: Any, device: torch.device) -> Checkpoint:
    """A loaded transformers model, converted as ``attnviz import`` converts its folder (saved
    in safetensors to a temporary one, with its tokenizer)."""
    if tokenizer is None:
        raise ArgumentError("tokenizer", "a Hugging Face model needs its tokenizer= to read text")
    with tempfile.TemporaryDirectory(prefix="attnviz-") as tmp:
        folder = Path(tmp) / type(model).__name__
        model.save_pretrained(folder, safe_serialization=True)
        if hasattr(tokenizer, "save_pretrained"):  # a transformers tokenizer
            tokenizer.save_pretrained(folder)
        elif hasattr(tokenizer, "to_str"):  # a tokenizers.Tokenizer
            (folder / "tokenizer.json").write_text(tokenizer.to_str())
        else:
            raise ArgumentError("tokenizer", f"a {type(tokenizer).__name__} is no tokenizer")
        return _load_folder(folder, device)


def resolve_model(model: Any, tokenizer: Any = None) -> Entry:
    """An entry for ``model``: a shipped id, a checkpoint or Hugging Face folder, a .gguf
    file, a ``Checkpoint`` or a loaded attnviz model (``tokenizer``: a ``tokenizers.Tokenizer``)."""
    device = resolve_device(get_settings().device)
    if isinstance(model, Entry):
        return model
    if isinstance(model, Checkpoint):
        name = model.path.name if model.path else type(model.model).__name__
        return Entry(name, model)
    if isinstance(model, torch.nn.Module) and hasattr(model, "save_pretrained"):
        return Entry(type(model).__name__, _from_hugging_face(model, tokenizer, device))
    if isinstance(model, torch.nn.Module):
        config = getattr(model, "config", None)
        if not hasattr(model, "hook_point_names") or config is None:
            raise ArgumentError(
                "model",
                f"a {type(model).__name__} is not an attnviz model; for a Hugging Face "
                "model pass attention=outputs.attentions (with output_attentions=True) and "
                "tokens=, or its saved folder as model=",
            )
        return Entry(type(model).__name__, Checkpoint(model.eval(), config, tokenizer))
    if not isinstance(model, (str, Path)):
        raise ArgumentError(
            "model", f"expected a model id, a folder or a model, got {type(model)!r}"
        )
    key = str(model)
    if key in _loaded:
        return _loaded[key]
    for root in get_settings().checkpoint_dir:
        shipped_id = isinstance(model, str) and Path(key).name == key  # a name, not a path
        if shipped_id and (root / key / "config.json").is_file():
            entry = Entry(key, load_checkpoint(root / key, device))
            break
    else:
        path = Path(model).expanduser()
        if _is_gguf(path):
            _loaded[key] = Entry(path.resolve().stem, _load_gguf(path, device))
            return _loaded[key]
        if not path.is_dir():
            known = sorted(
                p.name
                for root in get_settings().checkpoint_dir
                if root.is_dir()
                for p in root.iterdir()
                if (p / "config.json").is_file()
            )
            raise ArgumentError(
                "model",
                f"unknown model {key!r}: neither a shipped id ({', '.join(known)}) nor "
                "a checkpoint folder nor a .gguf file",
            )
        entry = Entry(path.resolve().name, _load_folder(path, device))
    _loaded[key] = entry
    return entry


# ---------------------------------------------------------------------------------------
# a model's attention, through the server's own request path


def attention_request(
    model_id: str,
    text: str | None,
    *,
    target: str | None = None,
    token_ids: list[int] | None = None,
    view: str = "explorer",
    layer: int = 0,
    head: int = 0,
) -> AttentionRequest:
    """The /attention request a view needs: the heatmap alone reads one layer and one head;
    the views with a heatmap or thumbnails grey the masked cells."""
    only = view == "heatmap"
    fields = {"text": text, "target": target, "token_ids": token_ids}
    try:
        return AttentionRequest(
            model=model_id,
            **{k: v for k, v in fields.items() if v is not None},
            layers=[layer] if only else None,
            heads=[head] if only else None,
            include=["masks"] if view != "heads" else [],
            format="f16",
        )
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "text"
        raise ArgumentError(where, first["msg"]) from None


def resolve(inputs: Inputs, body: AttentionRequest):
    """``Inputs.attention`` (every check that needs the model), errors named as show() names
    its arguments (``layer``, not ``layers``)."""
    try:
        return inputs.attention(body)
    except ApiError as e:
        field = (e.field or "model").split(".")[0]
        name = {"layers": "layer", "heads": "head"}.get(field, field)
        raise ArgumentError(name, e.message, e.status, e.code or "invalid") from None


def answer(inp, body: AttentionRequest, settings: Settings) -> bytes:
    """What ``POST /attention`` answers ``body`` (``inp``: its resolved input), as bytes."""
    return dumps(
        inference.attention(
            inp, body.include, body.format, settings.max_new_tokens, body.pool, None, body.weights
        )
    )


def described(text: str | None, token_ids: list[int] | None, target: str | None) -> str:
    """The input, as the page states it."""
    shown = text if text is not None else f"token ids {token_ids}"
    return shown if target is None else f"{shown} → {target}"


def model_answer(
    model: Any,
    text: str | None,
    *,
    target: str | None = None,
    token_ids: list[int] | None = None,
    view: str = "explorer",
    layer: int = 0,
    head: int = 0,
    tokenizer: Any = None,
) -> Payload:
    """The f16 /attention answer of ``model`` on ``text`` (or ``token_ids``) for ``view``."""
    entry = resolve_model(model, tokenizer)
    settings = get_settings()
    registry = Registry(entry.device)
    registry.entries[entry.id] = entry
    body = attention_request(
        entry.id, text, target=target, token_ids=token_ids, view=view, layer=layer, head=head
    )
    inp = resolve(Inputs(registry, settings), body)
    check_size(inp, view)
    return Payload(answer(inp, body, settings), entry.id, described(text, token_ids, target))


def check_size(inp, view: str) -> None:
    """Refuse, before any forward pass, an output no notebook should hold (MAX_CELLS)."""
    cfg = inp.entry.config
    longest = max(len(inp.source.ids), len(inp.target.ids) if inp.target else 0)
    if (
        view != "heatmap"
        and len(cfg.sites) * len(inp.layers) * len(inp.heads) * longest**2 > MAX_CELLS
    ):
        too_large("view", "show one head (view='heatmap', layer=, head=) or a shorter input")


def too_large(name: str, advice: str):
    raise ArgumentError(name, f"more than {MAX_CELLS >> 20} M attention weights to carry; {advice}")


# ---------------------------------------------------------------------------------------
# attention another library computed


def _array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ArgumentError(
            name, f"expected a tensor or an array, got {type(x).__name__}"
        ) from None
    return a


def stack_layers(attention: Any, name: str) -> np.ndarray:
    """[layers, heads, q, k] from a tuple of [batch, heads, q, k] (batch 1: Hugging Face's
    ``outputs.attentions``) or from one [layers, heads, q, k] array."""
    if isinstance(attention, (tuple, list)):
        if not attention:
            raise ArgumentError(name, "an empty sequence of layers")
        layers = []
        for i, layer in enumerate(attention):
            a = _array(layer, f"{name}[{i}]")
            if a.ndim != 4:
                raise ArgumentError(
                    f"{name}[{i}]",
                    f"expected a 4-D [batch, heads, queries, keys] tensor, got "
                    f"{a.ndim}-D {list(a.shape)}",
                )
            if a.shape[0] != 1:
                raise ArgumentError(
                    f"{name}[{i}]", f"batch of {a.shape[0]}; pass one sequence (x[:1])"
                )
            layers.append(a[0])
        shapes = {x.shape for x in layers}
        if len(shapes) > 1:
            raise ArgumentError(name, f"the layers' shapes differ: {sorted(shapes)}")
        if sum(x.size for x in layers) > MAX_CELLS:  # checked before any copy
            too_large(name, FEWER)
        return np.stack(layers)
    a = _array(attention, name)
    if a.ndim != 4:
        raise ArgumentError(
            name,
            f"expected a 4-D [layers, heads, queries, keys] array (or a tuple of "
            f"[batch, heads, queries, keys]), got {a.ndim}-D {list(a.shape)}",
        )
    if a.size > MAX_CELLS:
        too_large(name, FEWER)
    return a


def token_list(tokens: Any, name: str) -> list[dict]:
    """Tokens as the API gives them ({text, special}), from strings."""
    if tokens is None:
        raise ArgumentError(name, "the tokens are needed to label the attention")
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ArgumentError(name, f"expected a list of token strings, got {type(tokens).__name__}")
    out = []
    for t in tokens:
        if not isinstance(t, str):
            raise ArgumentError(name, f"expected strings, got a {type(t).__name__}")
        out.append({"text": t, "special": bool(SPECIAL.match(t))})
    return out


def _check(a: np.ndarray, name: str, rows: list, cols: list, rows_name: str, cols_name: str):
    q, k = a.shape[-2:]
    if q != len(rows) or k != len(cols):
        raise ArgumentError(
            name,
            f"its matrices are {q} × {k} (queries × keys) but {rows_name} has "
            f"{len(rows)} tokens and {cols_name} {len(cols)}",
        )
    if not np.isfinite(a).all() or a.min() < -1e-3 or a.max() > 1 + 1e-3:
        raise ArgumentError(name, "attention weights must be finite and within [0, 1]")


def _causal(a: np.ndarray) -> bool:
    q, k = a.shape[-2:]
    return q == k and q > 1 and not np.triu(np.abs(a).max(axis=(0, 1)), 1).any()


def given_answer(
    *,
    attention: Any = None,
    tokens: Any = None,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Any = None,
    decoder_tokens: Any = None,
    model_name: str = "attention given",
) -> Payload:
    """The /attention answer's shape around attention computed elsewhere."""
    if attention is not None:
        source = token_list(tokens, "tokens")
        a = stack_layers(attention, "attention")
        _check(a, "attention", source, source, "tokens", "tokens")
        site = "decoder.self" if _causal(a) else "encoder.self"
        sites, kind, target = {site: a}, site.split(".")[0], None
    else:
        if encoder_attention is None or decoder_attention is None or cross_attention is None:
            raise ArgumentError(
                "attention",
                "give attention= (one stack) or all of encoder_attention=, "
                "decoder_attention= and cross_attention= (an encoder-decoder)",
            )
        source = token_list(encoder_tokens, "encoder_tokens")
        target = token_list(decoder_tokens, "decoder_tokens")
        sites = {
            "encoder.self": stack_layers(encoder_attention, "encoder_attention"),
            "decoder.self": stack_layers(decoder_attention, "decoder_attention"),
            "decoder.cross": stack_layers(cross_attention, "cross_attention"),
        }
        _check(sites["encoder.self"], "encoder_attention", source, source,
               "encoder_tokens", "encoder_tokens")  # fmt: skip
        _check(sites["decoder.self"], "decoder_attention", target, target,
               "decoder_tokens", "decoder_tokens")  # fmt: skip
        _check(sites["decoder.cross"], "cross_attention", target, source,
               "decoder_tokens", "encoder_tokens")  # fmt: skip
        kind = "seq2seq"
    if sum(a.size for a in sites.values()) > MAX_CELLS:
        too_large("attention", FEWER)
    n_heads = {a.shape[1] for a in sites.values()}
    if len(n_heads) > 1:
        raise ArgumentError(
            "cross_attention", f"the sites have different numbers of heads {n_heads}"
        )
    n_layers = max(a.shape[0] for a in sites.values())
    answer = {
        "model": model_name,
        "kind": kind,
        "format": "f16",
        "n_layers": n_layers,
        "n_heads": n_heads.pop(),
        "layers": list(range(n_layers)),
        "heads": list(range(next(iter(sites.values())).shape[1])),
        "tokens": {"source": source, **({"target": target} if target is not None else {})},
        "attention": {s: tensor(a, "f16", prob=True) for s, a in sites.items()},
    }
    shown = " ".join(t["text"] for t in (target or source))
    return Payload(dumps(answer), model_name, shown)


def cache_answer(cache: Any, tokens: Any) -> Payload:
    """A TransformerLens ``ActivationCache`` (or any mapping with its names): the
    ``blocks.{layer}.attn.hook_pattern`` entries, [batch, heads, q, k] or [heads, q, k]."""
    if not isinstance(cache, Mapping) and not hasattr(cache, "keys"):
        raise ArgumentError(
            "cache", f"expected an ActivationCache or a mapping, got {type(cache)!r}"
        )
    found = {}
    for key in list(cache.keys()):  # an ActivationCache is no Mapping, but has keys()
        m = re.fullmatch(r"blocks\.(\d+)\.attn\.hook_pattern", str(key))
        if m:
            found[int(m[1])] = key
    if not found:
        raise ArgumentError("cache", "no blocks.{layer}.attn.hook_pattern entries")
    if sorted(found) != list(range(len(found))):
        raise ArgumentError("cache", f"layers {sorted(found)} are not 0 … {len(found) - 1}")
    layers = []
    for li in range(len(found)):
        a = _array(cache[found[li]], f"cache[{found[li]!r}]")
        if a.ndim == 3:
            a = a[None]
        layers.append(a)
    return given_answer(attention=tuple(layers), tokens=tokens, model_name="ActivationCache")


def answer_json(payload: Payload) -> dict:
    return orjson.loads(payload.answer)
