"""Head ablation edits on hook_z, checked against weight surgery and the captured tensors."""

import copy

import pytest
import torch

from models import capture
from models.analysis.ablation import HOOK_Z, ablation_edits, mean_head, zero_head
from tests.models.conftest import tiny


def test_zero_ablation_equals_removing_the_head_from_w_o():
    model = tiny("decoder")
    ids = torch.randint(3, 40, (2, 7))
    with capture(model, edits=ablation_edits([("decoder.self", 1, 2, "zero")])):
        ablated = model(ids)
    # Reference: the head's d_head columns of W_O set to zero, nothing else touched.
    surgery = copy.deepcopy(model)
    attn = surgery.decoder.blocks[1].attn
    with torch.no_grad():
        attn.W_o.weight[:, 2 * attn.d_head : 3 * attn.d_head] = 0
    torch.testing.assert_close(ablated, surgery(ids))
    assert not torch.allclose(ablated, model(ids))


def test_mean_ablation_replaces_the_head_by_its_mean_over_positions_per_sequence():
    model = tiny("decoder")
    ids = torch.randint(3, 40, (3, 6))
    name = "decoder.blocks.0.attn.hook_z"
    with capture(model, names=[name]) as clean:
        model(ids)
    edits = ablation_edits([("decoder.self", 0, 1, "mean")])
    with capture(model, names=[name, "decoder.blocks.0.hook_attn_out"], edits=edits) as trace:
        model(ids)
    z, z0 = trace[name], clean[name]
    expected = z0[:, 1].mean(dim=1, keepdim=True).expand_as(z0[:, 1])  # (B, T, d_head)
    torch.testing.assert_close(z[:, 1], expected)
    assert not torch.allclose(expected[0], expected[1])  # each sequence keeps its own mean
    torch.testing.assert_close(z[:, [0, 2, 3]], z0[:, [0, 2, 3]])
    # and the layer's output is W_O applied to the edited heads
    attn = model.decoder.blocks[0].attn
    B, H, Tq, dh = z.shape
    torch.testing.assert_close(
        trace["decoder.blocks.0.hook_attn_out"], attn.W_o(z.transpose(1, 2).reshape(B, Tq, H * dh))
    )


def test_heads_of_one_layer_share_a_hook_and_every_site_has_its_name():
    edits = ablation_edits(
        [
            ("encoder.self", 0, 1),
            ("decoder.cross", 1, 0, "mean"),
            ("decoder.cross", 1, 3, "zero"),
            ("decoder.self", 0, 2, "zero"),
        ]
    )
    assert sorted(edits) == [
        "decoder.blocks.0.attn.hook_z",
        "decoder.blocks.1.cross_attn.hook_z",
        "encoder.blocks.0.attn.hook_z",
    ]
    z = torch.randn(2, 4, 5, 8, dtype=torch.float64)
    out = edits["decoder.blocks.1.cross_attn.hook_z"](z)
    torch.testing.assert_close(out[:, 0], z[:, 0].mean(1, keepdim=True).expand(2, 5, 8))
    assert (out[:, 3] == 0).all()
    torch.testing.assert_close(out[:, 1:3], z[:, 1:3])
    model = tiny("seq2seq")
    src, tgt = torch.randint(3, 40, (1, 6)), torch.randint(3, 40, (1, 4))
    with capture(model, edits=edits):  # capture checks every name against the model
        model(src, target_ids=tgt)
    assert set(HOOK_Z) == {"encoder.self", "decoder.self", "decoder.cross"}


def test_edits_leave_their_input_alone():
    z = torch.randn(1, 4, 3, 2)
    before = z.clone()
    zero_head(1)(z)
    mean_head(2)(z)
    assert torch.equal(z, before)


def test_bad_ablations_are_errors_naming_the_problem():
    with pytest.raises(ValueError, match="site"):
        ablation_edits([("decoder.selfish", 0, 0)])
    with pytest.raises(ValueError, match="mode"):
        ablation_edits([("decoder.self", 0, 0, "noise")])
    with pytest.raises(ValueError, match=">= 0"):
        ablation_edits([("decoder.self", 0, -1)])
    model = tiny("decoder")
    with (
        pytest.raises(KeyError, match="hook"),
        capture(model, edits=ablation_edits([("decoder.self", 5, 0)])),
    ):
        pass
    with (
        pytest.raises(ValueError, match="4 heads"),
        capture(model, edits=ablation_edits([("decoder.self", 0, 4)])),
    ):
        model(torch.randint(3, 40, (1, 4)))
