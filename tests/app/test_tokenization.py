"""Tokens as a student reads them: a byte-level piece of a multi-byte character names its
bytes (<0xC3>), checked against the UTF-8 of the text, for typed text and for ids alike."""

from __future__ import annotations

import re

API = "/api/v1"
TEXT = "café 🙂 naïve"
BYTE = re.compile(r"<0x([0-9A-F]{2})>")


def as_bytes(shown: str) -> bytes:
    """What a token's text says it holds: <0xNN> as that byte, the rest as UTF-8."""
    parts = BYTE.split(shown)
    return b"".join(bytes([int(p, 16)]) if k % 2 else p.encode() for k, p in enumerate(parts))


def test_byte_pieces_read_as_their_bytes(client, model_ids):
    model = model_ids["decoder"]  # byte-level BPE
    tokens = client.post(f"{API}/tokenize", json={"model": model, "text": TEXT}).json()["tokens"]
    words = [t for t in tokens if not t["special"]]
    assert all("\ufffd" not in t["text"] for t in tokens)
    # the emoji's four bytes are not one piece of a 659-entry vocabulary: some byte shows
    assert any(BYTE.search(t["text"]) for t in words)
    # spaces aside, the pieces' bytes are the text's UTF-8, in order
    assert b"".join(as_bytes(t["text"].strip()) for t in words) == TEXT.replace(" ", "").encode()

    ids = [t["id"] for t in tokens]
    body = {"model": model, "token_ids": ids, "layers": [0], "heads": [0]}
    by_id = client.post(f"{API}/attention", json=body).json()["tokens"]["source"]
    partial = {t["id"]: t["text"].strip() for t in by_id if BYTE.search(t["text"])}
    assert partial, "ids alone must name the bytes too"
    assert all("\ufffd" not in t["text"] for t in by_id)
    # two ids never read alike
    assert len(set(partial.values())) == len(partial)
    assert b"".join(as_bytes(t["text"].strip()) for t in by_id if not t["special"]) == (
        TEXT.replace(" ", "").encode()
    )


def test_whole_characters_keep_their_text(client, model_ids):
    for kind in ("encoder", "seq2seq"):
        tokens = client.post(
            f"{API}/tokenize", json={"model": model_ids[kind], "text": "naïve"}
        ).json()["tokens"]
        assert "".join(t["text"] for t in tokens if not t["special"]) == "naïve"
