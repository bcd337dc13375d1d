"""attnviz in a notebook and in one file: ``attnviz.show(...)`` draws inline in Jupyter with
nothing fetched (no server, no CDN), ``attnviz.export_html(...)`` writes a page that opens from
disk.

    import attnviz
    attnviz.show(model="decoder-mini", text="the cat sat on the mat", view="heads")
    attnviz.show(attention=outputs.attentions, tokens=tokenizer.convert_ids_to_tokens(ids))
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from attnviz import page as _page
from attnviz.payload import (
    SITES,
    VIEWS,
    ArgumentError,
    Payload,
    cache_answer,
    given_answer,
    model_answer,
)

try:
    __version__ = version("attnviz")
except PackageNotFoundError:  # run from a clone that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["VIEWS", "ArgumentError", "Output", "__version__", "export_html", "show"]


class Output:
    """What ``show`` returns: Jupyter draws it (``_repr_html_``); ``save`` writes a page."""

    def __init__(self, payload: Payload, view: str, site: str | None, layer: int, head: int):
        self.payload = payload
        self.view = view
        self.site = site
        self.layer = layer
        self.head = head

    def _page(self) -> dict:
        return {
            "view": self.view,
            "site": self.site,
            "layer": self.layer,
            "head": self.head,
            "model": self.payload.model,
            "input": self.payload.input,
            "version": __version__,
        }

    def _repr_html_(self) -> str:
        return _page.fragment(self._page(), self.payload.answer)

    def html(self) -> str:
        """A whole page (the same output), for a file that opens from disk."""
        title = f"attnviz {self.view}: {self.payload.model} · {self.payload.input[:80]}"
        return _page.document(title, self._repr_html_())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.html(), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"<attnviz {self.view} of {self.payload.model}: {self.payload.input[:60]!r}>"


def _index(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArgumentError(name, f"expected an index ≥ 0, got {value!r}")
    return value


def show(
    model: Any = None,
    text: str | None = None,
    *,
    view: str = "explorer",
    layer: int = 0,
    head: int = 0,
    site: str | None = None,
    target: str | None = None,
    token_ids: list[int] | None = None,
    tokenizer: Any = None,
    attention: Any = None,
    tokens: Any = None,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Any = None,
    decoder_tokens: Any = None,
    cache: Any = None,
) -> Output:
    """A view of a model's attention on ``text``, or of attention computed elsewhere.

    * ``model``: a shipped id (``"decoder-mini"``), a checkpoint or Hugging Face folder, a
      ``.gguf`` file (dequantized as ``attnviz import`` does), or a loaded attnviz model (``tokenizer=`` a ``tokenizers.Tokenizer``, or pass ``token_ids``);
      ``target``: a translator's output to teacher-force (default: its own translation).
    * ``attention=outputs.attentions, tokens=[...]``: what a Hugging Face model returns with
      ``output_attentions=True`` (a tuple of [batch, heads, q, k]), or one [layers, heads, q, k]
      array; an encoder-decoder's ``encoder_attention`` / ``decoder_attention`` /
      ``cross_attention`` with ``encoder_tokens`` / ``decoder_tokens``.
    * ``cache=``: a TransformerLens ``ActivationCache`` (its ``blocks.{l}.attn.hook_pattern``).
    * ``view``: ``heads``, ``grid``, ``heatmap`` or ``explorer``; ``layer``, ``head`` and
      ``site`` (``encoder.self``, ``decoder.self``, ``decoder.cross``) pick what is shown first.
    """
    if view not in VIEWS:
        raise ArgumentError("view", f"{view!r} is not one of {', '.join(VIEWS)}")
    layer, head = _index(layer, "layer"), _index(head, "head")
    if site is not None and site not in SITES:
        raise ArgumentError("site", f"{site!r} is not encoder.self, decoder.self or decoder.cross")
    given = [
        attention,
        encoder_attention,
        decoder_attention,
        cross_attention,
    ]
    sources = sum([model is not None, any(a is not None for a in given), cache is not None])
    if sources != 1:
        raise ArgumentError(
            "model", "give exactly one of model= (with text=), attention= (with tokens=) and cache="
        )
    if model is not None:
        if text is None and token_ids is None:
            raise ArgumentError("text", "a model needs text= (or token_ids=)")
        payload = model_answer(
            model,
            text,
            target=target,
            token_ids=token_ids,
            view=view,
            layer=layer,
            head=head,
            tokenizer=tokenizer,
        )
    elif cache is not None:
        payload = cache_answer(cache, tokens)
    else:
        payload = given_answer(
            attention=attention,
            tokens=tokens,
            encoder_attention=encoder_attention,
            decoder_attention=decoder_attention,
            cross_attention=cross_attention,
            encoder_tokens=encoder_tokens,
            decoder_tokens=decoder_tokens,
        )
    _check_picks(payload, layer, head, site)
    return Output(payload, view, site, layer, head)


def _check_picks(payload: Payload, layer: int, head: int, site: str | None) -> None:
    from attnviz.payload import answer_json

    answer = answer_json(payload)
    if layer not in answer["layers"]:
        raise ArgumentError("layer", f"{layer} is beyond the {answer['n_layers']} layers")
    if head not in answer["heads"]:
        raise ArgumentError("head", f"{head} is beyond the {answer['n_heads']} heads")
    if site is not None and site not in answer["attention"]:
        raise ArgumentError(
            "site", f"this attention has {', '.join(answer['attention'])}, not {site}"
        )


def export_html(path: str | Path, model: Any = None, text: str | None = None, **kwargs) -> Path:
    """``show(...)`` written to ``path`` as one page that opens from disk (file://)."""
    return show(model, text, **kwargs).save(path)
