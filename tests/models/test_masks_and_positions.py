"""Masks, softmax rows, positional encodings and RoPE against their formulas."""

import math

import torch

from models import capture
from models.positional import apply_rope, rope_angles, sinusoidal_table
from tests.helpers import tiny


def patterns(trace, stack="encoder", site="attn"):
    return [
        v
        for k, v in trace.tensors.items()
        if k.startswith(stack) and k.endswith(f"{site}.hook_pattern")
    ]


def test_every_attention_row_sums_to_one():
    model = tiny("seq2seq")
    src, tgt = torch.randint(3, 40, (2, 9)), torch.randint(3, 40, (2, 6))
    src_ok = torch.ones(2, 9, dtype=torch.bool)
    src_ok[0, 6:] = False
    with capture(model) as trace:
        model(src, src_ok, tgt)
    pats = [v for k, v in trace.tensors.items() if k.endswith("hook_pattern")]
    assert len(pats) == 2 + 2 * 2  # encoder self x2, decoder self x2, decoder cross x2
    for p in pats:
        torch.testing.assert_close(p.sum(-1), torch.ones_like(p.sum(-1)))


def test_causal_mask_zeroes_exactly_the_strict_upper_triangle():
    model = tiny("decoder")
    with capture(model) as trace:
        model(torch.randint(3, 40, (1, 8)))
    for p in patterns(trace, "decoder"):
        upper = torch.ones(8, 8, dtype=torch.bool).triu(1)
        assert (p[..., upper] == 0).all()
        assert (p[..., ~upper] > 0).all()  # and nothing else is zero
    mask = trace["decoder.blocks.0.attn.hook_mask"][0]
    assert torch.equal(mask, torch.ones(8, 8, dtype=torch.bool).tril())


def test_padded_keys_get_zero_weight():
    model = tiny("encoder")
    ids = torch.randint(5, 40, (2, 7))
    ok = torch.ones(2, 7, dtype=torch.bool)
    ok[1, 4:] = False
    with capture(model) as trace:
        model.encode(ids, ok)
    for p in patterns(trace, "encoder"):
        assert (p[1, :, :, 4:] == 0).all()
        assert (p[1, :, :, :4] > 0).all()
        assert (p[0] > 0).all()


def test_sinusoidal_table_matches_the_formula():
    d, n = 16, 50
    table = sinusoidal_table(n, d)
    for pos in (0, 1, 7, 49):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert math.isclose(table[pos, 2 * i], math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[pos, 2 * i + 1], math.cos(angle), abs_tol=1e-6)


def test_rope_angles_match_the_formula():
    d_head, base = 8, 10000.0
    angles = rope_angles(torch.arange(20), d_head, base)
    assert angles.shape == (20, d_head // 2)
    for pos in (0, 3, 19):
        for i in range(d_head // 2):
            assert math.isclose(angles[pos, i], pos * base ** (-2 * i / d_head), rel_tol=1e-6)


def test_rope_rotation_is_a_complex_multiplication_per_pair():
    x = torch.randn(5, 8, dtype=torch.float64)
    angles = rope_angles(torch.arange(5), 8).double()
    as_complex = torch.view_as_complex(x.view(5, 4, 2).contiguous())
    expected = torch.view_as_real(as_complex * torch.polar(torch.ones_like(angles), angles))
    torch.testing.assert_close(apply_rope(x, angles), expected.flatten(-2))


def test_rotated_dot_product_depends_only_on_relative_position():
    """q·k after rotating q to position m and k to position n is a function of m − n."""
    d_head = 16
    q, k = torch.randn(d_head, dtype=torch.float64), torch.randn(d_head, dtype=torch.float64)
    n_pos = 40
    angles = rope_angles(torch.arange(n_pos), d_head).double()
    rq = apply_rope(q.expand(n_pos, d_head), angles)  # q placed at every position
    rk = apply_rope(k.expand(n_pos, d_head), angles)
    scores = rq @ rk.T  # scores[m, n]
    by_offset: dict[int, list[float]] = {}
    for m in range(n_pos):
        for n in range(n_pos):
            by_offset.setdefault(m - n, []).append(float(scores[m, n]))
    for offset, values in by_offset.items():
        assert max(values) - min(values) < 1e-5, offset  # angles are float32
    assert len({round(v[0], 6) for v in by_offset.values()}) > n_pos  # not trivially constant


def test_decoder_attention_is_unchanged_when_text_is_appended():
    model = tiny("decoder")
    prefix = torch.randint(3, 40, (1, 6))
    longer = torch.cat([prefix, torch.randint(3, 40, (1, 4))], dim=1)
    with capture(model) as short_trace:
        model(prefix)
    with capture(model) as long_trace:
        model(longer)
    for name, p in short_trace.tensors.items():
        if name.endswith("hook_pattern"):
            torch.testing.assert_close(long_trace[name][..., :6, :6], p)


def test_encoder_attention_changes_when_text_is_appended():
    model = tiny("encoder")
    prefix = torch.randint(5, 40, (1, 6))
    longer = torch.cat([prefix, torch.randint(5, 40, (1, 4))], dim=1)
    with capture(model) as short_trace:
        model.encode(prefix)
    with capture(model) as long_trace:
        model.encode(longer)
    name = "encoder.blocks.0.attn.hook_pattern"
    assert not torch.allclose(long_trace[name][..., :6, :6], short_trace[name])
