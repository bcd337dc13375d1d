"""Beyond attention weights in the browser: ablating heads from their chips (explorer and
decoding player, what the model says before → after, the URL's `ablate`), the logit lens of
the player's step, rollout and value-weighted norms on the explorer's heatmap, and the RNN
labelled as what it is (additive attention, no blocks)."""

from __future__ import annotations

from urllib.parse import urlparse

import numpy as np
import pytest

from tests.e2e.urls import params, post_json

pytestmark = pytest.mark.e2e

INDUCTION_HEADS = ",".join(f"decoder.self:1:{h}:zero" for h in range(4))
# a random run of words, then its start again: the induction heads complete it
INDUCTION_PROMPT = "cat honey store mat dog bear cat honey store"


def api(app_server, path: str, body: dict) -> dict:
    return post_json(app_server.url, path, body)


def plus(text: str) -> str:
    return text.replace(" ", "+")


# ---------------------------------------------------------------------------------------
# the explorer
def test_ablating_a_classifier_head_shows_the_probability_before_and_after(ui, app_server):
    text = "the movie was not good"
    ui.goto(f"/?model=encoder-mini&text={plus(text)}&layer=3", wait_for="#model-says .says-block")
    assert ui.page.locator("#model-says .before-after").count() == 0  # nothing ablated yet
    switch = ui.page.locator(".ablate-switch[data-layer='3'][data-head='0']")
    assert switch.get_attribute("aria-pressed") == "false"
    switch.click()
    ui.wait("#model-says .before-after")
    assert params(ui.page.url)["ablate"] == "encoder.self:3:0:zero"
    # marked by an icon and words, not only by colour
    switch = ui.page.locator(".ablate-switch[data-layer='3'][data-head='0']")
    assert switch.get_attribute("aria-pressed") == "true"
    assert "ablated" in switch.inner_text() and "✂" in switch.inner_text()
    # the site named as the rest of the UI names it, never by its internal key
    listed = ui.page.inner_text("#ablation-bar .ablated-list")
    assert "L3 H0 of the encoder self-attention · zero" in listed and "encoder.self" not in listed
    # the figures are the server's: the ablated answer and its baseline
    answer = api(
        app_server,
        "/classify",
        {
            "model": "encoder-mini",
            "text": text,
            "ablate": [{"site": "encoder.self", "layer": 3, "head": 0}],
        },
    )
    base = answer["ablation"]["baseline"]
    prob = ui.page.locator("#model-says .before-after").nth(1)
    p_before = next(x["prob"] for x in base["labels"] if x["label"] == base["label"])
    p_after = next(x["prob"] for x in answer["labels"] if x["label"] == base["label"])
    assert prob.get_attribute("data-before") == f"{p_before:.3f}"
    assert prob.get_attribute("data-after") == f"{p_after:.3f}"
    assert f"P({base['label']})" in prob.inner_text()
    # how far each head's attention moved: a cell per layer and head, the ablated one marked
    ui.wait("#ablation-changed table")
    info = app_server.models["encoder-mini"]
    cells = ui.page.locator("#ablation-changed tbody td")
    assert cells.count() == info["n_layers"] * info["n_heads"]
    ui.page.wait_for_function(
        "() => ![...document.querySelectorAll('#ablation-changed td')].some(td => td.textContent === '…')"
    )
    assert ui.page.locator("#ablation-changed td.ablated-cell").inner_text().startswith("✂ ")
    # layers below the ablated one cannot move; an encoder's heads above it could
    first_row = [
        float(t)
        for t in ui.page.locator("#ablation-changed tbody tr").first.locator("td").all_inner_texts()
    ]
    assert first_row == [0.0] * info["n_heads"]
    ui.shot("explorer-ablation-classifier")
    ui.page.click("#ablation-bar button:has-text('restore all')")
    ui.page.wait_for_function("() => !document.querySelector('#model-says .before-after')")
    assert "ablate" not in params(ui.page.url)


def test_ablate_url_round_trip_and_the_x_key(ui, app_server):
    # the format the Heads view links with: site:layer:head:mode, comma separated
    url = f"/?model=induction-2l&text={plus(INDUCTION_PROMPT)}&layer=1&head=1&ablate=decoder.self:1:0:zero,decoder.self:1:2:mean"
    bodies = []
    ui.page.on(
        "request",
        lambda r: (
            r.method == "POST" and "/api/v1/attention" in r.url and bodies.append(r.post_data_json)
        ),
    )
    ui.goto(url, wait_for="#heatmap .main-svg")
    ui.wait("#model-says .before-after")
    assert bodies and all(
        b["ablate"]
        == [
            {"site": "decoder.self", "layer": 1, "head": 0, "mode": "zero"},
            {"site": "decoder.self", "layer": 1, "head": 2, "mode": "mean"},
        ]
        for b in bodies
    )
    pressed = {
        int(b.get_attribute("data-head")): b.inner_text()
        for b in ui.page.locator(".ablate-switch[aria-pressed='true']").all()
    }
    assert set(pressed) == {0, 2}
    listed = ui.page.inner_text("#ablation-bar .ablated-list")
    assert "L1 H2 of the decoder self-attention (masked) · mean" in listed
    assert "zero" in pressed[0] and "mean" in pressed[2]
    # the grid's thumbnails of the ablated heads say so (a ✂ badge and their name)
    ui.wait("#grid .thumb.ablated")
    marked = ui.page.locator("#grid .thumb.ablated")
    assert sorted(
        (int(t.get_attribute("data-layer")), int(t.get_attribute("data-head")))
        for t in marked.all()
    ) == [(1, 0), (1, 2)]
    assert "(ablated)" in marked.first.get_attribute("aria-label")
    assert "✂ This head is ablated" not in ui.page.inner_text("#heatmap-note")  # head 1 is not
    ui.page.locator("body").press("x")  # ablate the head on the heatmap (L1 H1)
    ui.page.wait_for_function(
        "() => new URLSearchParams(location.search).get('ablate').split(',').length === 3"
    )
    assert params(ui.page.url)["ablate"].endswith("decoder.self:1:1:mean")  # the mode last chosen
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap-note').textContent.includes('This head is ablated')"
    )
    # back in history: the two heads again
    ui.page.go_back()
    ui.page.wait_for_function(
        "() => document.querySelectorAll('.ablate-switch[aria-pressed=true]').length === 2"
    )
    # a fresh page on the same URL shows the same state
    again = ui.page.url
    ui.goto(
        urlparse(again)._replace(scheme="", netloc="").geturl(),
        wait_for="#model-says .before-after",
    )
    assert ui.page.locator("#ablation-bar .ablated-item").count() == 2
    ui.page.click("#ablation-bar .ablated-item >> nth=0 >> button")
    ui.page.wait_for_function(
        "() => document.querySelectorAll('#ablation-bar .ablated-item').length === 1"
    )
    assert params(ui.page.url)["ablate"] == "decoder.self:1:2:mean"


def test_rollout_and_norms_draw_a_heatmap(ui, app_server):
    text = "the cat sat on the mat"
    ui.goto(f"/?model=encoder-mini&text={plus(text)}&layer=2&head=1", wait_for="#heatmap .main-svg")
    ui.page.select_option("#values-select", "rollout")
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap .gtitle')?.textContent.includes('rollout')"
    )
    z = np.array(ui.page.evaluate("() => document.querySelector('#heatmap').data[0].z"))
    assert all(abs(sum(row) - 1) < 5e-3 for row in z)  # rollout rows are distributions
    # the server's rollout through layers 0–2, asked directly; the head's own weights differ
    body = {"model": "encoder-mini", "text": text}
    rollout = np.array(api(app_server, "/rollout", body)["rollout"]["encoder.self"][2])
    one = {**body, "layers": [2], "heads": [1], "include": ["norms"]}
    answer = api(app_server, "/attention", one)
    weights = np.array(answer["attention"]["encoder.self"][0][0])
    assert np.abs(z - rollout).max() < 2e-3
    assert np.abs(z - weights).max() > 0.05
    assert "Abnar" in ui.page.inner_text("#values-caption")
    assert params(ui.page.url)["show"] == "rollout"
    ui.shot("explorer-rollout")
    ui.page.select_option("#values-select", "norms")
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap .gtitle')?.textContent.includes('‖α·f(x)‖')"
    )
    z = np.array(ui.page.evaluate("() => document.querySelector('#heatmap').data[0].z"))
    norms = np.array(answer["norms"]["encoder.self"][0][0])  # ‖α·f(x)‖ of L2 H1
    assert np.abs(z - norms).max() < 2e-3 * max(1.0, norms.max())
    assert np.abs(z - weights).max() > 0.05  # not the weights again
    assert "Kobayashi" in ui.page.inner_text("#values-caption")
    assert "norm" in ui.page.text_content("#heatmap .cbtitle")
    ui.shot("explorer-norms")


def test_rollout_says_where_it_does_not_apply(ui):
    ui.goto(
        "/?model=seq2seq-en-fr&text=the+black+cat&site=decoder.cross&show=rollout",
        wait_for="#model-says .says-block",
    )
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap-note').textContent.includes('does not apply to cross-attention')"
    )
    assert ui.page.locator("#heatmap .main-svg").count() == 0
    ui.page.select_option("#site-select", "encoder.self")
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap .gtitle')?.textContent.includes('rollout')"
    )


# ---------------------------------------------------------------------------------------
# the decoding player
def test_player_ablating_the_induction_heads_changes_the_next_token(ui, app_server):
    if not app_server.shipped:
        pytest.skip("needs the shipped (trained) induction-2l: a random model copies nothing")
    ui.goto(f"/decode?model=induction-2l&text={plus(INDUCTION_PROMPT)}&max_new_tokens=3&step=1")
    ui.wait("#lens table")
    assert ui.page.locator("#step-compare .before-after").count() == 0
    whole = ui.page.inner_text("#gen-part .out-tok >> nth=0")
    assert whole.strip() == "mat"  # the whole model completes the repeated run
    # switch the four layer-1 heads off, one chip each
    ui.page.select_option("#ablate-layer", "1")
    for h in range(4):
        ui.page.click(f"#ablate-chips .ablate-switch[data-head='{h}']")
        ui.page.wait_for_function(
            f"() => document.querySelector(\"#ablate-chips .ablate-switch[data-head='{h}']\").getAttribute('aria-pressed') === 'true'"
        )
    assert params(ui.page.url)["ablate"] == INDUCTION_HEADS
    compare = ui.page.locator("#step-compare .before-after").first
    compare.wait_for()
    assert compare.get_attribute("data-before") == "“ mat”"
    assert compare.get_attribute("data-before") != compare.get_attribute("data-after")
    assert "(changed)" in compare.inner_text()
    assert ui.page.inner_text("#gen-part .out-tok >> nth=0").strip() != "mat"
    ui.shot("decode-induction-ablated")


def test_logit_lens_follows_the_step_and_ends_with_the_models_prediction(ui, app_server):
    ui.goto("/decode?model=decoder-mini&text=the+black+cat&max_new_tokens=4&step=2")
    ui.wait("#lens table")
    info = app_server.models["decoder-mini"]

    def lens_rows():
        return ui.page.locator("#lens tbody tr")

    assert lens_rows().count() == info["n_layers"] + 1  # embed, then each block
    ui.page.wait_for_function("() => document.querySelector('#topk .gtitle')")
    title = ui.page.text_content("#topk .gtitle")  # step 2: chose “X” (p = 0.123)
    assert title.startswith("step 2:")
    chosen = title.split("“")[1].split("”")[0]
    p_chosen = title.split("p = ")[1].rstrip(")")
    last = lens_rows().last
    top1 = last.locator("td.cand").first
    assert top1.locator(".tok").inner_text() == chosen  # greedy: the model's own prediction
    assert top1.locator(".p").inner_text() == p_chosen
    assert "final" in top1.get_attribute("class")
    assert last.locator("td.final-p").inner_text() == p_chosen
    # it follows the player's step
    ui.page.click("#step-button")
    ui.page.wait_for_function(
        "() => document.querySelector('#lens caption').textContent.startsWith('Step 3')"
    )
    ui.shot("decode-logit-lens")


def test_logit_lens_reads_the_seq2seq_decoder(ui, app_server):
    ui.goto("/decode?model=seq2seq-en-fr&text=the+black+cat&step=2")
    ui.wait("#lens table")
    info = app_server.models["seq2seq-en-fr"]
    assert ui.page.locator("#lens tbody tr").count() == info["sites"]["decoder.self"] + 1
    title = ui.page.text_content("#topk .gtitle")
    chosen = title.split("“")[1].split("”")[0]
    top1 = ui.page.locator("#lens tbody tr").last.locator("td.cand").first
    assert top1.locator(".tok").inner_text() == chosen


# ---------------------------------------------------------------------------------------
# the RNN: additive attention, no blocks
def test_the_rnn_is_labelled_as_what_it_is(ui, app_server):
    rnn = next((i for i, m in app_server.models.items() if m["architecture"] == "rnn"), None)
    if rnn is None:
        pytest.skip("no RNN checkpoint is served")
    ui.goto(f"/?model={rnn}&text=the+black+cat&show=rollout", wait_for="#model-says .says-block")
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap-note').textContent.includes('Rollout does not apply')"
    )
    ui.page.select_option("#values-select", "norms")
    ui.page.wait_for_function("() => document.querySelector('#heatmap .main-svg')")
    assert "encoder state" in ui.page.inner_text("#values-caption")
    ui.goto(f"/decode?model={rnn}&text=the+black+cat&step=1")
    ui.page.wait_for_function(
        "() => document.querySelector('#lens-note').textContent.includes('RNN')"
    )
    ui.goto(f"/math?model={rnn}")
    ui.page.wait_for_function("() => !document.querySelector('#view-notice').hidden")
    assert "additive" in ui.page.inner_text("#view-notice")
    assert ui.page.input_value("#model-select") != rnn
    ui.goto(f"/card?model={rnn}", wait_for="#arch-svg")
    drawn = ui.page.text_content("#arch-svg")
    assert (
        "Cross-attention: additive" in drawn
        and "Multi-head" not in drawn
        and "Feed-forward" not in drawn
    )
