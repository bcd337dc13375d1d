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

from fastapi import Depends, Request

from app import memory
from app.config import Settings
from app.errors import ApiError, invalid
from app.registry import Entry, Registry
from app.tokenization import Encoded, chat_prompt
from models.analysis.ablation import HeadAblation, ablation_edits
from models.analysis.patching import SITES as PATCH_SITES
from models.analysis.patching import patch_bytes, site_groups
from models.analysis.scores import induction_probe

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
    "no_such_stack": "/block: the model has no stack of that name (a decoder has no encoder)",
    "no_snapshots": "404: the model was saved without training snapshots "
    "(`attnviz train <id> --snapshots N`)",
    "too_much_memory": "the request would hold more than the server's memory budget: the "
    "message says how many heads (or which pool) would fit",
    "length_mismatch": "/patch: clean and corrupted must be the same number of tokens (and a "
    "seq2seq target the same for both)",
    "not_one_token": "/patch: the metric's answer or wrong token is not one token of the "
    "vocabulary",
}


@dataclass(frozen=True)
class Sequence:
    """Token ids a stack reads, and how to show them (None: ids without a tokenizer)."""

    ids: list[int]
    tokens: list[dict] | None


@dataclass(frozen=True)
class Rows:
    """The attention rows a decoding step carries: these layers and heads, pooled or not."""

    layers: list[int]
    heads: list[int]
    pool: int | None


@dataclass
class ModelInput:
    entry: Entry
    source: Sequence  # the encoder's input, or a decoder's prompt
    target: Sequence | None = None  # seq2seq decoder input; None: the model's own translation
    layers: list[int] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)
    positions: list[int] | None = None  # positions of the predicting stack (None: its default)
    rows: Rows | None = None  # decoding: which attention rows each step carries (None: all)
    window: tuple[int, int] | None = None  # /attention: [start, stop) of the query rows
    ablate: tuple[HeadAblation, ...] = ()  # heads taken out of every forward pass
    chunk: int | None = None  # what memory planning allows: a sweep's batch, a lens's vocabulary

    @property
    def edits(self) -> dict | None:
        """The capture edits of the ablation (None: a clean forward pass)."""
        return ablation_edits(self.ablate) if self.ablate else None

    @property
    def predicting(self) -> str:
        """The stack whose states become tokens: the encoder (MLM) or the decoder."""
        return "encoder" if self.entry.config.kind == "encoder" else "decoder"

    @property
    def predicted(self) -> Sequence | None:
        """The sequence the predicting stack reads (None: a translation not yet decoded)."""
        return self.target if self.entry.config.kind == "seq2seq" else self.source


@dataclass
class PatchQuery:
    """POST /patch: two inputs of one length, the metric, the sites, and the batch size that
    fits the memory budget."""

    entry: Entry
    clean: Sequence
    corrupted: Sequence
    target: Sequence | None  # seq2seq: the same for both; None: the model's own translation
    kind: str
    head: str  # vocab | classifier
    answer: int | None  # None: the clean input's top token at the position
    wrong: int | None  # logit_diff; None: the corrupted input's top token (not the answer)
    position: int | None  # as given (negative from the end); None: the family's default
    sites: list[str]
    method: str
    raw: bool
    chunk: int


@dataclass
class BlockInput:
    """POST /block: the sentence, which block, and the other sentences of the comparison."""

    input: ModelInput
    stack: str
    layer: int
    batch: list[Sequence]  # each as the model's first stack reads it (a seq2seq: the source)
    batch_text: list[str]  # as the request gave them

    @property
    def reads_target(self) -> bool:
        """A seq2seq decoder block reads the target, not the sentence given."""
        return self.stack == "decoder" and self.input.entry.config.kind == "seq2seq"


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

    @staticmethod
    def transformer(entry: Entry, what: str) -> None:
        """422 for models that are not transformers (the RNN has no residual stream of
        blocks, no self-attention, no positions to rotate)."""
        architecture = entry.config.architecture
        if architecture != "transformer":
            raise invalid(
                "model",
                f"{what} reads a transformer's blocks; {entry.id} is an {architecture} "
                "(its one attention is decoder.cross: see /attention and /generate)",
                "unsupported_task",
            )

    @staticmethod
    def recurrent(entry: Entry, what: str, field: str = "model") -> None:
        """422 for models that are not RNNs (a transformer has no recurrence to unroll)."""
        architecture = entry.config.architecture
        if architecture != "rnn":
            raise invalid(
                field,
                f"{what} needs a recurrent network (architecture rnn); {entry.id} is a "
                f"{architecture}",
                "unsupported_task",
            )

    @staticmethod
    def vocabulary_head(entry: Entry, what: str, linear: bool = False) -> None:
        """422 unless the model maps states to tokens (``linear``: with no MLM transform)."""
        model = entry.model
        if model.lm_head is None:
            raise invalid(
                "model",
                f"{entry.id} has no vocabulary head (it was imported without one): {what} "
                "needs one; its attention is all there is to see",
                "unsupported_task",
            )
        if linear and model.mlm_transform is not None:
            raise invalid(
                "model",
                f"{what} needs a linear unembedding; {entry.id}'s MLM head starts with a "
                "nonlinear transform (dense + GELU + LayerNorm), so contributions do not add up",
                "unsupported_task",
            )

    def max_tokens(self, entry: Entry) -> int:
        return min(self.settings.max_input_tokens, entry.config.max_len)

    # ------------------------------------------------------------------ sequences
    def text(self, entry: Entry, text: str, field: str = "text") -> Sequence:
        """The sequence the model reads for ``text`` (its specials added), or a 422."""
        return self._encode(entry, text, field, entry.codec.encode_source)

    def chat(self, entry: Entry, text: str) -> Sequence:
        """``text`` as the user's question in the model's chat template (a 422 naming
        ``chat`` for a model without one)."""
        template = entry.card.get("chat_template")
        if not template:
            raise invalid(
                "chat", f"{entry.id} has no chat template (its card has none)", "unsupported_field"
            )
        self._check_text(text, "text")
        try:
            prompt = chat_prompt(template, text, entry.card.get("special_tokens"))
        except ValueError as e:
            raise invalid("chat", f"{entry.id}'s chat template failed: {e}") from None
        return self._encode(entry, prompt, "text", entry.codec.encode_chat)

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
        self.each_below(
            ids, vocab, field, lambda i: f"token id {i} is outside the vocabulary [0, {vocab})"
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

    @staticmethod
    def ablations(entry: Entry, ablate) -> tuple[HeadAblation, ...]:
        """The heads to ablate, each checked against the model (422 naming ablate.k.*)."""
        cfg, out = entry.config, []
        for k, a in enumerate(ablate or []):
            if a.site not in cfg.sites:
                raise invalid(
                    f"ablate.{k}.site",
                    f"{entry.id} has no {a.site} attention (it has {', '.join(cfg.sites)})",
                    "unsupported_field",
                )
            if a.layer >= cfg.sites[a.site]:
                raise invalid(
                    f"ablate.{k}.layer",
                    f"{a.site} has {cfg.sites[a.site]} layers; there is no layer {a.layer}",
                    "out_of_range",
                )
            if a.head >= cfg.n_heads:
                raise invalid(
                    f"ablate.{k}.head",
                    f"{entry.id} has {cfg.n_heads} heads; no head {a.head}",
                    "out_of_range",
                )
            out.append(HeadAblation(a.site, a.layer, a.head, a.mode))
        return tuple(dict.fromkeys(out))

    # ------------------------------------------------------------------ indices
    @staticmethod
    def indices(values: list[int] | None, n: int, field: str, what: str) -> list[int]:
        """Layer / head indices: default all; each must be in [0, n); duplicates dropped."""
        if values is None:
            return list(range(n))
        Inputs.each_below(
            values,
            n,
            field,
            lambda v: f"{what} index {v} is out of range: this model has {n} {what}s",
        )
        return list(dict.fromkeys(values))

    @staticmethod
    def each_below(values: list[int], n: int, field: str, message) -> None:
        """Every value in [0, n), else a 422 naming ``field.k`` with ``message(value)``."""
        for k, v in enumerate(values):
            if not 0 <= v < n:
                raise invalid(f"{field}.{k}", message(v), "out_of_range")

    @staticmethod
    def index(value: int, n: int, field: str, what: str) -> int:
        if not 0 <= value < n:
            raise invalid(
                field, f"{field} must be a {what} index below {n}; got {value}", "out_of_range"
            )
        return value

    # ------------------------------------------------------------------ whole requests
    def sequence(self, body) -> ModelInput:
        """Model, source (text or ids) and, for seq2seq, the target if one is given."""
        entry = self.model(body.model)
        source = self.source(entry, body.text, body.token_ids)
        target = self.target(entry, body.target, body.target_ids)
        ablate = self.ablations(entry, getattr(body, "ablate", None))
        return ModelInput(entry, source, target, ablate=ablate)

    def attention(self, body) -> ModelInput:
        """POST /attention: a sequence, layers and heads, within the memory budget."""
        inp = self.sequence(body)
        cfg = inp.entry.config
        inp.layers = self.indices(body.layers, max(cfg.sites.values()), "layers", "layer")
        inp.heads = self.indices(body.heads, cfg.n_heads, "heads", "head")
        window = body.query_window
        if window is not None:
            if window[0] >= window[1]:
                raise invalid(
                    "query_window",
                    "query_window is [start, stop) with start < stop",
                    "out_of_range",
                )
            if body.pool is not None:
                raise invalid(
                    "query_window", "a query window and pool do not combine", "unsupported_field"
                )
            longest = max(len(inp.source.ids), len(inp.target.ids) if inp.target else 0)
            if window[0] >= longest:
                raise invalid(
                    "query_window",
                    f"the input has {longest} tokens; the window starts after them",
                    "out_of_range",
                )
            inp.window = (window[0], window[1])
        if body.pool is not None:
            unpoolable = sorted(set(body.include) & {"scores", "masks", "qkv"})
            if unpoolable:
                raise invalid(
                    "pool",
                    f"pool reduces attention weights and norms; drop {', '.join(unpoolable)}",
                    "unsupported_field",
                )
        self._check_memory(inp, body)
        return inp

    def _check_memory(self, inp: ModelInput, body) -> None:
        """A 422 naming what to shrink (pool, heads or layers) when the request would need more
        than the memory budget, with what would fit."""
        cfg = inp.entry.config
        budget = memory.budget_bytes(self.settings)
        lengths = {"source": len(inp.source.ids)}
        if cfg.kind == "seq2seq":  # an undecoded translation: its longest possible length
            lengths["target"] = (
                len(inp.target.ids)
                if inp.target
                else min(self.settings.max_new_tokens + 1, cfg.max_len)
            )
        sites = {s: n for s, n in cfg.sites.items() if any(li < n for li in inp.layers)}
        shapes = {s: _site_shape(s, cfg.kind, lengths) for s in sites}
        if inp.window is not None:  # the answer holds the window's rows; the forward all
            rows = inp.window[1] - inp.window[0]
            answer_shapes = {s: (min(q, rows), k) for s, (q, k) in shapes.items()}
        else:
            answer_shapes = shapes
        forward = max(memory.attention_bytes(cfg, q, k) for q, k in shapes.values())
        per_head_layer = sum(
            _answer_floats(q, k, cfg.d_head, body.include, body.pool, body.weights) * 4
            for q, k in answer_shapes.values()
        )
        n_layers = len(inp.layers)
        need = forward + per_head_layer * len(inp.heads) * n_layers
        if need <= budget:
            return
        mb = need >> 20
        fit_heads = (budget - forward) // max(1, per_head_layer * n_layers)
        if forward >= budget:
            raise invalid(
                "text",
                f"{max(lengths.values())} tokens need {forward >> 20} MB for one layer's "
                f"attention alone (the budget is {budget >> 20} MB): send a shorter text",
                "too_much_memory",
            )
        if body.pool is not None or fit_heads < 1:
            field = "pool" if body.pool is not None else "layers"
            raise invalid(
                field,
                f"this request needs about {mb} MB (the budget is {budget >> 20} MB): ask for "
                "fewer layers, or pool the matrices to fewer blocks",
                "too_much_memory",
            )
        raise invalid(
            "heads",
            f"{len(inp.heads)} heads × {n_layers} layers need about {mb} MB (the budget is "
            f"{budget >> 20} MB): ask for at most {fit_heads} heads at a time with these "
            "layers, or set pool (e.g. 64) for thumbnails",
            "too_much_memory",
        )

    def _predicted_positions(self, inp: ModelInput, positions: list[int] | None, field: str):
        """Positions of the predicting stack: checked against its length; an encoder's
        default is its [MASK] positions (it predicts nothing elsewhere)."""
        seq = inp.predicted
        if positions is not None:
            if seq is None:
                raise invalid(
                    field,
                    f"{field} needs a target: a translation's positions are only known once "
                    "it is decoded (send target or target_ids)",
                    "unsupported_field",
                )
            for k, p in enumerate(positions):
                if not -len(seq.ids) <= p < len(seq.ids):
                    raise invalid(
                        f"{field}.{k}",
                        f"position {p} is outside the {len(seq.ids)} tokens",
                        "out_of_range",
                    )
            return [p % len(seq.ids) for p in positions]
        if inp.entry.config.kind == "encoder":
            masks = [k for k, i in enumerate(seq.ids) if i == inp.entry.codec.mask_id]
            if not masks:
                raise invalid(
                    "text",
                    "an encoder predicts only at [MASK] tokens: put one in the text",
                    "no_mask",
                )
            return masks
        return None

    def logit_lens(self, body) -> ModelInput:
        inp = self.sequence(body)
        self.transformer(inp.entry, "the logit lens")
        self.vocabulary_head(inp.entry, "the logit lens")
        inp.positions = self._predicted_positions(inp, body.positions, "positions")
        cfg, tokens = inp.entry.config, self._longest(inp)
        shown = len(inp.positions) if inp.positions is not None else tokens
        layers = cfg.depth(inp.predicting) + 1
        inp.chunk = memory.largest_chunk(
            memory.forward_bytes(cfg, tokens) + layers * tokens * cfg.d_model * memory.FLOAT,
            3 * shown * memory.FLOAT,  # a chunk's scores, and log-sum-exp's temporaries
            memory.budget_bytes(self.settings),
            cfg.vocab_size,
            "text",
            f"the logit lens on {tokens} tokens",
            "send a shorter text",
        )
        return inp

    def attribution(self, body) -> ModelInput:
        """POST /attribution: one position, a token id, and optionally one head to split."""
        inp = self.sequence(body)
        cfg = inp.entry.config
        self.transformer(inp.entry, "direct logit attribution")
        self.vocabulary_head(inp.entry, "direct logit attribution", linear=True)
        given = None if body.position is None else [body.position]
        positions = self._predicted_positions(inp, given, "position")
        inp.positions = [positions[0]] if positions else [-1]
        if body.token is not None and body.token >= cfg.vocab_size:
            raise invalid(
                "token",
                f"token id {body.token} is outside the vocabulary [0, {cfg.vocab_size})",
                "out_of_range",
            )
        if body.head is not None:
            site = body.head.site
            if not site.startswith(inp.predicting) or site not in cfg.sites:
                readable = ", ".join(s for s in cfg.sites if s.startswith(inp.predicting))
                raise invalid(
                    "head.site",
                    f"{site} does not feed the prediction here; use {readable}",
                    "unsupported_field",
                )
            self.index(body.head.layer, cfg.sites[site], "head.layer", "layer")
            self.index(body.head.head, cfg.n_heads, "head.head", "head")
        memory.check_forward(self.settings, cfg, self._longest(inp), "direct logit attribution")
        return inp

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
        if body.chat:  # the text as the user's message in the model's chat template
            if body.text is None or body.token_ids is not None:
                raise invalid(
                    "chat", "chat renders text (not token_ids) through the chat template",
                    "unsupported_field",
                )  # fmt: skip
            source = self.chat(entry, body.text)
        else:
            source = self.source(entry, body.text, body.token_ids)
        target = self.target(entry, None, body.target_ids)
        cfg = entry.config
        # what the decoding continues: a decoder's prompt, or a seq2seq target given as ids
        if target is not None:
            start, field = target, "target_ids"
        else:
            start, field = source, "text" if body.text is not None else "token_ids"
        if (cfg.kind == "decoder" or target is not None) and len(start.ids) >= cfg.max_len:
            raise invalid(
                field,
                f"the prompt leaves no room to generate (max_len {cfg.max_len})",
                "too_many_tokens",
            )
        rows = None
        pool = body.pool
        context = len(source.ids) + len(target.ids if target else ()) + body.max_new_tokens
        picked = body.layers is not None or body.heads is not None
        if pool is None and not picked and context > self.settings.stream_full_rows_tokens:
            pool = 64
        if picked or pool is not None:
            rows = Rows(
                self.indices(body.layers, cfg.depth("decoder"), "layers", "layer"),
                self.indices(body.heads, cfg.n_heads, "heads", "head"),
                pool,
            )
        memory.check_forward(self.settings, cfg, context, "decoding")
        return ModelInput(
            entry, source, target, rows=rows, ablate=self.ablations(entry, body.ablate)
        )

    def fill_mask(self, body) -> ModelInput:
        entry = self.model_of_kind(body.model, ("encoder",), "fill-mask")
        self.vocabulary_head(entry, "fill-mask")
        source = self.text(entry, body.text)
        mask_id = entry.codec.mask_id
        if mask_id is None or mask_id not in source.ids:
            raise invalid("text", "text has no [MASK] token to fill", "no_mask")
        return ModelInput(entry, source, ablate=self.ablations(entry, body.ablate))

    def classification(self, body) -> ModelInput:
        entry = self.model_of_kind(body.model, ("encoder",), "classify")
        if not entry.config.n_classes:
            raise invalid("model", f"{entry.id} has no classification head", "unsupported_task")
        source = self.text(entry, body.text)
        return ModelInput(entry, source, ablate=self.ablations(entry, body.ablate))

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

    def head_scores(self, body) -> ModelInput:
        """POST /heads/scores: the text (or ids) given, else the induction probe built from
        the seed: BOS + a run of distinct random tokens, repeated."""
        entry = self.model(body.model)
        if body.text is not None or body.token_ids is not None:
            inp = self.sequence(body)
            inp.positions = self._importance_positions(inp)
            return self._plan_head_scores(inp, body, "text")
        for name in ("target", "target_ids"):
            if getattr(body, name) is not None:
                raise invalid(
                    name,
                    f"{name} goes with text or token_ids, not with the probe",
                    "unsupported_field",
                )
        probe = self.probe(entry, body.seed, body.run_length)
        return self._plan_head_scores(probe, body, "run_length")

    def probe(self, entry: Entry, seed: int, run_length: int) -> ModelInput:
        """The induction probe of ``seed``: a run of ``run_length`` distinct random
        non-special tokens, twice, framed as the model reads it."""
        cfg, codec = entry.config, entry.codec
        framing = 2 if cfg.kind != "decoder" else 1  # [CLS] … [SEP], BOS …, … </s>
        need = 2 * run_length + framing
        if need > self.max_tokens(entry):
            raise invalid(
                "run_length",
                f"the probe would be {need} tokens; {entry.id} reads at most "
                f"{self.max_tokens(entry)}: use run_length ≤ {(self.max_tokens(entry) - framing) // 2}",
                "too_many_tokens",
            )
        specials = sorted(codec.special_ids) if codec else []
        if cfg.vocab_size - len(specials) < run_length:
            raise invalid(
                "run_length",
                f"the vocabulary has fewer than {run_length} tokens",
                "out_of_range",
            )
        run = induction_probe(run_length, cfg.vocab_size, seed=seed, exclude=specials)
        run = run[0].tolist()
        if cfg.kind == "encoder":
            cls, sep = codec.cls_id if codec else None, codec.sep_id if codec else None
            source = [
                *([cls] if cls is not None else []),
                *run,
                *([sep] if sep is not None else []),
            ]
            return ModelInput(entry, self.ids(entry, source, "run_length"))
        bos = [cfg.bos_id] if cfg.bos_id is not None else []  # (a GGUF import may have none)
        if cfg.kind == "decoder":
            probe = ModelInput(entry, self.ids(entry, [*bos, *run], "run_length"))
        else:
            source = self.ids(entry, [*run, cfg.eos_id], "run_length")
            probe = ModelInput(entry, source, self.ids(entry, [*bos, *run], "run_length"))
        return probe

    def _plan_head_scores(self, inp: ModelInput, body, field: str) -> ModelInput:
        """Every layer's patterns are kept for the scores (one layer at a time in float64);
        the importance sweep then runs in batches as large as the budget allows."""
        cfg, tokens = inp.entry.config, self._longest(inp)
        budget = memory.budget_bytes(self.settings)
        layers = sum(cfg.sites.values())
        wanted = body.scores or ["importance", "entropy"]  # no scores named: all of them
        if set(wanted) - {"importance"}:
            memory.require(
                memory.forward_bytes(cfg, tokens)
                + memory.patterns_bytes(cfg, tokens, tokens, layers)
                + memory.patterns_bytes(cfg, tokens, tokens, 2),
                budget,
                field,
                f"the scores of {layers} layers × {cfg.n_heads} heads on {tokens} tokens",
                "send a shorter text",
            )
        approximate = getattr(body, "importance_method", "exact") == "attribution_patching"
        if approximate and "importance" in wanted and cfg.architecture != "transformer":
            raise invalid(
                "importance_method",
                f"attribution patching follows a transformer's residual stream; {inp.entry.id} "
                f"is an {cfg.architecture}: use importance_method exact",
                "unsupported_field",
            )
        if "importance" in wanted and getattr(cfg, "lm_head", False) and approximate:
            memory.require(  # the backward pass keeps every layer's activations
                layers * memory.forward_bytes(cfg, tokens, logits=False)
                + 3 * memory.logits_bytes(cfg, tokens),
                budget,
                field,
                f"attribution patching on {tokens} tokens",
                "send a shorter text",
            )
        elif "importance" in wanted and getattr(cfg, "lm_head", False):
            shown = len(inp.positions) if inp.positions is not None else tokens
            inp.chunk = memory.largest_chunk(
                2 * memory.logits_bytes(cfg, tokens)  # the clean run's log-probabilities
                + layers * tokens * cfg.d_model * memory.FLOAT,  # and its stream per layer
                # a batch's forward pass and (seq2seq) its logits; one stack reads the
                # vocabulary in chunks at the predicted positions (importance._log_prob_of)
                memory.forward_bytes(cfg, tokens, logits=cfg.kind == "seq2seq")
                + memory.logits_bytes(cfg, shown),
                budget,
                32,
                "scores",
                f"the importance sweep on {tokens} tokens",
                "leave importance out of scores, or send a shorter text",
            )
        return inp

    def _longest(self, inp: ModelInput) -> int:
        """The longest sequence a forward pass of ``inp`` reads (an undecoded translation: the
        longest it may become)."""
        if inp.entry.config.kind != "seq2seq":
            return len(inp.source.ids)
        target = len(inp.target.ids) if inp.target else self.settings.max_new_tokens + 1
        return max(len(inp.source.ids), target)

    @staticmethod
    def _importance_positions(inp: ModelInput) -> list[int] | None:
        """An encoder is judged at its [MASK] tokens when it has some; else every position."""
        codec = inp.entry.codec
        if inp.entry.config.kind != "encoder" or codec is None or codec.mask_id is None:
            return None
        masks = [k for k, i in enumerate(inp.source.ids) if i == codec.mask_id]
        return masks or None

    def unroll(self, body) -> tuple[ModelInput, Entry | None]:
        """POST /rnn/unroll: an RNN's sequence, and the RNN to compare gradients with, which
        must read the same token ids the same way (the same vocabulary)."""
        inp = self.sequence(body)
        self.recurrent(inp.entry, "/rnn/unroll")
        if body.compare is None:
            return inp, None
        other = self.model(body.compare, field="compare")
        self.recurrent(other, "the gradient comparison", field="compare")
        if not _same_vocabulary(inp.entry, other):
            raise invalid(
                "compare",
                f"{other.id} does not share {inp.entry.id}'s vocabulary: the same token ids "
                "would not be the same sentence",
            )
        return inp, other

    def rollout(self, body) -> ModelInput:
        """POST /rollout: a transformer (rollout multiplies self-attention through layers)."""
        inp = self.sequence(body)
        self.transformer(inp.entry, "attention rollout")
        cfg, tokens = inp.entry.config, self._longest(inp)
        layers = sum(n for s, n in cfg.sites.items() if s.endswith(".self"))
        memory.require(
            memory.forward_bytes(cfg, tokens)
            + memory.patterns_bytes(cfg, tokens, tokens, layers)
            + 4 * layers * tokens * tokens * memory.FLOAT,  # the rollout, in float64, twice
            memory.budget_bytes(self.settings),
            "text",
            f"attention rollout of {layers} layers on {tokens} tokens",
            "send a shorter text",
        )
        return inp

    def block(self, body) -> BlockInput:
        """POST /block: a sequence, one block of a transformer's stack (422 naming ``stack`` or
        ``layer``), and up to a few other sentences (422 naming ``batch.k``)."""
        inp = self.sequence(body)
        entry = inp.entry
        self.transformer(entry, "/block")
        cfg = entry.config
        stack = body.stack or cfg.stacks[0]
        if stack not in cfg.stacks:
            raise invalid(
                "stack",
                f"{entry.id} has no {stack} stack (it has {', '.join(cfg.stacks)})",
                "no_such_stack",
            )
        layer = self.index(body.layer, cfg.depth(stack), "layer", "layer")
        batch = [self.text(entry, text, f"batch.{k}") for k, text in enumerate(body.batch)]
        longest = max([self._longest(inp), *(len(b.ids) for b in batch)])
        memory.check_forward(self.settings, cfg, longest, "/block", batch=1 + len(batch))
        return BlockInput(inp, stack, layer, batch, list(body.batch))

    def rope_relative(self, body) -> ModelInput:
        """POST /rope/relative: one layer and head of the first stack, two token indices."""
        entry = self.model(body.model)
        self.transformer(entry, "/rope/relative")
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

    def snapshots(
        self,
        model_id: str,
        seed: int,
        run_length: int,
        step: int | None = None,
        layer: int | None = None,
        head: int | None = None,
    ) -> ModelInput:
        """GET /models/{id}/snapshots[/{step}/attention]: a model saved with training
        snapshots (else 404), one of their steps, a layer and head, and the probe."""
        entry = self.model(model_id, "model_id")
        if entry.snapshots is None:
            raise ApiError(
                404,
                f"{entry.id} was saved without training snapshots (attnviz train --snapshots N)",
                field="model_id",
                code="no_snapshots",
            )
        if step is not None:
            steps = [s["step"] for s in entry.snapshots["snapshots"]]
            if step not in steps:
                raise invalid(
                    "step",
                    f"no snapshot at step {step}; the snapshots are at steps "
                    + ", ".join(map(str, steps)),
                    "out_of_range",
                )
        inp = self.probe(entry, seed, run_length)
        cfg = entry.config
        if layer is not None:
            inp.layers = [self.index(layer, cfg.depth("decoder"), "layer", "layer")]
        if head is not None:
            inp.heads = [self.index(head, cfg.n_heads, "head", "head")]
        return inp

    def patch(self, body) -> PatchQuery:
        """POST /patch: both inputs resolved (each 422 names clean.* or corrupted.*), of one
        length; the metric's tokens; the sites the model has; a batch that fits the budget."""
        entry = self.model(body.model)
        cfg = entry.config
        metric = body.metric
        if metric.head == "classifier":
            if not cfg.n_classes:
                raise invalid(
                    "metric.head", f"{entry.id} has no classification head", "unsupported_task"
                )
            if metric.position not in (None, 0):
                raise invalid(
                    "metric.position",
                    "the classification head reads position 0 ([CLS])",
                    "out_of_range",
                )
        else:
            self.vocabulary_head(entry, "patching's metric")
        clean, corrupted = self._patch_pair(entry, body)
        target = self._patch_target(entry, body)
        pick = self._label if metric.head == "classifier" else self._one_token
        answer = None if metric.answer is None else pick(entry, metric.answer, "metric.answer")
        wrong = None
        if metric.kind == "logit_diff" and metric.wrong is not None:
            wrong = pick(entry, metric.wrong, "metric.wrong")
        position = body.metric.position
        predicted = target if cfg.kind == "seq2seq" else clean
        if position is not None and predicted is not None:
            n = len(predicted.ids)
            if not -n <= position < n:
                raise invalid(
                    "metric.position",
                    f"position {position} is outside the {n} tokens",
                    "out_of_range",
                )
        if position is None and cfg.kind == "encoder" and metric.head == "vocab":
            mask = entry.codec.mask_id if entry.codec else None
            if mask is None or mask not in clean.ids:
                raise invalid(
                    "clean.text",
                    "an encoder predicts at a [MASK]: put one in the text, or give metric.position",
                    "no_mask",
                )
        sites = list(body.sites or PATCH_SITES)
        if body.sites is not None:
            for k, site in enumerate(sites):
                _, reason = site_groups(cfg, site)
                if reason:
                    raise invalid(
                        f"sites.{k}", f"{entry.id} has no {site}: {reason}", "unsupported_field"
                    )
        n_target = None
        if cfg.kind == "seq2seq":
            n_target = (
                len(target.ids) if target else min(self.settings.max_new_tokens + 1, cfg.max_len)
            )
        return PatchQuery(
            entry=entry,
            clean=clean,
            corrupted=corrupted,
            target=target,
            kind=metric.kind,
            head=metric.head,
            answer=answer,
            wrong=wrong,
            position=position,
            sites=list(dict.fromkeys(sites)),
            method=body.method,
            raw=body.raw,
            chunk=self._patch_chunk(
                entry,
                len(clean.ids),
                n_target,
                "clean.text" if body.clean.text is not None else "clean.token_ids",
            ),
        )

    def _patch_pair(self, entry: Entry, body) -> tuple[Sequence, Sequence]:
        """/patch: the clean and corrupted sequences, of one length (422 length_mismatch)."""
        seqs = {}
        for name in ("clean", "corrupted"):
            part = getattr(body, name)
            if (part.text is None) == (part.token_ids is None):
                raise invalid(
                    f"{name}.text",
                    "give either text or token_ids (exactly one)",
                    "exclusive_fields",
                )
            seqs[name] = (
                self.text(entry, part.text, f"{name}.text")
                if part.text is not None
                else self.ids(entry, part.token_ids, f"{name}.token_ids")
            )
        clean, corrupted = seqs["clean"], seqs["corrupted"]
        if len(clean.ids) != len(corrupted.ids):
            given = "text" if body.corrupted.text is not None else "token_ids"
            raise invalid(
                f"corrupted.{given}",
                f"corrupted is {len(corrupted.ids)} tokens and clean {len(clean.ids)}: patching "
                "writes one run's activation into the other position by position, so they must "
                "be the same length",
                "length_mismatch",
            )
        return clean, corrupted

    def _patch_target(self, entry: Entry, body) -> Sequence | None:
        """seq2seq: the teacher-forced target, given on either input (identically on both)."""
        targets = {}
        for name in ("clean", "corrupted"):
            part = getattr(body, name)
            for key in ("target", "target_ids"):
                if getattr(part, key) is not None and entry.config.kind != "seq2seq":
                    raise invalid(
                        f"{name}.{key}",
                        f"only seq2seq models take a {key}; {entry.id} is a {entry.config.kind}",
                        "unsupported_field",
                    )
            if part.target is not None and part.target_ids is not None:
                raise invalid(
                    f"{name}.target",
                    "give either target or target_ids, not both",
                    "exclusive_fields",
                )
            if part.target is not None:
                targets[name] = self._encode(
                    entry, part.target, f"{name}.target", lambda t: entry.codec.encode_target(t)
                )
            elif part.target_ids is not None:
                targets[name] = self.ids(entry, part.target_ids, f"{name}.target_ids")
        if len(targets) == 2 and targets["clean"].ids != targets["corrupted"].ids:
            raise invalid(
                "corrupted.target",
                "the teacher-forced target must be the same for both inputs (only the source "
                "differs)",
                "length_mismatch",
            )
        return targets.get("clean") or targets.get("corrupted")

    @staticmethod
    def _label(entry: Entry, label, field: str) -> int:
        """A class of the classification head: its label or its index."""
        labels, n = entry.config.labels, entry.config.n_classes
        if isinstance(label, int) and label < n:
            return label
        if isinstance(label, str) and label in labels:
            return labels.index(label)
        raise invalid(
            field,
            f"{label!r} is not a class of {entry.id}'s classifier "
            f"({', '.join(labels) or f'indices 0–{n - 1}'})",
            "out_of_range",
        )

    @staticmethod
    def _one_token(entry: Entry, token, field: str) -> int:
        """An id, or a string the tokenizer reads as one token, or a vocabulary piece."""
        vocab = entry.config.vocab_size
        if isinstance(token, int):
            if token >= vocab:
                raise invalid(
                    field,
                    f"token id {token} is outside the vocabulary [0, {vocab})",
                    "out_of_range",
                )
            return token
        tokenizer = entry.tokenizer
        if tokenizer is None:
            raise invalid(field, f"{entry.id} ships no tokenizer: give a token id", "no_tokenizer")
        ids = tokenizer.encode(token, add_special_tokens=False).ids
        if len(ids) == 1:
            return ids[0]
        piece = tokenizer.token_to_id(token)
        if piece is not None:
            return piece
        pieces = [tokenizer.id_to_token(i) for i in ids]
        raise invalid(
            field,
            f"{token!r} is {len(ids)} tokens ({', '.join(map(repr, pieces))}), not one: give a "
            "single token or its id",
            "not_one_token",
        )

    def _patch_chunk(
        self, entry: Entry, n_source: int, n_target: int | None, field: str = "clean.text"
    ) -> int:
        """Rows per patched batch within ATTNVIZ_MEMORY_BUDGET_MB, or a 422 when the two runs'
        activations and one patched row do not fit."""
        fixed, per_row = patch_bytes(entry.config, n_source, n_target)
        return memory.largest_chunk(
            fixed,
            per_row,
            memory.budget_bytes(self.settings),
            256,
            field,
            f"patching {n_source} tokens",
            "send shorter inputs",
        )


def _same_vocabulary(a: Entry, b: Entry) -> bool:
    ca, cb = a.config, b.config
    if (ca.vocab_size, ca.bos_id, ca.eos_id) != (cb.vocab_size, cb.bos_id, cb.eos_id):
        return False
    if a.tokenizer is None or b.tokenizer is None:
        return a.tokenizer is b.tokenizer
    return a.tokenizer.get_vocab() == b.tokenizer.get_vocab()


def _site_shape(site: str, kind: str, lengths: dict[str, int]) -> tuple[int, int]:
    """(queries, keys) of a site's attention matrices."""
    src, tgt = lengths["source"], lengths.get("target", lengths["source"])
    if kind != "seq2seq":
        return src, src
    return {"encoder.self": (src, src), "decoder.self": (tgt, tgt), "decoder.cross": (tgt, src)}[
        site
    ]


def _answer_floats(
    q: int, k: int, d_head: int, include, pool: int | None, weights: bool = True
) -> int:
    """Floats one head of one layer adds to an answer (before serialising)."""
    if pool is not None:
        q, k = min(q, pool), min(k, pool)
    matrices = int(weights) + ("scores" in include) + ("norms" in include)
    vectors = 7 * (q + k) * d_head if "qkv" in include else 0
    return 3 * matrices * q * k + vectors  # ×3: the stacked copy and the rounded copy


async def get_inputs(request: Request) -> Inputs:
    """The app's one Inputs (made in its lifespan: it holds nothing per request). One level
    of dependency: FastAPI solves every nested one again on each request."""
    return request.app.state.inputs


InputsDep = Annotated[Inputs, Depends(get_inputs)]
