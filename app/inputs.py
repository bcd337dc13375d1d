"""From a validated request to what a forward pass reads: the one place requests become inputs.

The schemas (app/schemas.py) check each field on its own: types, ranges, lengths. Everything
that needs the model — its tokenizer, vocabulary, family, depth and heads — is checked here,
and every failure is a 422 that names the field to fix (404 for an unknown model), with a
code saying which rule it broke (``RULES``: the API description lists them). Routes read:
resolve the request here -> build the job -> run it (``app.deps.RunJob``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from app.config import Settings
from app.deps import RegistryDep, SettingsDep
from app.errors import ApiError, invalid
from app.registry import Entry, Registry
from app.tokenization import Encoded

#: The codes of the 4xx answers a request that is valid against the OpenAPI schema can still
#: get: rules that depend on the model or relate two fields, which a JSON schema cannot say.
RULES = {
    "unknown_model": "404: no model of that id is loaded",
    "unsupported_task": "the model's family (or its heads) cannot do what the endpoint asks",
    "unsupported_field": "a field the model's family does not take (target for a non-seq2seq)",
    "exclusive_fields": "give exactly one of text / token_ids, at most one of target / target_ids",
    "out_of_range": "an index, id or size beyond the model: layer, head, token position, "
    "vocabulary id, max_len",
    "too_many_tokens": "the text is longer, in the model's tokens, than max_input_tokens or "
    "the model's max_len allow",
    "empty_text": "the model's tokenizer keeps nothing of the text (e.g. only control characters)",
    "invalid_text": "the text is not valid Unicode (a lone UTF-16 surrogate, \\ud800)",
    "no_mask": "fill-mask: the text has no [MASK]",
    "no_tokenizer": "the model ships no tokenizer: send token ids",
}


@dataclass(frozen=True)
class Sequence:
    """Token ids a stack reads, and how to show them (None: ids without a tokenizer)."""

    ids: list[int]
    tokens: list[dict] | None


@dataclass
class ModelInput:
    entry: Entry
    source: Sequence  # the encoder's input, or a decoder's prompt
    target: Sequence | None = None  # seq2seq decoder input; None: the model's own translation
    layers: list[int] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)


class Inputs:
    """Resolves requests against the loaded models and the server's limits."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    # ------------------------------------------------------------------ the model
    def model(self, model_id: str, field: str = "model") -> Entry:
        if model_id not in self.registry:
            known = ", ".join(e.id for e in self.registry) or "none loaded"
            raise ApiError(
                404,
                f"unknown model {model_id!r} (available: {known})",
                field=field,
                code="unknown_model",
            )
        return self.registry.get(model_id)

    def model_of_kind(self, model_id: str, kinds: tuple[str, ...], what: str) -> Entry:
        entry = self.model(model_id)
        if entry.config.kind not in kinds:
            raise invalid(
                "model",
                f"{entry.id} is a {entry.config.kind} model; {what} needs a {' or '.join(kinds)}",
                "unsupported_task",
            )
        return entry

    def max_tokens(self, entry: Entry) -> int:
        return min(self.settings.max_input_tokens, entry.config.max_len)

    # ------------------------------------------------------------------ sequences
    def text(self, entry: Entry, text: str, field: str = "text") -> Sequence:
        """The sequence the model reads for ``text`` (its specials added), or a 422."""
        return self._encode(entry, text, field, entry.codec.encode_source)

    def target_text(self, entry: Entry, text: str) -> Sequence:
        """seq2seq: the decoder input <s> + target (teacher forcing), or a 422."""
        return self._encode(entry, text, "target", entry.codec.encode_target)

    def _encode(self, entry: Entry, text: str, field: str, encode) -> Sequence:
        self._check_text(text, field)
        if entry.codec is None:
            raise invalid(field, f"{entry.id} ships no tokenizer: send token ids", "no_tokenizer")
        enc: Encoded = encode(text)
        # tokens the text itself gave (a special token typed in it, "[MASK]", counts);
        # none when the normaliser dropped everything
        if not any(t["start"] < t["end"] for t in enc.tokens):
            raise invalid(field, f"{field} has no tokens once normalised", "empty_text")
        self._check_length(entry, len(enc.ids), field)
        return Sequence(enc.ids, enc.tokens)

    def _check_text(self, text: str, field: str) -> None:
        """NUL (U+0000) is refused: never part of a sentence, often a sign of binary data. So
        is a lone UTF-16 surrogate (JSON "\\ud800"): no tokenizer can read it. Other control
        characters, emoji and right-to-left scripts are valid text."""
        if "\x00" in text:
            raise invalid(field, f"{field} contains a NUL character (U+0000)", "invalid_text")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise invalid(
                    field,
                    f"{field} is not valid Unicode: a lone surrogate "
                    f"U+{ord(text[exc.start]):04X} at character {exc.start}",
                    "invalid_text",
                ) from None
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise invalid(
                field, f"{field} has {len(text)} characters; the limit is {limit}", "text_too_long"
            )
        if not text.strip():
            raise invalid(field, f"{field} is empty or only whitespace", "empty_text")

    def _check_length(self, entry: Entry, n: int, field: str) -> None:
        limit = self.max_tokens(entry)
        if n > limit:
            raise invalid(
                field, f"{field} is {n} tokens long; the limit is {limit}", "too_many_tokens"
            )

    def ids(self, entry: Entry, ids: list[int], field: str) -> Sequence:
        """Token ids used exactly as given (nothing added), or a 422."""
        if not ids:
            raise invalid(field, f"{field} is empty")
        self._check_length(entry, len(ids), field)
        vocab = entry.config.vocab_size
        for k, i in enumerate(ids):
            if not 0 <= i < vocab:
                raise invalid(
                    f"{field}.{k}",
                    f"token id {i} is outside the vocabulary [0, {vocab})",
                    "out_of_range",
                )
        return Sequence(list(ids), entry.codec.ids_view(ids) if entry.codec else None)

    def source(self, entry: Entry, text: str | None, token_ids: list[int] | None) -> Sequence:
        if (text is None) == (token_ids is None):
            raise invalid("text", "give either text or token_ids (exactly one)", "exclusive_fields")
        return (
            self.text(entry, text) if text is not None else self.ids(entry, token_ids, "token_ids")
        )

    def target(
        self, entry: Entry, target: str | None, target_ids: list[int] | None
    ) -> Sequence | None:
        """seq2seq: the teacher-forced decoder input, if one is given."""
        if entry.config.kind != "seq2seq":
            for name, value in (("target", target), ("target_ids", target_ids)):
                if value is not None:
                    raise invalid(
                        name,
                        f"only seq2seq models take a {name}; {entry.id} is a {entry.config.kind}",
                        "unsupported_field",
                    )
            return None
        if target is not None and target_ids is not None:
            raise invalid(
                "target", "give either target or target_ids, not both", "exclusive_fields"
            )
        if target is not None:
            return self.target_text(entry, target)
        if target_ids is not None:
            return self.ids(entry, target_ids, "target_ids")
        return None

    # ------------------------------------------------------------------ indices
    @staticmethod
    def indices(values: list[int] | None, n: int, field: str, what: str) -> list[int]:
        """Layer / head indices: default all; each must be in [0, n); duplicates dropped."""
        if values is None:
            return list(range(n))
        for k, v in enumerate(values):
            if not 0 <= v < n:
                raise invalid(
                    f"{field}.{k}",
                    f"{what} index {v} is out of range: this model has {n} {what}s",
                    "out_of_range",
                )
        return list(dict.fromkeys(values))

    @staticmethod
    def index(value: int, n: int, field: str, what: str) -> int:
        if not 0 <= value < n:
            raise invalid(
                field, f"{field} must be a {what} index below {n}; got {value}", "out_of_range"
            )
        return value

    # ------------------------------------------------------------------ whole requests
    def attention(self, body) -> ModelInput:
        """POST /attention: model, source, target (seq2seq), layers and heads."""
        entry = self.model(body.model)
        source = self.source(entry, body.text, body.token_ids)
        target = self.target(entry, body.target, body.target_ids)
        depth = max(entry.config.sites.values())
        return ModelInput(
            entry,
            source,
            target,
            layers=self.indices(body.layers, depth, "layers", "layer"),
            heads=self.indices(body.heads, entry.config.n_heads, "heads", "head"),
        )

    def generation(self, body) -> ModelInput:
        """POST /generate and the stream: a decoder's prompt or a seq2seq source."""
        entry = self.model_of_kind(body.model, ("decoder", "seq2seq"), "generation")
        limit = self.settings.max_new_tokens
        if "max_new_tokens" not in body.model_fields_set:  # the default never exceeds it
            body.max_new_tokens = min(body.max_new_tokens, limit)
        if body.max_new_tokens > limit:
            raise invalid(
                "max_new_tokens", f"max_new_tokens is {body.max_new_tokens}; the limit is {limit}"
            )
        source = self.text(entry, body.text)
        if entry.config.kind == "decoder" and len(source.ids) >= entry.config.max_len:
            raise invalid(
                "text",
                f"the prompt leaves no room to generate (max_len {entry.config.max_len})",
                "too_many_tokens",
            )
        return ModelInput(entry, source)

    def fill_mask(self, body) -> ModelInput:
        entry = self.model_of_kind(body.model, ("encoder",), "fill-mask")
        source = self.text(entry, body.text)
        mask_id = entry.codec.mask_id
        if mask_id is None or mask_id not in source.ids:
            raise invalid("text", "text has no [MASK] token to fill", "no_mask")
        return ModelInput(entry, source)

    def classification(self, body) -> ModelInput:
        entry = self.model_of_kind(body.model, ("encoder",), "classify")
        if not entry.config.n_classes:
            raise invalid("model", f"{entry.id} has no classification head", "unsupported_task")
        return ModelInput(entry, self.text(entry, body.text))

    def positions(
        self, model_id: str, n: int | None, text: str | None
    ) -> tuple[Entry, int, Sequence | None]:
        """GET /models/{id}/positions: the model, how many positions, an optional sentence."""
        entry = self.model(model_id)
        max_len = entry.config.max_len
        n = min(64, max_len) if n is None else n
        if not 1 <= n <= max_len:
            raise invalid(
                "n", f"n must be between 1 and max_len={max_len}; got {n}", "out_of_range"
            )
        return entry, n, self.text(entry, text) if text is not None else None

    def rope_relative(self, body) -> ModelInput:
        """POST /rope/relative: one layer and head of the first stack, two token indices."""
        entry = self.model(body.model)
        cfg = entry.config
        source = self.text(entry, body.text)
        layer = self.index(body.layer, cfg.depth(cfg.stacks[0]), "layer", "layer")
        head = self.index(body.head, cfg.n_heads, "head", "head")
        for name in ("query", "key"):
            self.index(getattr(body, name), len(source.ids), name, "token")
        if body.max_position > cfg.max_len:
            raise invalid(
                "max_position", f"max_position must be ≤ max_len={cfg.max_len}", "out_of_range"
            )
        return ModelInput(entry, source, layers=[layer], heads=[head])


def get_inputs(registry: RegistryDep, settings: SettingsDep) -> Inputs:
    return Inputs(registry, settings)


InputsDep = Annotated[Inputs, Depends(get_inputs)]
