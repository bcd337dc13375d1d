"""Activation patching (models/analysis/patching.py) on every model under test (the shipped
checkpoints, or the fixtures of the same ids) and on GPT-2 and Llama imported from random
`transformers` models: every cell of the fast sweep (batched, run from the patched block and
position on) against a naive run (one whole forward pass with one capture edit), the
identities exact patching must hold, the values against transformers' own forward hooks, and
attribution patching against a finite difference."""

from __future__ import annotations

import pytest
import torch

from models import capture, load_checkpoint
from models.analysis.patching import (
    HEAD_SITES,
    SITES,
    Inputs,
    Metric,
    _hook,
    _predicting_states,
    attribute,
    patch,
)
from models.hooks import hook_name
from tests.helpers import checkpoints_under_test, tiny

TOL = 2e-4
DIFF = 3  # the one position where clean and corrupted differ


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny forward passes: a second torch thread only waits on a busy machine (the app's
    engine sets one thread per worker too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """name -> model: every checkpoint under test, and GPT-2 / Llama imported from tiny
    random transformers models (name -> the HF model too, under "hf-<name>")."""
    folder, _ = checkpoints_under_test(lambda: tmp_path_factory.mktemp("checkpoints"))
    out = {
        p.name: load_checkpoint(p).model.eval()
        for p in sorted(folder.iterdir())
        if (p / "config.json").exists()
    }
    pytest.importorskip("transformers")
    from models.convert import import_checkpoint
    from tests.models.convert.conftest import build_hf

    imported = tmp_path_factory.mktemp("imported")
    for name in ("gpt2", "llama"):
        source = tmp_path_factory.mktemp(f"hf-{name}")
        out[f"hf-{name}"] = build_hf(name, source)
        out[name] = load_checkpoint(import_checkpoint(str(source), name, imported)).model.eval()
    return out


MODEL_NAMES = [
    "encoder-mini",
    "decoder-mini",
    "seq2seq-en-fr",
    "induction-2l",
    "rnn-en-fr",
    "gpt2",
    "llama",
]


def question(model, kind: str = "logit_diff") -> Inputs:
    """Random ids differing at one position (DIFF), two answer ids, the family's position."""
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    n = 9
    low = 5 if cfg.vocab_size > 40 else 3  # clear of the specials at the start

    def draw(k):
        return torch.randint(low, cfg.vocab_size, (k,), generator=g).tolist()

    clean = draw(n)
    if cfg.kind == "decoder" and cfg.bos_id is not None:
        clean[0] = cfg.bos_id
    corrupted = list(clean)
    corrupted[DIFF] = low + (clean[DIFF] - low + 7) % (cfg.vocab_size - low)
    target = None
    if cfg.kind == "seq2seq":
        target = torch.tensor([[cfg.bos_id, *draw(5)]])
    answer, wrong = draw(2)
    position = {"encoder": DIFF + 2, "decoder": n - 1, "seq2seq": 5}[cfg.kind]
    metric = Metric(kind, answer, wrong if kind == "logit_diff" else None, position)
    return Inputs(torch.tensor([clean]), torch.tensor([corrupted]), target, metric)


def naive(model, inp: Inputs, edits: dict) -> float:
    """m of one whole forward pass of the corrupted input with these capture edits."""
    with torch.inference_mode(), capture(model, names=[], edits=edits):
        h = _predicting_states(model, inp.corrupted, inp.target)
        return float(inp.metric.read(model, h[:, inp.metric.position])[0])


def clean_trace(model, inp: Inputs):
    with torch.inference_mode(), capture(model) as trace:
        _predicting_states(model, inp.clean, inp.target)
    return trace


def cell_edits(model, clean, site: str, group: str, layer: int, index: int) -> dict:
    """A naive patch of one cell: the clean value written into the whole run's hook."""
    name = _hook(site, group, layer)
    if site == "head_pattern":  # z = pattern_clean · V of this run
        store = {}
        pattern = clean[hook_name(group, layer, "pattern")]
        group_size = model.config.n_heads // (model.config.n_kv_heads or model.config.n_heads)

        def keep_v(v):
            store["v"] = v
            return v

        def write_z(z):
            z = z.clone()
            z[:, index] = pattern[:, index] @ store["v"][:, index // group_size]
            return z

        return {hook_name(group, layer, "v"): keep_v, name: write_z}
    value = clean[name]

    def write(x):
        x = x.clone()
        x[:, index] = value[:, index]
        return x

    return {name: write}


def sample(grid: torch.Tensor) -> list[tuple[int, int]]:
    """Cells of an (L, N) grid worth a naive run: the first and last layers at DIFF and at the
    last index, a middle one, and the grid's largest change."""
    L, N = grid.shape
    biggest = int((grid - grid[0, 0]).abs().argmax())
    cells = {(0, min(DIFF, N - 1)), (L - 1, N - 1), (L // 2, N // 2), divmod(biggest, N)}
    return sorted(cells)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_sweep_equals_naive_patched_runs(models, name):
    model = models[name]
    inp = question(model)
    result = patch(model, inp, list(SITES), chunk=6)  # two chunks of positions per layer
    clean = clean_trace(model, inp)
    swapped = Inputs(inp.corrupted, inp.clean, inp.target, inp.metric)
    assert result.clean == pytest.approx(naive(model, swapped, {}), abs=TOL)
    assert result.corrupted == pytest.approx(naive(model, inp, {}), abs=TOL)
    checked = 0
    for site, groups in result.values.items():
        for group, grid in groups.items():
            for layer, index in sample(grid):
                edits = cell_edits(model, clean, site, group, layer, index)
                want = naive(model, inp, edits)
                got = float(grid[layer, index])
                assert got == pytest.approx(want, abs=TOL), (site, group, layer, index)
                checked += 1
    assert checked > 0
    if model.config.architecture == "rnn":
        assert set(result.values) == {"memory"}
        assert "head_z" in result.reasons and "resid_pre" in result.reasons


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "rnn-en-fr"])
def test_resid_pre_of_layer_0_at_the_only_differing_position_restores_the_clean_metric(
    models, name
):
    model = models[name]
    inp = question(model)
    result = patch(model, inp, ["resid_pre"])
    stack = model.config.stacks[0]
    restored = float(result.values["resid_pre"][stack][0, DIFF])
    assert result.clean != pytest.approx(result.corrupted, abs=1e-3)
    effect = (restored - result.corrupted) / (result.clean - result.corrupted)
    assert effect == pytest.approx(1.0, abs=1e-4)
    others = [t for t in range(inp.clean.shape[1]) if t != DIFF]
    # the other positions hold the same tokens: nothing to restore there
    assert torch.allclose(
        result.values["resid_pre"][stack][0, others], torch.tensor(result.corrupted).double()
    )


@pytest.mark.parametrize("name", ["decoder-mini", "induction-2l", "gpt2", "llama"])
def test_decoder_positions_before_the_first_difference_have_effect_0_at_every_layer(models, name):
    model = models[name]
    inp = question(model)
    result = patch(model, inp, ["resid_pre", "attn_out", "mlp_out"])
    clean = clean_trace(model, inp)
    for site, groups in result.values.items():
        grid = groups["decoder"]
        assert torch.allclose(grid[:, :DIFF], torch.tensor(result.corrupted).double(), atol=1e-6)
        # a naive run agrees, at every layer (the sweep skips cells it proves unchanged)
        for layer in range(grid.shape[0]):
            edits = cell_edits(model, clean, site, "decoder", layer, DIFF - 1)
            assert naive(model, inp, edits) == pytest.approx(result.corrupted, abs=1e-5)


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "rnn-en-fr"])
def test_every_head_at_every_position_of_the_last_layer_equals_its_attention_output(models, name):
    """At the last layer only the read position's output reaches the metric, so patching
    attn_out (cross_out) there alone equals writing every head's clean z at every position."""
    model = models[name]
    cfg = model.config
    inp = question(model)
    clean = clean_trace(model, inp)
    stack = "encoder" if cfg.kind == "encoder" else "decoder"
    pairs = [(f"{stack}.self", "attn_out")]
    if cfg.kind == "seq2seq":
        pairs.append(("decoder.cross", "cross_out"))
    result = patch(model, inp, [site for _, site in pairs])
    last = cfg.depth(stack) - 1
    for attention, site in pairs:
        z = hook_name(attention, last, "z")
        joint = naive(model, inp, {z: lambda x, z=z: clean[z].expand_as(x).clone()})
        got = float(result.values[site][stack][last, inp.metric.position])
        assert got == pytest.approx(joint, abs=TOL)
        assert joint != pytest.approx(result.corrupted, abs=1e-4)  # the patch did something


def test_head_z_and_attn_out_match_transformers_forward_hooks_on_imported_gpt2(models):
    """The values patched (each head's input to c_proj, each attention module's output) and
    the metric after patching them, computed in transformers' GPT-2 with its own hooks."""
    ours, hf = models["gpt2"], models["hf-gpt2"]
    inp = question(ours)
    H, d = ours.config.n_heads, ours.config.d_head
    blocks = hf.transformer.h

    def hf_run(ids, z_patch=None, out_patch=None):
        """(per layer: z (H, T, d), attn output (T, D)), metric; patches: (layer, head or
        position, clean value)."""
        seen, hooks = {}, []
        for li, block in enumerate(blocks):

            def pre(module, args, li=li):
                x = args[0]
                if z_patch and z_patch[0] == li:
                    x = x.clone().view(1, -1, H, d)
                    x[0, :, z_patch[1]] = z_patch[2]
                    x = x.view(1, -1, H * d)
                seen[("z", li)] = x[0].view(-1, H, d).transpose(0, 1).clone()
                return (x,)

            def post(module, args, output, li=li):
                out = output[0]
                if out_patch and out_patch[0] == li:
                    out = out.clone()
                    out[0, out_patch[1]] = out_patch[2]
                seen[("attn", li)] = out[0].clone()
                return (out, *output[1:])

            hooks.append(block.attn.c_proj.register_forward_pre_hook(pre))
            hooks.append(block.attn.register_forward_hook(post))
        try:
            with torch.no_grad():
                logits = hf(ids).logits[:, inp.metric.position]
        finally:
            for h in hooks:
                h.remove()
        return seen, float(inp.metric(logits)[0])

    hf_clean, m_clean = hf_run(inp.clean)
    _, m_corrupted = hf_run(inp.corrupted)
    trace = clean_trace(ours, inp)
    for li in range(len(blocks)):
        z = trace[hook_name("decoder.self", li, "z")][0]
        assert torch.allclose(z, hf_clean[("z", li)], atol=1e-4)
        attn_out = trace[hook_name("decoder", li, "attn_out")][0]
        assert torch.allclose(attn_out, hf_clean[("attn", li)], atol=1e-4)

    result = patch(ours, inp, ["head_z", "attn_out"])
    assert result.clean == pytest.approx(m_clean, abs=TOL)
    assert result.corrupted == pytest.approx(m_corrupted, abs=TOL)
    for li in range(len(blocks)):
        for h in range(H):
            _, m = hf_run(inp.corrupted, z_patch=(li, h, hf_clean[("z", li)][h]))
            assert float(result.values["head_z"]["decoder.self"][li, h]) == pytest.approx(
                m, abs=TOL
            )
        for t in range(inp.clean.shape[1]):
            _, m = hf_run(inp.corrupted, out_patch=(li, t, hf_clean[("attn", li)][t]))
            assert float(result.values["attn_out"]["decoder"][li, t]) == pytest.approx(m, abs=TOL)


@pytest.mark.parametrize("site", ["resid_pre", "mlp_out", "head_z", "head_pattern"])
def test_attribution_is_the_derivative_along_the_clean_minus_corrupted_difference(site):
    """Attribution patching is first order: each cell equals d/dε m(a_corrupted + ε (a_clean −
    a_corrupted)) at ε = 0, here a central finite difference in float64."""
    torch.manual_seed(0)
    model = tiny("decoder")
    inp = question(model)
    approx = attribute(model, inp, [site])
    exact = patch(model, inp, [site])
    assert approx.corrupted == pytest.approx(exact.corrupted, abs=1e-9)
    assert approx.clean == pytest.approx(exact.clean, abs=1e-9)
    clean = clean_trace(model, inp)
    group = "decoder.self" if site in HEAD_SITES else "decoder"
    grid = approx.values[site][group]
    eps = 1e-4
    for layer in range(grid.shape[0]):
        for index in range(grid.shape[1]):
            if site == "head_pattern":
                store = {}
                pattern = clean[hook_name(group, layer, "pattern")]

                def keep_v(v, store=store):
                    store["v"] = v
                    return v

                def shifted(e, layer=layer, index=index, store=store, pattern=pattern):
                    def edit(z):
                        z = z.clone()
                        z[:, index] += e * (
                            (pattern[:, index] @ store["v"][:, index]) - z[:, index]
                        )
                        return z

                    return {
                        hook_name(group, layer, "v"): keep_v,
                        hook_name(group, layer, "z"): edit,
                    }
            else:
                name = _hook(site, group, layer)
                value = clean[name]

                def shifted(e, name=name, value=value, index=index):
                    def edit(x):
                        x = x.clone()
                        x[:, index] += e * (value[:, index] - x[:, index])
                        return x

                    return {name: edit}

            slope = (naive(model, inp, shifted(eps)) - naive(model, inp, shifted(-eps))) / (2 * eps)
            got = float(grid[layer, index]) - approx.corrupted
            assert got == pytest.approx(slope, rel=1e-4, abs=1e-7), (layer, index)
