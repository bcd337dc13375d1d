"""From the user's text to the ids a model sees, and back to text a student can read.

Each family frames its input differently (ids come from the checkpoint's config and
tokenizer, never hard-coded):

* encoder:  [CLS] text [SEP]            (the WordPiece post-processor adds them)
* decoder:  BOS text                    (BOS = the config's bos_id, e.g. <|endoftext|>)
* seq2seq:  text </s>  -> the encoder;  <s> target -> the decoder

A token's ``text`` is the slice of the user's text its character offsets cover, so the
byte-level "Ġ" marker never shows; special tokens show their own name and have
``special: true``. The text checks here are the 422s every text-taking endpoint shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from app.errors import invalid
from models.config import ModelConfig


@dataclass
class Encoded:
    ids: list[int]
    tokens: list[dict]  # {id, text, start, end, special}


class TokenizerView:
    def __init__(self, tokenizer: Any, config: ModelConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config

    # ---------------------------------------------------------------- special tokens
    def _id(self, *names: str) -> int | None:
        for name in names:
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
        return self._id("[UNK]", "<unk>")

    @cached_property
    def cls_id(self) -> int | None:
        return self._id("[CLS]")

    @cached_property
    def sep_id(self) -> int | None:
        return self._id("[SEP]")

    @cached_property
    def mask_id(self) -> int | None:
        return self._id("[MASK]")

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    # ---------------------------------------------------------------- views
    def token_text(self, token_id: int) -> str:
        """Readable text of one token id (for generated or predicted tokens)."""
        if token_id in self.special_ids:
            return self.tokenizer.id_to_token(token_id) or ""
        text = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return text if text else (self.tokenizer.id_to_token(token_id) or "")

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


# -------------------------------------------------------------------- shared checks
def check_text(text: str, max_chars: int, field: str = "text") -> None:
    """422s before tokenizing: NUL, too many characters, nothing but whitespace.

    NUL (U+0000) is refused: it is never part of a sentence and often a sign of binary data.
    Other control characters, emoji and right-to-left scripts are valid text.
    """
    if "\x00" in text:
        raise invalid(field, f"{field} contains a NUL character (U+0000)", "invalid_text")
    if len(text) > max_chars:
        raise invalid(
            field, f"{field} has {len(text)} characters; the limit is {max_chars}", "text_too_long"
        )
    if not text.strip():
        raise invalid(field, f"{field} is empty or only whitespace", "empty_text")


def check_encoded(enc: Encoded, max_tokens: int, field: str = "text") -> None:
    if not any(not t["special"] for t in enc.tokens):
        raise invalid(field, f"{field} has no tokens once normalised", "empty_text")
    if len(enc.ids) > max_tokens:
        raise invalid(
            field,
            f"{field} is {len(enc.ids)} tokens long; the limit is {max_tokens}",
            "too_many_tokens",
        )


def check_ids(ids: list[int], vocab_size: int, max_tokens: int, field: str) -> None:
    if not ids:
        raise invalid(field, f"{field} is empty")
    if len(ids) > max_tokens:
        raise invalid(
            field, f"{field} has {len(ids)} ids; the limit is {max_tokens}", "too_many_tokens"
        )
    for k, i in enumerate(ids):
        if not 0 <= i < vocab_size:
            raise invalid(
                f"{field}.{k}", f"token id {i} is outside the vocabulary [0, {vocab_size})"
            )
