"""The decoding player (SSE, step by step, to EOS) and the RoPE view."""

from __future__ import annotations

import json
import math
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.urls import post_json

pytestmark = pytest.mark.e2e

SOURCE = "the black cat ate the mouse"
TRANSLATION = "le chat noir a mangé la souris"


def step_counter(page) -> tuple[int, int]:
    text = page.inner_text("#step-counter")  # "step 3 / 8" (… while streaming)
    shown, total = text.replace("step", "").replace("…", "").split("/")
    return int(shown), int(total)


def test_decoding_player_steps_the_translation_to_eos(ui, app_server):
    if not app_server.shipped:
        pytest.skip("needs the shipped (trained) checkpoint seq2seq-en-fr in checkpoints/")
    ui.goto(f"/decode?model=seq2seq-en-fr&text={SOURCE.replace(' ', '+')}&step=0")
    ui.wait("#step-counter")
    ui.page.wait_for_function(
        "() => !document.querySelector('#step-counter').textContent.includes('…')"
    )
    shown, total = step_counter(ui.page)
    assert shown == 0 and total >= 7
    for i in range(1, total + 1):
        ui.page.click("#step-button")
        ui.page.wait_for_function(
            f"() => document.querySelector('#step-counter').textContent.startsWith('step {i} ')"
        )
        # the alignment grows one row per step, with the top-k bars of this step
        rows = ui.page.evaluate("() => document.querySelector('#align').data[0].z.length")
        assert rows == i
        assert f"step {i}:" in ui.page.text_content("#topk .gtitle")
        if i == 3:
            ui.shot("decode-step-3")
    ui.wait("#output-text")
    assert ui.page.inner_text("#output-text") == TRANSLATION
    assert "EOS" in ui.page.inner_text("#final-text")
    self_rows = ui.page.evaluate("() => document.querySelector('#self').data[0].z")
    for t, row in enumerate(self_rows):  # the triangle: step t sees <s> and the t tokens before
        assert all(v is not None for v in row[: t + 1]) and all(v is None for v in row[t + 1 :])
    ui.shot("decode-eos")
    # play from the start, pause, and step back
    ui.page.click("#reset-button")
    assert step_counter(ui.page)[0] == 0
    ui.page.click("#play-button")
    ui.page.wait_for_function(
        "() => /^step [2-9]/.test(document.querySelector('#step-counter').textContent)"
    )
    ui.page.click("#play-button")  # pause
    paused = step_counter(ui.page)[0]
    ui.page.wait_for_timeout(1000)
    assert step_counter(ui.page)[0] == paused
    ui.page.click("#back-button")
    assert step_counter(ui.page)[0] == paused - 1
    assert parse_qs(urlparse(ui.page.url).query)["step"] == [str(paused - 1)]


def test_sampling_controls_reach_the_stream(ui, app_server):
    ui.goto(
        "/decode?model=decoder-mini&text=the+cat&strategy=sample&temperature=0.7&top_k=5&top_p=0.9&seed=7&max_new_tokens=6&step=0"
    )
    done = "() => /^step 0 \\/ [1-6]$/.test(document.querySelector('#step-counter').textContent)"
    ui.page.wait_for_function(done)  # streamed to the end (EOS or 6 tokens), shown at step 0
    assert ui.page.is_checked("#strategy-sample")
    assert ui.page.input_value("#top-k") == "5" and ui.page.input_value("#seed") == "7"
    stream = [u for u in ui.requests if "/generate/stream" in u]
    q = parse_qs(urlparse(stream[-1]).query)
    assert q["strategy"] == ["sample"] and q["temperature"] == ["0.7"] and q["top_k"] == ["5"]
    assert q["top_p"] == ["0.9"] and q["seed"] == ["7"] and q["max_new_tokens"] == ["6"]
    ui.page.keyboard.press("ArrowRight")
    ui.page.wait_for_function(
        "() => document.querySelector('#step-counter').textContent.startsWith('step 1 ')"
    )
    first = ui.page.text_content("#topk .gtitle")
    # same seed, same output: generate again
    ui.page.click("#run-button")
    ui.page.wait_for_function(
        "() => !document.querySelector('#step-counter').textContent.includes('…')"
    )
    ui.page.click("#reset-button")
    ui.page.click("#step-button")
    ui.page.wait_for_function(
        "() => document.querySelector('#step-counter').textContent.startsWith('step 1 ')"
    )
    assert ui.page.text_content("#topk .gtitle") == first
    # greedy switches the sampling knobs off
    ui.page.click("label:has(#strategy-greedy)")
    assert ui.page.is_disabled("#temperature") and ui.page.is_disabled("#seed")


def test_rope_relative_matrix_is_constant_along_diagonals(ui, app_server):
    rope_models = [m for m, info in app_server.models.items() if info["positional"] == "rope"]
    ui.goto(f"/rope?model={rope_models[0]}&positions=32", wait_for="#relative .main-svg")
    ui.wait("#relative-sin .main-svg")
    z = ui.page.evaluate("() => document.querySelector('#relative').data[0].z")
    assert len(z) == 32 and len(z[0]) == 32
    for d in range(-31, 32):
        diag = [z[m][m - d] for m in range(32) if 0 <= m - d < 32]
        assert max(diag) - min(diag) < 2e-3, f"diagonal m-n={d} varies"
    s = ui.page.evaluate("() => document.querySelector('#relative-sin').data[0].z")
    spread = max(
        max(s[m][m - d] for m in range(32) if 0 <= m - d < 32)
        - min(s[m][m - d] for m in range(32) if 0 <= m - d < 32)
        for d in range(-30, 31)
    )
    assert spread > 1e-3  # sinusoidal: not a function of m − n alone
    # the angle table is θᵢ·m (mod 2π), θᵢ = base^(−2i/d_head), from the model's base
    angles = ui.page.evaluate("() => document.querySelector('#angles').data[0].z")
    d_head = app_server.models[rope_models[0]]["d_head"]
    with urllib.request.urlopen(
        f"{app_server.url}/api/v1/models/{rope_models[0]}/positions?n=1"
    ) as r:
        base = json.load(r)["rope"]["base"]  # the model's config
    assert len(angles) == 32 and len(angles[0]) == d_head // 2
    for m, row in enumerate(angles):
        for i, a in enumerate(row):
            want = (m * base ** (-2 * i / d_head)) % (2 * math.pi)
            gap = abs(a - want) % (2 * math.pi)
            assert min(gap, 2 * math.pi - gap) < 2e-3, (m, i, a, want)
    ui.page.fill("#m-slider", "9")
    ui.page.dispatch_event("#m-slider", "input")
    assert "m = 9" in ui.page.inner_text("#pair-note")
    ui.shot("rope-relative")


def test_stream_errors_reach_the_banner(ui):
    ui.allowed_console = ("status of 422", "EventSource", "text/event-stream")
    ui.goto("/decode?model=decoder-mini&text=the+cat&max_new_tokens=999")
    ui.wait("#error-banner")
    message = ui.page.inner_text("#error-banner")
    assert "422" in message and "max_new_tokens" in message


def test_after_play_the_lens_shows_the_first_disagreement_or_the_step_looked_at(ui, app_server):
    model = "seq2seq-en-fr"
    ui.goto(f"/decode?model={model}&text={SOURCE.replace(' ', '+')}")  # plays to the end
    ui.wait("#output-text")
    ui.page.wait_for_function("() => document.querySelector('#lens-note').textContent !== ''")
    # the server's lens at every step, asked directly: the first step where a block before
    # the output has another top token than the output's
    ids = [
        s["token"]["id"]
        for s in post_json(app_server.url, "/generate", {"model": model, "text": SOURCE})["steps"]
    ]
    bos = post_json(app_server.url, "/logit-lens", {"model": model, "text": SOURCE})["tokens"][
        "target"
    ][0]["id"]
    lens = post_json(
        app_server.url,
        "/logit-lens",
        {
            "model": model,
            "text": SOURCE,
            "target_ids": [bos, *ids[:-1]],
            "positions": list(range(len(ids))),
        },
    )
    blocks = [li for li, name in enumerate(lens["layers"]) if name != "embed"][:-1]
    disagree = [
        p + 1
        for p in range(len(ids))
        if any(lens["top_ids"][li][p][0] != lens["final_ids"][p] for li in blocks)
    ]
    want = disagree[0] if disagree else 1
    assert step_counter(ui.page) == (len(ids), len(ids))  # the player shows the last step
    assert ui.page.get_attribute("#lens table", "aria-label") == f"logit lens at step {want}"
    if disagree:
        assert f"Step {want}: the first step where a block" in ui.page.inner_text("#lens-note")
    # a step the user looked at (a click on its token), then play on: the lens stays on it
    looked = len(ids) - 2
    ui.page.click(f"#gen-part .out-tok >> nth={looked - 1}")
    ui.page.wait_for_function(
        "k => document.querySelector('#lens table')?.getAttribute('aria-label') === `logit lens at step ${k}`",
        arg=looked,
    )
    ui.page.click("#play-button")
    ui.page.wait_for_function(
        "n => document.querySelector('#step-counter').textContent === `step ${n} / ${n}`"
        " && document.querySelector('#play-button').getAttribute('aria-pressed') === 'false'",
        arg=len(ids),
    )
    assert ui.page.get_attribute("#lens table", "aria-label") == f"logit lens at step {looked}"
    assert "the step you last looked at" in ui.page.inner_text("#lens-note")
