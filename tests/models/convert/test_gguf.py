"""`attnviz import x.gguf` on tiny GGUF files written with the gguf package, one per family
(llama, mistral, qwen2, gpt2): exact against transformers loading the same file, what the
card records, and every refusal (nothing left half-written in DIR)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from models import capture, load_checkpoint
from models.convert import ConversionError, import_checkpoint
from models.generate import Sampling, generate
from models.hooks import hook_name
from tests.models.convert.tiny_gguf import ENDOFTEXT, HEADS, LAYERS, write_gguf, write_llama
from training.cli import main

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
TEXT = "the cat sat. then the dog, the bird!"
PATTERN_TOL, LOGIT_TOL = 1e-5, 1e-4
#: case -> (family written, general.architecture declared)
CASES = {
    "llama": ("llama", "llama"),
    "mistral": ("mistral", "mistral"),
    # what llama.cpp writes for Mistral 7B: Llama's architecture and keys, SentencePiece vocab
    "mistral-as-llama": ("mistral", "llama"),
    "qwen2": ("qwen2", "qwen2"),
    "gpt2": ("gpt2", "gpt2"),
}
#: seed 0's Mistral picks EOS as its first greedy token: nothing left to compare
SEEDS = {"mistral": 1, "mistral-as-llama": 1}
LLAMA_SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
#: case -> what the card and config must say
EXPECTED = {
    "llama": dict(
        types={"F32": 14, "Q8_0": 6}, model_type="llama", specials=LLAMA_SPECIALS, bos=1, eos=2
    ),
    "mistral-as-llama": dict(
        types={"F32": 14, "Q8_0": 6}, model_type="llama", specials=LLAMA_SPECIALS, bos=1, eos=2
    ),
    # q/k/v biases, and an untied output matrix (Q8_0)
    "qwen2": dict(
        types={"F32": 20, "Q8_0": 7},
        model_type="qwen2",
        specials={"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT},
        bos=None,  # its tokenizer adds no BOS
        eos=38,
    ),
    # LayerNorm biases, fused qkv, learned positions, output written out as llama.cpp does
    "gpt2": dict(
        types={"F32": 23, "Q8_0": 6},
        model_type="gpt2",
        specials={"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT},
        bos=None,
        eos=38,
    ),
}


@dataclass
class Case:
    name: str
    folder: Path
    hf: Any  # transformers' model from the same file (eager attention, float32)
    tokenizer: Any  # transformers' tokenizer from the same file
    imported: Any  # ours, imported and read back


def _write(folder: Path, case: str) -> Path:
    family, arch = CASES[case]
    seed = SEEDS.get(case, 0)
    return write_gguf(folder / "tiny.gguf", family, arch=arch, seed=seed, chat_template=TEMPLATE)


def _transformers_model(folder: Path):
    return transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file="tiny.gguf", dtype=torch.float32, attn_implementation="eager"
    ).eval()


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory) -> Case:
    """Each family's tiny GGUF, loaded by transformers and imported by us. A file that
    transformers itself cannot read is skipped with its error (the refusal is tested below)."""
    folder = tmp_path_factory.mktemp(request.param)
    _write(folder, request.param)
    try:
        hf = _transformers_model(folder)
    except NotImplementedError as e:
        pytest.skip(
            f"transformers {transformers.__version__} cannot read a GGUF of architecture "
            f"{CASES[request.param][1]!r}: {type(e).__name__}: {e}"
        )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file="tiny.gguf")
    out = tmp_path_factory.mktemp(f"{request.param}-out")
    imported = load_checkpoint(import_checkpoint(str(folder), request.param, out))
    return Case(request.param, folder, hf, tokenizer, imported)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A folder holding one tiny Llama GGUF (for the refusals)."""
    folder = tmp_path_factory.mktemp("tiny-gguf")
    write_llama(folder / "tiny.gguf", chat_template=TEMPLATE)
    return folder


def test_every_head_and_the_logits_equal_transformers_on_the_same_file(case):
    _assert_equal(case.hf, case.tokenizer, case.imported)


def _assert_equal(hf, tokenizer, imported) -> None:
    """Every layer's every head's pattern (≤ 1e-5) and the logits (≤ 1e-4) on TEXT, and the
    same token ids."""
    ids = tokenizer(TEXT)["input_ids"]
    assert imported.tokenizer.encode(TEXT).ids == ids
    x = torch.tensor([ids])
    with torch.no_grad():
        theirs = hf(x, output_attentions=True)
        with capture(imported.model, names=["decoder.blocks.*.attn.hook_pattern"]) as trace:
            logits = imported.model(x)
    assert len(theirs.attentions) == LAYERS
    for layer, pattern in enumerate(theirs.attentions):
        mine = trace[hook_name("decoder.self", layer, "pattern")]
        assert mine.shape == pattern.shape == (1, HEADS, len(ids), len(ids))
        assert (mine - pattern).abs().max().item() <= PATTERN_TOL, f"layer {layer}"
    assert (logits - theirs.logits).abs().max().item() <= LOGIT_TOL


def test_a_gpt2_of_other_sizes_is_read_at_its_own(tmp_path):
    """transformers reads a GPT-2 GGUF's context_length into n_ctx and its feed_forward_length
    into no size GPT2Config builds from, so a file that is not 1024 positions × a 4·d MLP loads
    there only with n_positions and n_inner passed: attnviz reads them from the file itself."""
    write_gguf(tmp_path / "tiny.gguf", "gpt2", context=64, d_ff=96)
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path),
        gguf_file="tiny.gguf",
        dtype=torch.float32,
        attn_implementation="eager",
        n_positions=64,
        n_inner=96,
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="tiny.gguf")
    imported = load_checkpoint(import_checkpoint(str(tmp_path), "g", tmp_path / "out"))
    assert imported.config.max_len == 64 and imported.config.d_ff == 96
    _assert_equal(hf, tokenizer, imported)


def test_greedy_decoding_is_identical(case):
    """Ours decodes greedily with its KV cache; transformers, fed the prompt and our tokens in
    one pass, must pick each of our tokens as its own argmax."""
    ids = case.tokenizer(TEXT)["input_ids"]
    steps = generate(case.imported.model, ids, Sampling(max_new_tokens=10), capture_attention=False)
    ours = [s.token_id for s in steps]
    assert len(ours) == 10  # (none of these random models says EOS within 10 tokens)
    with torch.no_grad():
        logits = case.hf(torch.tensor([ids + ours])).logits[0]
    assert logits[len(ids) - 1 : -1].argmax(-1).tolist() == ours


def test_the_tokenizer_json_tokenizes_as_transformers_does(case):
    """The tokenizer.json written at import, read on its own, against transformers' tokenizer
    built from the GGUF (special tokens whole, the BOS only where the file adds one)."""
    from tokenizers import Tokenizer

    written = Tokenizer.from_file(str(case.imported.path / "tokenizer.json"))
    specials = [t for t in ("<s>", ENDOFTEXT) if t in case.tokenizer.get_vocab()]
    # (capitals and '-' are not in the tiny vocabularies: both drop them, or both say <unk>)
    for text in (TEXT, "This, THE end? the-the ...", f"{specials[0]}the end{specials[-1]}"):
        assert written.encode(text).ids == case.tokenizer(text)["input_ids"], text


def test_the_card_records_the_quantization_and_the_chat_template(case):
    expected, card, config = EXPECTED[case.name], case.imported.card, case.imported.config
    assert card["gguf"]["quantization"] == "Q8_0"
    assert card["gguf"]["tensor_types"] == expected["types"]
    assert card["gguf"]["architecture"] == CASES[case.name][1]
    assert card["gguf"]["dequantized"] is True and "not the float original" in card["gguf"]["note"]
    assert "dequantized" in card["description"]
    assert card["chat_template"] == TEMPLATE
    assert card["source"]["license"] == "mit"
    assert card["source"]["model_type"] == expected["model_type"]
    assert card["special_tokens"] == expected["specials"]
    # a tokenizer that adds its BOS itself (add_bos_token true): the config keeps the id
    assert config.bos_id == expected["bos"] and config.eos_id == expected["eos"]
    # no pad token in these files: EOS pads, and no real token is barred from generation
    assert config.pad_id == config.eos_id
    assert case.imported.tokenizer.padding is None and case.imported.tokenizer.truncation is None


def test_the_written_config_is_plain_json(case):
    on_disk = json.loads((case.imported.path / "config.json").read_text())
    if case.name == "gpt2":
        assert on_disk["positional"] == "learned" and on_disk["max_len"] == 1024
    else:
        assert on_disk["positional"] == "rope" and on_disk["pair_layout"] == "halves"
        assert on_disk["n_kv_heads"] == 2


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


@pytest.mark.parametrize(
    "family, arch, name",
    [("mistral", "mistral", None), ("llama", "llama", "mistral")],
    ids=["architecture-mistral", "llama-named-mistral"],
)
def test_a_gguf_transformers_cannot_map_is_refused_by_name(family, arch, name, tmp_path, capsys):
    """transformers reads both files as model type 'mistral', and its GGUF reader has no
    tensor-name map for that model type (gguf-py knows no 'mistral' architecture): attnviz
    says so, exits 2 and writes nothing, rather than crashing or importing unchecked."""
    path = write_gguf(tmp_path / "tiny.gguf", family, arch=arch, name=name)
    try:
        _transformers_model(tmp_path)
    except NotImplementedError:
        pass
    else:
        pytest.skip("transformers reads this GGUF now: import it and test it exact")
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match="as model type 'mistral' but cannot map its tensors"):
        import_checkpoint(str(path), "m", out)
    assert _left_nothing(out)
    assert main(["import", str(path), "--id", "m", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot map its tensors" in err and "Unknown gguf model_type: mistral" in err
    assert "Traceback" not in err
    assert _left_nothing(out)
