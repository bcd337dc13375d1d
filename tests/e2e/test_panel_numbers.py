"""What a student reads off the lesson's and /block's panels, checked against an independent
API call or the formula the panel states: every key on step 7's axis, the standardised
statistics against σ/√(σ² + ε), step 8's rows by the token each position writes, SwiGLU's unit
in its parts, the activation bands, /math's QKᵀ from the rotated Q and K and its concat card.
Each chart's labels must lie inside its own figure and its legend clear of its plot area."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.serialize import decode_f16
from tests.e2e.test_lesson import at_step
from tests.e2e.urls import post_json

pytestmark = pytest.mark.e2e

# The tick labels of a figure's axis that a reader sees: inside its figure's box (a figure
# wider than its box is cut off by the next one) and inside its own svg.
VISIBLE_TICKS = """(plot, axis) => {
  const box = (plot.closest('.matrix') || plot).getBoundingClientRect();
  const svg = plot.querySelector('.main-svg').getBoundingClientRect();
  const left = Math.max(box.left, svg.left) - 1, right = Math.min(box.right, svg.right) + 1;
  const inside = (r) => r.width > 0 && r.left >= left && r.right <= right
    && r.top >= svg.top - 1 && r.bottom <= svg.bottom + 1;
  return [...plot.querySelectorAll(`.${axis}tick text`)]
    .filter((t) => inside(t.getBoundingClientRect())).map((t) => t.textContent);
}"""
# Whether the legend (if any) keeps off the plot area, where it would hide the tops of bars.
LEGEND_CLEAR = """(plot) => {
  const legend = plot.querySelector('.legend');
  if (!legend) return true;
  const l = legend.getBoundingClientRect(), a = plot.querySelector('.nsewdrag').getBoundingClientRect();
  return l.bottom <= a.top + 1 || l.top >= a.bottom - 1 || l.right <= a.left + 1 || l.left >= a.right - 1;
}"""
TRACES = "(plot) => plot.data.map((t) => ({name: t.name, y: t.y ? Array.from(t.y) : null, z: t.z || null}))"


def label(t: dict) -> str:
    """A token as the charts label it: its text, ★ after a special token."""
    return t["text"].strip() + (" ★" if t["special"] else "")


def settled(ui, plot, axis: str, expected: list[str]) -> list[str]:
    """The visible ticks, once the figure has followed its div's width (a resize is debounced)."""
    seen = []
    for _ in range(30):
        seen = plot.evaluate(VISIBLE_TICKS, axis)
        if seen == expected:
            break
        ui.page.wait_for_timeout(100)
    return seen


def figure_plot(ui, scope: str, title: str):
    return ui.page.locator(
        f"{scope} .matrix", has=ui.page.locator(".matrix-title", has_text=title)
    ).locator(".js-plotly-plot")


def panel_plot(ui, scope: str, heading: str):
    """The figure of the panel whose heading holds `heading`."""
    has = ui.page.locator("h2", has_text=heading)
    return ui.page.locator(f"{scope} section.panel", has=has).locator(".js-plotly-plot")


def token_charts(ui, scope: str):
    """The charts over the tokens of a panel: those whose x ticks are token labels."""
    plots = ui.page.locator(f"{scope} .js-plotly-plot")
    return [
        plots.nth(i)
        for i in range(plots.count())
        if plots.nth(i).evaluate(
            "p => p.layout.xaxis && p.layout.xaxis.tickmode === 'array' && p.data[0].type === 'bar'"
        )
    ]


def check_charts_over_tokens(ui, scope: str, tokens: list[dict]) -> int:
    expected = [label(t) for t in tokens]
    charts = token_charts(ui, scope)
    for plot in charts:
        assert settled(ui, plot, "x", expected) == expected
        assert plot.evaluate(LEGEND_CLEAR), "the legend hangs over the plot"
    return len(charts)


def arr(x) -> np.ndarray:
    return (decode_f16(x) if isinstance(x, dict) else np.array(x)).astype(np.float64)


def block(app_server, **body) -> dict:
    return post_json(app_server.url, "/block", body)


def js_exp(x: float) -> str:
    """x as JavaScript's toExponential() writes it (1e-5, 1.5e-6)."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def test_lesson_step7_scores_show_every_key_and_the_served_scores(ui, app_server):
    text = "the cat sat on the mat"
    ui.goto(f"/lesson?step=7&model=decoder-mini&text={text.replace(' ', '+')}&layer=0&head=0")
    at_step(ui, 7)
    tokens = post_json(app_server.url, "/tokenize", {"model": "decoder-mini", "text": text})[
        "tokens"
    ]
    keys = [label(t) for t in tokens]
    for title in ("before the softmax", "after the softmax"):
        plot = figure_plot(ui, "#step-body", title)
        assert settled(ui, plot, "x", keys) == keys, title
    served = post_json(
        app_server.url,
        "/attention",
        {"model": "decoder-mini", "text": text, "layers": [0], "heads": [0], "include": ["scores"]},
    )
    want = np.array(served["scores"]["decoder.self"][0][0], dtype=float)  # None -> nan: masked
    shown = figure_plot(ui, "#step-body", "before the softmax").evaluate(TRACES)[0]["z"]
    np.testing.assert_allclose(
        np.array(shown, dtype=float), want, atol=5e-3
    )  # half floats on the page
    assert np.isnan(want[0, -1]), "the masked upper triangle is on the axis"


def check_standardised(ui, scope: str, served: dict, norm: str):
    n = served["normalization"][norm]
    stream = arr(n["stream"])
    ln = n["kind"] == "layernorm"
    spread = np.sqrt(stream.var(-1)) if ln else np.sqrt((stream**2).mean(-1))
    formula = spread / np.sqrt(spread**2 + n["eps"])  # σ/√(σ²+ε), or the RMS's
    after = figure_plot(ui, scope, "standardised:").evaluate(TRACES)
    bar = next(t for t in after if t["name"] == ("standard deviation" if ln else "RMS"))
    np.testing.assert_allclose(bar["y"], formula, atol=2e-3)
    caption = ui.page.locator(
        f"{scope} section.panel", has_text="Each token's statistics"
    ).first.inner_text()
    assert f"ε = {js_exp(n['eps'])}" in caption
    stated = n["stats"]["normalized"]["std" if ln else "rms"]
    assert f"here {min(stated):.4f} to {max(stated):.4f}" in caption


def test_lesson_step5_standardised_std_is_the_formula_and_every_chart_reads_whole(ui, app_server):
    """The lesson's narrow Add & Norm panel on encoder-mini (LayerNorm): the standardised std is
    σ/√(σ² + ε) of the stream (not 1, not the stream's own std), ε is stated with its value,
    and no chart over the tokens loses a label or hides its bars under its legend."""
    text = "i love machine learning"
    ui.goto(f"/lesson?step=5&model=encoder-mini&text={text.replace(' ', '+')}&layer=0")
    at_step(ui, 5)
    served = block(app_server, model="encoder-mini", text=text, layer=0, batch=[])
    shown = ui.page.locator("#step-body h2", has_text="Add & Norm, per token").inner_text()
    norm = next(name for name in served["normalization"] if f" {name} " in shown)
    check_standardised(ui, "#step-body", served, norm)
    tokens = served["tokens"][served["reads"]]
    assert check_charts_over_tokens(ui, "#step-body", tokens) >= 3


def test_block_swiglu_unit_bands_and_rmsnorm_read_true(ui, app_server):
    """/block on decoder-mini (RMSNorm, SwiGLU): every chart over the tokens shows the first
    token's label and a clear legend; the unit followed is drawn as W₁x, silu(W₁x), W₃x and
    their product, each the served column; the activation bands count the served units."""
    text = "the black cat ate the mouse"
    ui.goto(f"/block?model=decoder-mini&text={text.replace(' ', '+')}&layer=1")
    ui.wait("#ffn-panel .main-svg", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")
    served = block(app_server, model="decoder-mini", text=text, layer=1, format="f16")
    tokens = served["tokens"][served["reads"]]
    assert check_charts_over_tokens(ui, "main", tokens) >= 5
    shown = ui.page.locator("#norm-panel h2", has_text="Add & Norm, per token").inner_text()
    check_standardised(
        ui, "#norm-panel", served, next(n for n in served["normalization"] if f" {n} " in shown)
    )

    f = served["ffn"]
    unit_title = ui.page.locator("#ffn-panel h2", has_text="across the sentence").inner_text()
    u = int(unit_title.split()[1])
    parts = panel_plot(ui, "#ffn-panel", "across the sentence")
    traces = {t["name"]: t["y"] for t in parts.evaluate(TRACES)}
    assert list(traces) == ["W₁x", "silu(W₁x)", "W₃x", "silu(W₁x)·W₃x"]
    for name, key in [("W₁x", "pre"), ("W₃x", "up"), ("silu(W₁x)·W₃x", "post")]:
        np.testing.assert_allclose(traces[name], arr(f[key])[:, u], atol=1e-6, err_msg=name)
    pre = arr(f["pre"])[:, u]
    np.testing.assert_allclose(traces["silu(W₁x)"], pre / (1 + np.exp(-pre)), rtol=2e-3, atol=2e-3)

    check_bands(ui, "#ffn-panel", arr(f["post"]), relu=False)


def check_bands(ui, scope: str, post: np.ndarray, relu: bool, zeroed=None):
    plot = panel_plot(ui, scope, "How strongly the units fire")
    bands = plot.evaluate(TRACES)
    a = np.abs(post)
    if relu:
        inside = [a == 0, (a > 0) & (a < 0.1), (a >= 0.1) & (a < 1), a >= 1]
    else:
        inside = [a < 0.01, (a >= 0.01) & (a < 0.1), (a >= 0.1) & (a < 1), a >= 1]
    want = [m.mean(-1) for m in inside]
    assert len(bands) == 4
    assert bands[0]["name"] == ("exactly 0 (shut)" if relu else "|a| < 0.01")
    for got, expected in zip(bands, want, strict=True):
        np.testing.assert_allclose(got["y"], expected, atol=1e-9, err_msg=got["name"])
    if zeroed is not None:  # ReLU's exact zeros against the server's own count
        np.testing.assert_allclose(bands[0]["y"], zeroed, atol=1.5 / post.shape[1])


def test_lesson_step6_relu_bands_count_the_exact_zeros(ui, app_server):
    text = "the black cat ate the mouse"
    ui.goto(f"/lesson?step=6&model=seq2seq-en-fr&text={text.replace(' ', '+')}&layer=0")
    at_step(ui, 6)
    served = block(app_server, model="seq2seq-en-fr", text=text, layer=0, format="f16")
    f = served["ffn"]
    assert f["activation"] == "relu"
    check_bands(ui, "#step-body", arr(f["post"]), relu=True, zeroed=f["zeroed"])


def test_lesson_step8_rows_are_the_french_tokens_written(ui, app_server):
    """Row i of the cross-attention reads French token i (<s> first) and writes token i + 1:
    the rows are labelled by the token written, and the last one writes </s>."""
    text = "the black cat ate the mouse"
    ui.goto(f"/lesson?step=8&model=seq2seq-en-fr&text={text.replace(' ', '+')}")
    at_step(ui, 8)
    layer = (
        app_server.models["seq2seq-en-fr"].get("n_decoder_layers")
        or app_server.models["seq2seq-en-fr"]["n_layers"]
    )
    served = post_json(
        app_server.url,
        "/attention",
        {"model": "seq2seq-en-fr", "text": text, "layers": [layer - 1], "heads": [0]},
    )
    target, source = served["tokens"]["target"], served["tokens"]["source"]
    assert target[0]["text"] == "<s>"
    written = [label(t) for t in target[1:]] + [label(source[-1])]
    plot = panel_plot(ui, "#step-body", "Head 0")
    assert settled(ui, plot, "y", written) == written
    assert settled(ui, plot, "x", [label(t) for t in source]) == [label(t) for t in source]
    z = plot.evaluate(TRACES)[0]["z"]
    np.testing.assert_allclose(z, served["attention"]["decoder.cross"][0][0], atol=2e-3)
    left = ui.page.eval_on_selector_all(
        "#step-body svg.head-view g.tok[data-side='q'] > text", "ts => ts.map(t => t.textContent)"
    )  # the head view's French column names the same tokens
    assert left == [t["text"].strip() for t in target[1:]] + [source[-1]["text"]]


def test_math_scores_are_the_rotated_qk_and_the_concat_card_is_whole(ui, app_server):
    """On a RoPE model the QKᵀ card is Q′K′ᵀ: its cells times 1/√dₖ are the served scores (from
    the rotated q and k; the unrotated ones would give other numbers). The concat card names
    head₀ … head_{h−1} with real subscripts and is drawn without scrolling: every head's Z."""
    text = "the cat sat on the mat"
    ui.goto(f"/math?model=decoder-mini&text={text.replace(' ', '+')}&layer=1&head=2")
    ui.wait("#row-detail table", state="attached")
    info = app_server.models["decoder-mini"]
    H, dk = info["n_heads"], info["d_head"]
    served = post_json(
        app_server.url,
        "/attention",
        {"model": "decoder-mini", "text": text, "layers": [1], "include": ["scores", "qkv"]},
    )
    scores = np.array(served["scores"]["decoder.self"][0][2], dtype=float)
    qk_card = ui.page.locator(
        "section.step", has=ui.page.locator("h2", has_text="Compare every query")
    )
    qk = np.array(qk_card.locator(".js-plotly-plot").evaluate(TRACES)[0]["z"], dtype=float)
    seen = ~np.isnan(scores)
    np.testing.assert_allclose((qk / math.sqrt(dk))[seen], scores[seen], atol=2e-2, rtol=1e-2)

    card = ui.page.locator(
        "section.step", has=ui.page.locator("h2", has_text="Concatenate the heads")
    )
    sub = "₀₁₂₃₄₅₆₇₈₉"
    last = "".join(sub[int(d)] for d in str(H - 1))
    assert card.locator("code.formula").inner_text() == f"concat(head₀ … head{last})·W_O"
    assert f"concat(Z₀ … Z{last})" in card.inner_text()
    ui.page.wait_for_function(
        "(card) => card.querySelector('.js-plotly-plot .main-svg')", arg=card.element_handle()
    )
    assert ui.page.evaluate("() => window.scrollY") == 0  # drawn without being scrolled to
    concat = np.array(card.locator(".js-plotly-plot").evaluate(TRACES)[0]["z"], dtype=float)
    z = np.array(served["qkv"]["decoder.self"]["z"][0], dtype=float)  # [H][T][d_head]
    np.testing.assert_allclose(concat, np.concatenate(list(z), axis=-1), atol=2e-3)


def test_lesson_step3_concat_card_is_whole_with_its_subscripts(ui, app_server):
    """The lesson's one-head arithmetic (encoder-mini) shows the same concat card: head₀ …
    head_{h−1} in subscripts, drawn before anyone scrolls to it, every head's Z side by side."""
    ui.goto("/lesson?step=3&model=encoder-mini&text=i+love+machine+learning&layer=0&head=1")
    at_step(ui, 3)
    H = app_server.models["encoder-mini"]["n_heads"]
    last = "".join("₀₁₂₃₄₅₆₇₈₉"[int(d)] for d in str(H - 1))
    card = ui.page.locator(
        "section.step", has=ui.page.locator("h2", has_text="Concatenate the heads")
    )
    assert card.locator("code.formula").inner_text() == f"concat(head₀ … head{last})·W_O"
    assert f"concat(Z₀ … Z{last})" in card.inner_text()
    ui.page.wait_for_function(
        "(card) => card.querySelector('.js-plotly-plot .main-svg')", arg=card.element_handle()
    )
    assert ui.page.evaluate("() => window.scrollY") == 0
    served = post_json(
        app_server.url,
        "/attention",
        {
            "model": "encoder-mini",
            "text": "i love machine learning",
            "layers": [0],
            "include": ["qkv"],
        },
    )
    z = np.array(served["qkv"]["encoder.self"]["z"][0], dtype=float)  # [H][T][d_head]
    concat = np.array(card.locator(".js-plotly-plot").evaluate(TRACES)[0]["z"], dtype=float)
    np.testing.assert_allclose(concat, np.concatenate(list(z), axis=-1), atol=2e-3)
