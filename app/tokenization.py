"""From the user's text to the ids a model sees, and back to text a student can read.

Each family frames its input differently (ids come from the checkpoint's config and
tokenizer, never hard-coded):

* encoder:  [CLS] text [SEP]            (the WordPiece post-processor adds them)
* decoder:  BOS text                    (BOS = the config's bos_id, e.g. <|endoftext|>)
* seq2seq:  text </s>  -> the encoder;  <s> target -> the decoder

A token's ``text`` is the slice of the user's text its character offsets cover, so the
byte-level "Ġ" marker never shows; special tokens show their own name and have
``special: true``. A piece that holds only part of a multi-byte character (byte-level BPE cuts
"é" into two ids) shows its bytes, ``<0xC3>`` ``<0xA9>``, never "�": two ids never read alike.
Nothing here knows about HTTP: app/inputs.py checks what users send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from models.config import ModelConfig

BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")  # SentencePiece's byte fallback: "<0xE2>"


@cache
def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet inverted: the printable character that stands for each
    byte ("Ġ" for a space, "Ã" for 0xC3) -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def show_bytes(data: bytes) -> str:
    """UTF-8 text where it decodes; each byte that does not, as <0xNN>."""
    text = data.decode("utf-8", errors="surrogateescape")
    return re.sub(r"[\udc80-\udcff]", lambda m: f"<0x{ord(m.group()) - 0xDC00:02X}>", text)


@dataclass
class Encoded:
    ids: list[int]
    tokens: list[dict]  # {id, text, start, end, special}


class TextCodec:
    """A model's tokenizer framed for its family: text -> input ids, ids -> readable tokens."""

    def __init__(
        self, tokenizer: Any, config: ModelConfig, special_tokens: dict[str, str] | None = None
    ) -> None:
        self.tokenizer = tokenizer
        self.config = config
        # an imported checkpoint's names for its specials (RoBERTa's mask is "<mask>")
        self.names = special_tokens or {}
        self._texts: dict[int, str] = {}  # token id -> token_text (at most the vocabulary)
        self._partial: set[int] = set()  # ids shown as bytes (part of a character)

    # ---------------------------------------------------------------- special tokens
    def _id(self, role: str, *names: str) -> int | None:
        """The id of the special token of ``role`` (e.g. "mask_token"): the checkpoint's own
        name for it, else the usual names."""
        for name in (self.names.get(role), *names):
            if name is None:
                continue
            i = self.tokenizer.token_to_id(name)
            if i is not None:
                return i
        return None

    @cached_property
    def special_ids(self) -> frozenset[int]:
        ids = {i for i, t in self.tokenizer.get_added_tokens_decoder().items() if t.special}
        ids |= {i for i in (self.config.bos_id, self.config.eos_id) if i is not None}
        ids.discard(self.unk_id)  # [UNK] stands for some of the user's text
        return frozenset(ids)

    @cached_property
    def unk_id(self) -> int | None:
        return self._id("unk_token", "[UNK]", "<unk>")

    @cached_property
    def cls_id(self) -> int | None:
        return self._id("cls_token", "[CLS]")

    @cached_property
    def sep_id(self) -> int | None:
        return self._id("sep_token", "[SEP]")

    @cached_property
    def mask_id(self) -> int | None:
        return self._id("mask_token", "[MASK]")

    # ---------------------------------------------------------------- views
    def token_text(self, token_id: int) -> str:
        """Readable text of one token id (for generated or predicted tokens)."""
        text = self._texts.get(token_id)
        if text is None:  # a decode per id costs ~10 µs: remembered, per codec
            if token_id in self.special_ids:
                text = self.tokenizer.id_to_token(token_id) or ""
            else:
                text = self.tokenizer.decode([token_id], skip_special_tokens=False)
                text = text or self.tokenizer.id_to_token(token_id) or ""
                shown = self._bytes_of(token_id) if "\ufffd" in text else None
                if shown:
                    text = shown
                    self._partial.add(token_id)
            self._texts[token_id] = text
        return text

    def _bytes_of(self, token_id: int) -> str | None:
        """A piece that decodes to "�" written as its bytes (None: it is no byte piece)."""
        piece = self.piece(token_id)
        if BYTE_PIECE.match(piece):
            return piece.upper().replace("0X", "0x")
        alphabet = byte_level_alphabet()
        if type(self.tokenizer.decoder).__name__ != "ByteLevel" or not piece:
            return None
        if any(c not in alphabet for c in piece):
            return None
        return show_bytes(bytes(alphabet[c] for c in piece))

    def partial_character(self, token_id: int) -> bool:
        """True when the id holds only part of a character (its text names bytes)."""
        self.token_text(token_id)
        return token_id in self._partial

    def piece(self, token_id: int) -> str:
        """The vocabulary entry as the tokenizer stores it ("Ġcat", "▁chat", "##ing")."""
        return self.tokenizer.id_to_token(token_id) or ""

    def special_token(self, token_id: int, at: int) -> dict:
        return {
            "id": token_id,
            "text": self.tokenizer.id_to_token(token_id) or "",
            "start": at,
            "end": at,
            "special": True,
        }

    def ids_view(self, ids: list[int]) -> list[dict]:
        """Tokens given as ids (no user text): offsets are null."""
        return [
            {
                "id": i,
                "text": self.token_text(i),
                "start": None,
                "end": None,
                "special": i in self.special_ids,
            }
            for i in ids
        ]

    def _encode(self, text: str, add_special_tokens: bool) -> Encoded:
        enc = self.tokenizer.encode(text, add_special_tokens=add_special_tokens)
        tokens = []
        for i, (start, end) in zip(enc.ids, enc.offsets, strict=True):
            if i in self.special_ids and not text[start:end]:
                tokens.append(self.special_token(i, start))
                continue
            piece = text[start:end]
            stripped = piece.strip()
            if stripped and stripped != piece:  # "▁cat" / "Ġcat" offsets may cover the space
                start += len(piece) - len(piece.lstrip())
                end -= len(piece) - len(piece.rstrip())
                piece = stripped
            if self.partial_character(i):  # offsets cover the whole character: name the bytes
                piece = self.token_text(i).strip()
            tokens.append(
                {
                    "id": i,
                    "text": piece if piece else self.token_text(i),
                    "start": start,
                    "end": end,
                    "special": i in self.special_ids,
                }
            )
        return Encoded(list(enc.ids), tokens)

    # ---------------------------------------------------------------- model inputs
    def encode_source(self, text: str) -> Encoded:
        """The sequence the encoder (or, for a decoder, the decoder) reads for ``text``."""
        enc = self._encode(text, add_special_tokens=True)
        kind = self.config.kind
        if kind == "encoder":
            if self.cls_id is not None and (not enc.ids or enc.ids[0] != self.cls_id):
                enc.ids.insert(0, self.cls_id)
                enc.tokens.insert(0, self.special_token(self.cls_id, 0))
            if self.sep_id is not None and enc.ids[-1] != self.sep_id:
                enc.ids.append(self.sep_id)
                enc.tokens.append(self.special_token(self.sep_id, len(text)))
        elif kind == "decoder":
            bos = self.config.bos_id
            if bos is not None and (not enc.ids or enc.ids[0] != bos):
                enc.ids.insert(0, bos)
                enc.tokens.insert(0, self.special_token(bos, 0))
        else:  # seq2seq source: text </s>
            eos = self.config.eos_id
            if eos is not None and (not enc.ids or enc.ids[-1] != eos):
                enc.ids.append(eos)
                enc.tokens.append(self.special_token(eos, len(text)))
        return enc

    def encode_chat(self, prompt: str) -> Encoded:
        """A rendered chat template, as it is: the template writes every special token
        itself (transformers encodes it so too, without the post-processor's)."""
        return self._encode(prompt, add_special_tokens=False)

    def encode_target(self, text: str) -> Encoded:
        """seq2seq decoder input for a given target: <s> target (teacher forcing)."""
        enc = self._encode(text, add_special_tokens=False)
        # drop specials a post-processor may add, then frame with BOS
        keep = [
            k for k, t in enumerate(enc.tokens) if not (t["special"] and t["start"] == t["end"])
        ]
        ids = [enc.ids[k] for k in keep]
        tokens = [enc.tokens[k] for k in keep]
        bos = self.config.bos_id
        if bos is not None:
            ids.insert(0, bos)
            tokens.insert(0, self.special_token(bos, 0))
        return Encoded(ids, tokens)


def chat_prompt(template: str, question: str, special_tokens: dict | None = None) -> str:
    """A chat template (Jinja, as Hugging Face and llama.cpp store it) rendered for one user
    message with the assistant's turn opened, as transformers' apply_chat_template does
    (the same environment options; the special tokens, e.g. ``bos_token``, by name).
    Sandboxed: a template cannot reach Python."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )

    def raise_exception(message):  # what Hugging Face's templates call on a bad conversation
        raise TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=[{"role": "user", "content": question}],
            add_generation_prompt=True,
            **{"bos_token": "", "eos_token": "", **(special_tokens or {})},
        )
    except TemplateError as e:
        raise ValueError(str(e)) from None
