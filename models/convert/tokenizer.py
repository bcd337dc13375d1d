"""The imported model's tokenizer.json: the source's own, or one built at import time.

Built with `transformers` (no remote code) from a checkpoint's other tokenizer files: a fast
tokenizer's `tokenizers` backend where transformers has one, and for Marian (opus-mt), which
ships two SentencePiece models and a vocab.json but no fast tokenizer, a Unigram tokenizer
with the source model's normaliser and piece scores over vocab.json's ids.

Either way without padding or truncation (all-MiniLM's tokenizer.json pads every input to
128): attnviz shows the tokens of the text and enforces its own length limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.convert.source import ConversionError, Source

INSTALL_HF = "pip install 'attnviz[hf]'"


def load_tokenizer(source: Source) -> tuple[Any, list[str]]:
    """(a `tokenizers.Tokenizer`, notes for the card)."""
    from tokenizers import Tokenizer

    folder = source.path
    notes: list[str] = []
    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    elif source.config.get("model_type") == "marian" and (folder / "source.spm").is_file():
        tokenizer = marian_tokenizer(folder)
        notes.append(
            "tokenizer.json built from source.spm and vocab.json: target text given to "
            "attnviz is segmented like source text (Marian's target.spm is not used)"
        )
    else:
        tokenizer = _from_transformers(folder)
        notes.append("tokenizer.json built with transformers from the source's tokenizer files")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, notes


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConversionError(
            f"the checkpoint has no tokenizer.json, and building one needs transformers: "
            f"{INSTALL_HF}"
        ) from None
    return transformers


def _from_transformers(folder: Path) -> Any:
    transformers = _transformers()
    try:
        built = transformers.AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as e:
        raise ConversionError(
            f"{folder} has no tokenizer.json and transformers could not build one from its "
            f"other tokenizer files ({type(e).__name__}: {e})"
        ) from None
    backend = getattr(built, "backend_tokenizer", None)
    if backend is None:
        raise ConversionError(
            f"{folder} has no tokenizer.json and its tokenizer ({type(built).__name__}) has no "
            "`tokenizers` form to save"
        )
    return backend


def marian_tokenizer(folder: Path) -> Any:
    """source.spm's segmentation (normaliser, whitespace handling, piece scores) over the ids
    of vocab.json, which the source and target sides share; "</s>" closes every input, as
    MarianTokenizer does. Pieces only target.spm knows get a score below every source piece,
    so they are never preferred."""
    from tokenizers.processors import TemplateProcessing

    _transformers()
    try:
        from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf

        build = SpmConverter.build_tokenizer_from_spm_proto
        proto = import_protobuf().ModelProto()
    except (ImportError, AttributeError) as e:
        raise ConversionError(
            f"building Marian's tokenizer needs transformers >= 5 and sentencepiece "
            f"({INSTALL_HF}): {e}"
        ) from None
    proto.ParseFromString((folder / "source.spm").read_bytes())
    vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text())
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ConversionError("vocab.json's ids are not 0..n-1")
    for token in ("</s>", "<unk>"):
        if token not in vocab:
            raise ConversionError(f"vocab.json has no {token}")
    scores = {p.piece: p.score for p in proto.pieces}
    floor = min(scores.values()) - 10.0
    pieces = [(piece, scores.get(piece, floor)) for piece in sorted(vocab, key=vocab.get)]
    proto.trainer_spec.unk_id = vocab["<unk>"]
    tokenizer = build(proto, pieces)
    tokenizer.add_special_tokens([t for t in ("</s>", "<unk>", "<pad>") if t in vocab])
    tokenizer.post_processor = TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return tokenizer
