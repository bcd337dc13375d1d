"""Hook points: names, context-local traces across threads, edits."""

import threading

import pytest
import torch

from models import capture, hook_names
from models.analysis.ablation import zero_head
from models.hooks import hook_name
from tests.helpers import tiny


def test_hook_names_follow_the_module_tree():
    names = hook_names(tiny("seq2seq"))
    for expected in [
        "encoder.hook_embed",
        "encoder.hook_pos_embed",
        "encoder.blocks.0.hook_resid_pre",
        "encoder.blocks.0.attn.hook_q",
        "encoder.blocks.0.attn.hook_scores",
        "encoder.blocks.0.attn.hook_mask",
        "encoder.blocks.0.attn.hook_pattern",
        "encoder.blocks.0.attn.hook_z",
        "encoder.blocks.0.hook_resid_mid",
        "encoder.blocks.1.hook_resid_post",
        "decoder.blocks.1.cross_attn.hook_pattern",
        "decoder.blocks.0.hook_resid_cross",
        "hook_logits",
    ]:
        assert expected in names
    rope_names = hook_names(tiny("decoder"))
    for expected in ["attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_rope_angles"]:
        assert f"decoder.blocks.0.{expected}" in rope_names


def test_capture_records_only_what_is_asked_and_shapes_are_documented():
    model = tiny("decoder")
    ids = torch.randint(3, 40, (1, 5))
    with capture(model, names=["decoder.blocks.*.attn.hook_pattern"]) as trace:
        model(ids)
    assert sorted(trace.keys()) == [f"decoder.blocks.{i}.attn.hook_pattern" for i in (0, 1)]
    assert trace["decoder.blocks.0.attn.hook_pattern"].shape == (1, 4, 5, 5)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("decoder.cross", 1, "pattern"), "decoder.blocks.1.cross_attn.hook_pattern"),
        (("encoder.self", 0, "q"), "encoder.blocks.0.attn.hook_q"),
        (("decoder.self", 1, "z"), "decoder.blocks.1.attn.hook_z"),
        (("encoder", 0, "resid_pre"), "encoder.blocks.0.hook_resid_pre"),
        (("decoder", 1, "ffn.post"), "decoder.blocks.1.ffn.hook_post"),
        (("decoder", None, "embed"), "decoder.hook_embed"),
        (("", None, "logits"), "hook_logits"),
    ],
)
def test_hook_name_spells_every_kind_of_hook(args, expected):
    assert hook_name(*args) == expected
    assert expected in hook_names(tiny("seq2seq"))


@pytest.mark.parametrize("bad", [("encoder.self", None, "q"), ("middle", 0, "q"), ("", 1, "x")])
def test_hook_name_refuses_what_does_not_exist(bad):
    with pytest.raises(ValueError):
        hook_name(*bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"names": ["encoder.blocks.9.attn.hook_q"]},
        {"names": ["encoder.blocks.*.attn.hook_typo"]},  # a glob that matches nothing
        {"edits": {"encoder.blocks.0.attn.hook_zz": lambda x: x}},
        {"slices": {"encoder.blocks.0.attn.hook_zz": lambda x: x}},
    ],
)
def test_unknown_hook_name_is_an_error(kwargs):
    with pytest.raises(KeyError), capture(tiny("encoder"), **kwargs):
        pass


def test_editing_a_hook_that_only_reports_is_an_error():
    name = "encoder.blocks.0.attn.hook_pattern"
    with pytest.raises(ValueError), capture(tiny("encoder"), edits={name: lambda x: x}):
        pass


def test_records_inside_capture_and_nothing_after_it():
    model = tiny("encoder")
    name = "encoder.blocks.0.attn.hook_pattern"
    ids = torch.randint(5, 40, (1, 4))
    with capture(model, names=[name]) as trace:
        model.encode(ids)
    inside = trace[name].clone()
    assert inside.shape == (1, 4, 4, 4)
    model.encode(torch.randint(5, 40, (1, 6)))  # outside: the trace must not change
    assert list(trace.keys()) == [name]
    assert torch.equal(trace[name], inside)


def test_a_slice_keeps_part_of_a_hook_and_the_model_computes_on_the_whole():
    """slices: what a trace keeps of a tensor (here one head of a pattern), not what flows on:
    the output is bit-identical, the recorded part is the whole's, and the whole is not held."""
    model = tiny("decoder")
    ids = torch.randint(3, 40, (1, 7))
    name = "decoder.blocks.1.attn.hook_pattern"
    with capture(model, names=[name]) as whole:
        plain = model(ids)
    with capture(model, names=[name], slices={name: lambda x: x[:, 2:3].clone()}) as part:
        sliced = model(ids)
    assert torch.equal(plain, sliced)
    assert part[name].shape == (1, 1, 7, 7) and torch.equal(part[name], whole[name][:, 2:3])
    one_head = 7 * 7 * part[name].element_size()
    assert part[name].untyped_storage().nbytes() == one_head  # not the 4 heads it came from


def test_capture_without_edits_is_bit_identical():
    model = tiny("seq2seq")
    src, tgt = torch.randint(3, 40, (2, 6)), torch.randint(3, 40, (2, 4))
    plain = model(src, target_ids=tgt)
    with capture(model):
        captured = model(src, target_ids=tgt)
    assert torch.equal(plain, captured)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_reading_or_editing_a_norms_standardised_vectors(norm):
    """A norm runs torch's fused kernel; a capture that reads hook_normalized gets the
    standardised vectors spelt out while the output stays bit-identical, and an edit of them
    flows on as x̂' · γ (+ β)."""
    model = tiny("decoder", norm=norm)
    ids = torch.randint(3, 40, (1, 6))
    name = "decoder.blocks.0.attn_norm.hook_normalized"
    plain = model(ids)
    with capture(model, names=[name, "decoder.blocks.0.attn_norm.hook_out"]) as trace:
        assert torch.equal(model(ids), plain)
    norm_module = model.decoder.blocks[0].attn_norm
    x_hat, out = trace[name], trace["decoder.blocks.0.attn_norm.hook_out"]
    bias = norm_module.bias if norm == "layernorm" else 0
    torch.testing.assert_close(x_hat * norm_module.weight + bias, out, rtol=0, atol=1e-12)
    with capture(model, names=[], edits={name: lambda t: t * 0}):
        edited = model(ids)
    with capture(
        model, names=[], edits={"decoder.blocks.0.attn_norm.hook_out": lambda t: t * 0 + bias}
    ):
        reference = model(ids)
    torch.testing.assert_close(edited, reference, rtol=0, atol=1e-12)


def test_zeroing_one_head_changes_the_output():
    model = tiny("decoder")
    ids = torch.randint(3, 40, (1, 6))
    name = "decoder.blocks.1.attn.hook_z"
    with capture(model, names=[name], edits={name: zero_head(2)}) as trace:
        ablated = model(ids)
    assert (trace[name][:, 2] == 0).all() and (trace[name][:, 1] != 0).any()
    assert not torch.allclose(ablated, model(ids))


def test_two_threads_capturing_on_one_model_get_separate_traces():
    model = tiny("encoder")
    inputs = {i: torch.randint(5, 40, (1, 3 + i)) for i in range(8)}
    expected = {}
    for i, ids in inputs.items():
        with capture(model) as trace:
            model.encode(ids)
        expected[i] = trace["encoder.blocks.1.attn.hook_pattern"]
    results, errors = {}, []
    barrier = threading.Barrier(len(inputs))

    def work(i):
        try:
            barrier.wait()
            for _ in range(20):  # interleave many forwards across threads
                with capture(model, names=["encoder.blocks.1.attn.hook_pattern"]) as trace:
                    model.encode(inputs[i])
                assert list(trace.keys()) == ["encoder.blocks.1.attn.hook_pattern"]
            results[i] = trace["encoder.blocks.1.attn.hook_pattern"]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in inputs:
        assert results[i].shape[-1] == 3 + i
        torch.testing.assert_close(results[i], expected[i])
