"""What `attnviz import` refuses, and how it says so; what it writes besides the weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.convert import ConversionError, import_checkpoint
from models.convert.source import HUB_PATTERNS
from tests.models.convert.conftest import build_hf, write_tokenizer
from training.cli import main

ROOT = Path(__file__).resolve().parents[3]


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture
def llama(tmp_path):
    folder = tmp_path / "llama"
    build_hf("llama", folder)
    return folder


def test_an_unsupported_family_names_the_supported_ones(tmp_path):
    folder = tmp_path / "t5"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "t5", "architectures": ["T5"]}))
    save_file({"shared.weight": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    with pytest.raises(ConversionError, match="'t5'.*BERT, RoBERTa.*GPT-2, Llama.*BART, Marian"):
        import_checkpoint(str(folder), "t5", tmp_path / "out")


def test_pickle_weights_are_refused_without_being_opened(tmp_path, monkeypatch):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x02 not even a valid pickle")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a user file")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(ConversionError, match=r"pickle.*pytorch_model\.bin.*save_pretrained"):
        import_checkpoint(str(folder), "old", tmp_path / "out")


@pytest.mark.parametrize(
    "changes",
    [
        {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}},
        {"rope_parameters": None, "rope_scaling": {"type": "dynamic", "factor": 2.0}},
    ],
)
def test_an_unknown_rope_scaling_is_refused(llama, tmp_path, changes):
    _edit_config(llama, **changes)
    with pytest.raises(ConversionError, match="rope_scaling of type '(yarn|dynamic)'"):
        import_checkpoint(str(llama), "x", tmp_path / "out")


def test_rope_theta_from_older_configs_becomes_rope_base(llama, tmp_path):
    _edit_config(llama, rope_parameters=None, rope_theta=500000.0)
    path = import_checkpoint(str(llama), "x", tmp_path / "out")
    config = json.loads((path / "config.json").read_text())
    assert config["rope_base"] == 500000.0 and config["pair_layout"] == "halves"
    assert config["n_kv_heads"] == 2


def test_a_tensor_with_no_place_is_an_error_not_silently_dropped(llama, tmp_path):
    weights = load_file(str(llama / "model.safetensors"))
    weights["model.layers.0.self_attn.q_norm.weight"] = torch.ones(8)  # Qwen3-style, unknown
    save_file(weights, str(llama / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ConversionError, match=r"1 tensor\(s\).*q_norm"):
        import_checkpoint(str(llama), "x", tmp_path / "out")


def test_a_config_that_lies_about_sizes_is_caught(llama, tmp_path):
    _edit_config(llama, intermediate_size=48)  # the weights say 64
    with pytest.raises(ConversionError, match="wrong shapes.*ffn.W_1"):
        import_checkpoint(str(llama), "x", tmp_path / "out")


def test_the_target_is_never_overwritten_by_accident(llama, tmp_path):
    out = tmp_path / "out"
    first = import_checkpoint(str(llama), "tiny-llama", out)
    with pytest.raises(ConversionError, match="exists.*--force"):
        import_checkpoint(str(llama), "tiny-llama", out)
    assert import_checkpoint(str(llama), "tiny-llama", out, overwrite=True) == first
    assert sorted(p.name for p in out.iterdir()) == ["tiny-llama"]  # no staging left behind
    assert sorted(p.name for p in first.iterdir()) == [
        "card.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]


@pytest.mark.parametrize("bad", ["../evil", "", "a/b", ".hidden"])
def test_model_ids_are_plain_folder_names(llama, tmp_path, bad):
    with pytest.raises(ConversionError, match="--id"):
        import_checkpoint(str(llama), bad, tmp_path / "out")


def test_a_hub_id_is_a_thin_download_of_safe_files_only(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, allow_patterns):
        calls.append((repo_id, allow_patterns))
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    with pytest.raises(ConversionError, match="could not download 'gpt2'.*Offline"):
        import_checkpoint("gpt2", "gpt2", tmp_path / "out")
    assert calls == [("gpt2", HUB_PATTERNS)]
    assert not any(p.endswith((".bin", ".py", ".pt", ".pth", ".ckpt")) for p in HUB_PATTERNS)


def test_a_missing_tokenizer_json_is_built_from_vocab_txt(tmp_path):
    pytest.importorskip("transformers")
    folder = tmp_path / "bert"
    build_hf("bert", folder)
    (folder / "tokenizer.json").unlink()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s"]
    words += [f"w{i}" for i in range(99 - len(words))]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "mask_token": "[MASK]"})
    )
    path = import_checkpoint(str(folder), "bert", tmp_path / "out")
    from tokenizers import BertWordPieceTokenizer, Tokenizer

    ours = Tokenizer.from_file(str(path / "tokenizer.json"))
    reference = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=True)
    for text in ("the cats sat", "The CAT sat!"):
        assert ours.encode(text).ids == reference.encode(text).ids
    assert ours.encode("the cats").tokens == ["[CLS]", "the", "cat", "##s", "[SEP]"]
    card = json.loads((path / "card.json").read_text())
    assert card["special_tokens"]["mask_token"] == "[MASK]"


def test_building_a_tokenizer_without_transformers_says_what_to_install(tmp_path, monkeypatch):
    folder = tmp_path / "bert"
    build_hf("bert", folder)
    (folder / "tokenizer.json").unlink()
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    with pytest.raises(ConversionError, match=r"no tokenizer\.json.*attnviz\[hf\]"):
        import_checkpoint(str(folder), "bert", tmp_path / "out")


def test_the_cli_reports_errors_as_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nothing"), "--id", "x", "--out", str(tmp_path)]) == 2
    assert "neither a checkpoint folder nor a hub id" in capsys.readouterr().err


def test_the_cli_imports_and_the_server_loads_it_without_transformers(tmp_path, capsys):
    folder = tmp_path / "gpt2"
    build_hf("gpt2", folder)
    out = tmp_path / "ckpts"
    assert main(["import", str(folder), "--id", "tiny-gpt2", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    # A fresh interpreter, as the server is: it loads converted checkpoints with safetensors
    # and never imports transformers (nor the converter).
    script = (
        "import sys, torch\n"
        "from app.registry import Registry\n"
        f"r = Registry.load([__import__('pathlib').Path({str(out)!r})], torch.device('cpu'))\n"
        "e = r.get('tiny-gpt2')\n"
        "assert e.model.lm_head.weight is e.model.tok_embed.weight\n"
        "e.model(torch.tensor([[1, 2, 3]]))\n"
        "bad = [m for m in sys.modules if m.startswith(('transformers', 'models.convert'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)


def test_the_written_tokenizer_is_the_sources(tmp_path):
    folder = tmp_path / "gpt2"
    build_hf("gpt2", folder)
    write_tokenizer(folder)
    path = import_checkpoint(str(folder), "g", tmp_path / "out")
    from tokenizers import Tokenizer

    assert Tokenizer.from_file(str(path / "tokenizer.json")).encode("t5 t17 t98").ids == [5, 17, 98]


@pytest.mark.parametrize("src", ["./no-such-model", "~/no-such-model", "a/b/c", "/abs/model"])
def test_a_mistyped_path_is_not_taken_for_a_hub_id(tmp_path, src):
    with pytest.raises(ConversionError, match="neither a checkpoint folder nor a hub id"):
        import_checkpoint(src, "x", tmp_path / "out")


def test_legacy_keys_that_hf_ignores_are_ignored(tmp_path):
    folder = tmp_path / "marian"
    build_hf("marian", folder)
    # as in configs written by transformers 3/4 for opus-mt models
    _edit_config(
        folder, normalize_embedding=False, static_position_embeddings=True, normalize_before=False
    )
    path = import_checkpoint(str(folder), "m", tmp_path / "out")
    assert json.loads((path / "config.json").read_text())["embed_norm"] is False


def test_sharded_weights_are_read_through_their_index_and_other_files_ignored(tmp_path):
    hf_folder = tmp_path / "llama"
    build_hf("llama", hf_folder)
    weights = load_file(str(hf_folder / "model.safetensors"))
    (hf_folder / "model.safetensors").unlink()
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}  # fmt: skip
    for file, keys in shards.items():
        save_file({k: weights[k] for k in keys}, str(hf_folder / file), metadata={"format": "pt"})
    index = {"weight_map": {k: file for file, keys in shards.items() for k in keys}}
    (hf_folder / "model.safetensors.index.json").write_text(json.dumps(index))
    # a Mistral repo also ships its native weights, under other names: not ours to read
    save_file(
        {"tok_embeddings.weight": torch.zeros(2)}, str(hf_folder / "consolidated.safetensors")
    )
    path = import_checkpoint(str(hf_folder), "sharded", tmp_path / "out")
    assert json.loads((path / "card.json").read_text())["conversion"]["dropped"] == []


@pytest.mark.parametrize(
    ("family", "changes", "message"),
    [
        ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ("bert", {"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ("llama", {"attention_bias": True}, "attention_bias=True with mlp_bias=False"),
        ("llama", {"hidden_act": "gelu"}, "only SwiGLU"),
        ("llama", {"head_dim": 16}, "head_dim=16"),
        ("marian", {"share_encoder_decoder_embeddings": False}, "share_encoder_decoder"),
    ],
)
def test_variants_we_do_not_implement_are_named(tmp_path, family, changes, message):
    folder = tmp_path / family
    build_hf(family, folder)
    _edit_config(folder, **changes)
    with pytest.raises(ConversionError, match=message):
        import_checkpoint(str(folder), "x", tmp_path / "out")
