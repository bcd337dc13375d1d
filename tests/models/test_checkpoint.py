import json

import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from models import load_checkpoint, save_checkpoint
from tests.helpers import tiny


def test_save_and_load_round_trip(tmp_path):
    model = tiny("seq2seq").float()
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "cat": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    save_checkpoint(tmp_path, model, tok, {"metrics": {"exact_match": 1.0}})
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "card.json",
    }
    assert json.loads((tmp_path / "config.json").read_text())["kind"] == "seq2seq"
    ckpt = load_checkpoint(tmp_path)
    src, tgt = torch.randint(3, 40, (1, 5)), torch.randint(3, 40, (1, 4))
    assert torch.equal(ckpt.model(src, target_ids=tgt), model(src, target_ids=tgt))
    assert ckpt.tokenizer.encode("cat dog").ids == [1, 0]
    assert ckpt.card["metrics"]["exact_match"] == 1.0
    assert not ckpt.model.training


def test_weights_file_is_safetensors_not_pickle(tmp_path):
    save_checkpoint(tmp_path, tiny("encoder"))
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert "tok_embed.weight" in header
    assert not raw.startswith(b"PK") and b"\x80\x02" not in raw[:2]  # neither zip nor pickle
