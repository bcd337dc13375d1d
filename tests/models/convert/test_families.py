"""Every supported family, imported from a tiny random `transformers` model and compared with
it: every head's attention per site, the logits, and 20 greedy decoding steps (our KV-cached
`models.generate.generate` against HF's `generate`). In float32, as attnviz serves models
(the logits agree to ~3e-6)."""

from __future__ import annotations

import json

import pytest
import torch

from models import capture, load_checkpoint
from models.convert import import_checkpoint
from models.generate import Sampling, generate
from models.hooks import hook_name
from tests.models.convert.conftest import VOCAB, family_specs

pytest.importorskip("transformers")

TOL = 1e-4
SRC = torch.tensor([[5, 17, 42, 8, 91, 23, 64, 3, 77]])
TGT = torch.tensor([[2, 33, 12, 58, 9, 70]])  # teacher-forced seq2seq target (starts with BOS)


@pytest.fixture(scope="module")
def imported(hf_models, tmp_path_factory):
    """name -> our checkpoint imported from the HF model's folder."""
    out = tmp_path_factory.mktemp("imported")
    result = {}
    for name, (_, folder) in hf_models.items():
        result[name] = load_checkpoint(import_checkpoint(str(folder), name, out))
    return result


def _hf_outputs(hf, kind):
    with torch.no_grad():
        if kind == "seq2seq":
            out = hf(input_ids=SRC, decoder_input_ids=TGT, output_attentions=True)
            sites = {
                "encoder.self": out.encoder_attentions,
                "decoder.self": out.decoder_attentions,
                "decoder.cross": out.cross_attentions,
            }
        else:
            out = hf(input_ids=SRC, output_attentions=True)
            sites = {f"{kind}.self": out.attentions}
    return sites, out.logits


def _our_outputs(model, kind):
    names = [
        hook_name(site, i, "pattern") for site, n in model.config.sites.items() for i in range(n)
    ]
    with torch.no_grad(), capture(model, names=names) as trace:
        logits = model(SRC, target_ids=TGT) if kind == "seq2seq" else model(SRC)
    sites = {
        site: [trace[hook_name(site, i, "pattern")] for i in range(n)]
        for site, n in model.config.sites.items()
    }
    return sites, logits


@pytest.mark.parametrize("name", list(family_specs()))
def test_every_head_and_the_logits_match_transformers(name, hf_models, imported):
    hf, _ = hf_models[name]
    kind = family_specs()[name][3]
    ours = imported[name].model
    assert ours.config.kind == kind
    hf_sites, hf_logits = _hf_outputs(hf, kind)
    our_sites, our_logits = _our_outputs(ours, kind)
    assert set(our_sites) == set(hf_sites)
    for site, layers in hf_sites.items():
        assert len(our_sites[site]) == len(layers)
        for layer, (mine, theirs) in enumerate(zip(our_sites[site], layers, strict=True)):
            assert mine.shape == theirs.shape, (site, layer)
            err = (mine - theirs).abs().max().item()
            assert err <= TOL, f"{name} {site} layer {layer}: max |Δ attention| = {err:.2e}"
            # the reference discriminates: these patterns are far from uniform
            assert _distance_from_uniform(theirs) > 0.2, f"{name} {site} {layer}: near-uniform"
    err = (our_logits - hf_logits).abs().max().item()
    assert err <= TOL, f"{name}: max |Δ logits| = {err:.2e}"


def _distance_from_uniform(pattern: torch.Tensor) -> float:
    allowed = (pattern > 0).to(pattern.dtype)  # masked keys get exactly 0
    uniform = allowed / allowed.sum(-1, keepdim=True)
    return (pattern - uniform).abs().max().item()


@pytest.mark.parametrize(
    ("name", "field", "wrong"),
    [
        ("llama", "pair_layout", "interleaved"),
        ("marian", "pair_layout", "interleaved"),
        ("gpt2", "activation", "gelu"),
        ("qwen2", "qkv_bias", False),
    ],
)
def test_a_wrong_option_is_caught_by_the_comparison(name, field, wrong, hf_models, imported):
    """The references have the power to fail: one option set wrong breaks the match."""
    hf, _ = hf_models[name]
    path = imported[name].path
    config = json.loads((path / "config.json").read_text())
    config[field] = wrong
    (path / "config.json").write_text(json.dumps(config))
    try:
        if field == "qkv_bias":
            with pytest.raises(RuntimeError, match="Unexpected key"):
                load_checkpoint(path)
            return
        broken = load_checkpoint(path).model
        _, hf_logits = _hf_outputs(hf, broken.config.kind)
        _, logits = _our_outputs(broken, broken.config.kind)
        assert (logits - hf_logits).abs().max().item() > 5 * TOL  # gelu vs tanh: ~7e-4
    finally:
        config[field] = getattr(imported[name].config, field)
        (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("name", [n for n, s in family_specs().items() if s[3] != "encoder"])
def test_greedy_decoding_with_the_kv_cache_matches_hf_generate(name, hf_models, imported):
    hf, _ = hf_models[name]
    ours = imported[name].model
    prompt = SRC[:, :6]
    with torch.no_grad():
        theirs = hf.generate(prompt, max_new_tokens=20, do_sample=False, num_beams=1)[0]
    if ours.config.kind == "decoder":
        theirs = theirs[prompt.shape[1] :]
    else:
        assert theirs[0] == ours.config.bos_id  # HF's decoder_start_token_id
        theirs = theirs[1:]
    steps = list(generate(ours, prompt[0].tolist(), Sampling(max_new_tokens=20)))
    assert [s.token_id for s in steps] == theirs.tolist()
    assert len(steps) == 20


def test_bert_token_types_and_padding_match_transformers(hf_models, imported):
    hf, _ = hf_models["bert"]
    model = imported["bert"].model
    ids = torch.tensor([[5, 17, 42, 8, 91, 23], [7, 9, 11, 0, 0, 0]])
    types = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 1, 1, 0, 0, 0]])
    mask = ids != 0
    with torch.no_grad():
        theirs = hf.bert(ids, attention_mask=mask.long(), token_type_ids=types)
        ours = model.encode(ids, pad_mask=mask, token_types=types)
    real = mask[..., None]  # a padded position's state is meaningless in both
    err = ((ours - theirs.last_hidden_state) * real).abs().max().item()
    assert err <= TOL


def test_decoders_and_seq2seq_special_ids_come_from_the_source(imported):
    assert imported["llama"].config.bos_id == 1
    assert imported["bart"].config.bos_id == 2  # decoder_start_token_id
    assert imported["marian"].config.bos_id == VOCAB - 1  # Marian starts from <pad>
    assert imported["marian"].config.pad_id == VOCAB - 1


def test_mistral_sliding_window_caps_max_len(imported):
    model = imported["mistral"].model
    assert model.config.max_len == 32
    assert any("sliding window" in n for n in imported["mistral"].card["conversion"]["notes"])
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.zeros(1, 33, dtype=torch.long))
