"""`attnviz import x.gguf` on tiny GGUF files written with the gguf package: exact against
transformers loading the same file, what the card records, and every refusal (nothing left
half-written in DIR)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models import capture, load_checkpoint
from models.convert import ConversionError, import_checkpoint
from models.hooks import hook_name
from tests.models.convert.tiny_gguf import LAYERS, write_llama
from training.cli import main

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-gguf")
    write_llama(folder / "tiny.gguf", chat_template=TEMPLATE)
    return folder


@pytest.fixture(scope="module")
def imported(tiny, tmp_path_factory):
    """Imported from the folder that holds the one .gguf."""
    return load_checkpoint(import_checkpoint(str(tiny), "tiny", tmp_path_factory.mktemp("out")))


def test_every_head_and_the_logits_equal_transformers_on_the_same_file(tiny, imported):
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(tiny), gguf_file="tiny.gguf", dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny), gguf_file="tiny.gguf")
    text = "the cat sat. then the dog, the bird!"
    ids = tokenizer(text)["input_ids"]
    assert imported.tokenizer.encode(text).ids == ids
    x = torch.tensor([ids])
    with torch.no_grad():
        theirs = hf(x, output_attentions=True)
        with capture(imported.model, names=["decoder.blocks.*.attn.hook_pattern"]) as trace:
            logits = imported.model(x)
    assert len(theirs.attentions) == LAYERS
    for layer, pattern in enumerate(theirs.attentions):
        mine = trace[hook_name("decoder.self", layer, "pattern")]
        assert mine.shape == pattern.shape == (1, 4, len(ids), len(ids))
        assert (mine - pattern).abs().max().item() <= 1e-5, f"layer {layer}"
    assert (logits - theirs.logits).abs().max().item() <= 1e-4


def test_the_card_records_the_quantization_and_the_chat_template(imported):
    card = imported.card
    assert card["gguf"]["quantization"] == "Q8_0"
    assert card["gguf"]["tensor_types"] == {"F32": 14, "Q8_0": 6}
    assert card["gguf"]["dequantized"] is True and "not the float original" in card["gguf"]["note"]
    assert "dequantized" in card["description"]
    assert card["chat_template"] == TEMPLATE
    assert card["source"]["license"] == "mit" and card["source"]["model_type"] == "llama"
    assert card["special_tokens"] == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    # this tokenizer adds its BOS itself (add_bos_token true): the config keeps the id
    assert imported.config.bos_id == 1 and imported.config.eos_id == 2
    assert imported.tokenizer.padding is None and imported.tokenizer.truncation is None


def _left_nothing(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_a_truncated_gguf_is_refused_and_nothing_is_written(tiny, tmp_path):
    data = (tiny / "tiny.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        import_checkpoint(str(cut), "cut", out)
    assert _left_nothing(out)


def test_the_cli_says_why_and_exits_2(tiny, tmp_path, capsys):
    data = (tiny / "tiny.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:200])
    assert main(["import", str(cut), "--id", "cut", "--out", str(tmp_path / "out")]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    assert _left_nothing(tmp_path / "out")


def test_a_file_that_is_not_gguf_is_named(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, renamed")
    with pytest.raises(ConversionError, match="not a GGUF file"):
        import_checkpoint(str(fake), "fake", tmp_path / "out")
    assert _left_nothing(tmp_path / "out")


def test_an_unsupported_architecture_is_named(tmp_path):
    path = write_llama(tmp_path / "falcon.gguf", arch="falcon")
    with pytest.raises(ConversionError, match="architecture 'falcon' is not supported.*llama"):
        import_checkpoint(str(path), "falcon", tmp_path / "out")
    assert _left_nothing(tmp_path / "out")


def test_a_gguf_without_a_tokenizer_is_refused(tmp_path):
    path = write_llama(tmp_path / "bare.gguf", tokenizer=False)
    with pytest.raises(ConversionError, match="has no tokenizer"):
        import_checkpoint(str(path), "bare", tmp_path / "out")
    assert _left_nothing(tmp_path / "out")


def test_a_model_larger_than_the_memory_budget_is_refused(tiny, tmp_path):
    with pytest.raises(ConversionError, match="more than the memory budget"):
        import_checkpoint(str(tiny / "tiny.gguf"), "big", tmp_path / "out", max_bytes=50_000)
    assert _left_nothing(tmp_path / "out")


def test_a_folder_with_two_ggufs_names_both(tiny, tmp_path):
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes((tiny / "tiny.gguf").read_bytes())
    with pytest.raises(ConversionError, match=r"2 GGUF files \(a\.gguf, b\.gguf\)"):
        import_checkpoint(str(tmp_path), "two", tmp_path / "out")


def test_a_pickle_only_folder_is_refused_without_being_opened(tmp_path, monkeypatch):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02 not even a valid pickle")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(ConversionError, match=r"only pickle weights \(pytorch_model\.bin\)"):
        import_checkpoint(str(tmp_path), "old", tmp_path / "out")
    assert _left_nothing(tmp_path / "out")


def test_the_written_config_is_plain_json(imported):
    on_disk = json.loads((imported.path / "config.json").read_text())
    assert on_disk["positional"] == "rope" and on_disk["pair_layout"] == "halves"
    assert on_disk["n_kv_heads"] == 2
