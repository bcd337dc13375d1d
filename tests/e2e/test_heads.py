"""The /heads view in a browser: each score's layers × heads map shows what POST /heads/scores
answers, the table sorts (mouse and keyboard), a head clicked in a map or the table opens in the
explorer (ablated, from the importance map), the URL reopens the view, the random probe, a
server error and the busy state, the RNN and an imported 12-head model, exports, and axe."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.test_accessibility import report
from tests.e2e.urls import params, post_json
from tests.e2e.views import VIEWS

pytestmark = pytest.mark.e2e
MAPS = VIEWS["heads"][1][:3]
SCORES = ["previous_token", "induction", "duplicate_token", "first_token", "entropy", "importance"]
REPEATS = "the cat sat on the mat and the cat ate"


def scores_of(app_server, body: dict) -> dict:
    """The server's answer, asked directly (what the page must show)."""
    return post_json(app_server.url, "/heads/scores", body)


def shown(ui):
    """Every map and the table drawn, and no request in flight."""
    for selector in MAPS:
        ui.wait(selector, state="attached")
    ui.wait("#heads-table td", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")


def plotted(ui, div: str):
    """The z of the Plotly heatmap in `div` ([L][H], null where nothing was measured)."""
    return ui.page.evaluate("(sel) => document.querySelector(sel).data[0].z", div)


def table(ui) -> list[list[str]]:
    return ui.page.eval_on_selector_all(
        "#heads-table tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def click_cell(ui, div: str, layer: int, head: int):
    """A real mouse click on a heatmap's cell, placed through the figure's own axes."""
    ui.page.locator(div).scroll_into_view_if_needed()
    x, y = ui.page.evaluate(
        """([sel, layer, head]) => {
             const gd = document.querySelector(sel);
             const box = gd.getBoundingClientRect();
             const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
             return [box.left + xa._offset + xa.l2p(head), box.top + ya._offset + ya.l2p(layer)];
           }""",
        [div, layer, head],
    )
    ui.page.mouse.click(x, y)


def in_explorer(ui, layer: int, head: int):
    ui.page.wait_for_url(lambda url: urlparse(url).path == "/")
    ui.wait("#heatmap .main-svg", state="attached")
    assert ui.page.input_value("#layer-select") == str(layer)
    assert ui.page.input_value("#head-select") == str(head)


def test_every_score_is_the_servers_and_the_table_lists_every_head(ui, app_server):
    ui.goto(f"/heads?model=decoder-mini&text={REPEATS.replace(' ', '+')}")
    shown(ui)
    want = scores_of(app_server, {"model": "decoder-mini", "text": REPEATS})
    site = want["scores"]["decoder.self"]
    for score in SCORES:
        ui.page.select_option("#score-select", score)
        ui.page.wait_for_function(
            "(s) => document.querySelector('#scores').data[0].hovertemplate.includes(s)",
            arg=score.replace("_", " "),
        )
        assert plotted(ui, "#scores") == site[score], score
        assert params(ui.page.url)["score"] == score
        assert want["definitions"][score] in ui.page.inner_text("#scores-note")
    # the comparison: the weight score picked beside importance, the same layers × heads
    ui.page.select_option("#versus-select", "first_token")
    ui.page.wait_for_function(
        "() => document.querySelector('#weights').data[0].hovertemplate.includes('first token')"
    )
    assert plotted(ui, "#weights") == site["first_token"]
    assert plotted(ui, "#importance") == site["importance"]
    summary = ui.page.inner_text("#compare-summary")
    assert "Rank correlation over the 16 heads" in summary
    assert "Jain & Wallace" in ui.page.inner_text("#compare")
    rows = table(ui)
    assert rows[0][0].startswith("head") and len(rows) == 1 + 4 * 4
    header = rows[0]
    for cells in rows[1:]:
        layer, head = (int(x) for x in cells[0][1:].split(" H"))
        for name, text in zip(header[1:], cells[1:], strict=True):
            score = SCORES[[s.replace("_", " ") for s in SCORES].index(name.split(" (")[0])]
            assert float(text.replace("−", "-")) == pytest.approx(
                site[score][layer][head], abs=6e-4
            )
    ui.shot("heads-decoder")


def test_sorting_by_a_column_with_the_mouse_and_the_keyboard(ui, app_server):
    ui.goto(f"/heads?model=decoder-mini&text={REPEATS.replace(' ', '+')}")
    shown(ui)
    column = table(ui)[0].index("importance")

    def values() -> list[float]:
        return [float(r[column].replace("−", "-")) for r in table(ui)[1:]]

    ui.page.click("#heads-table button[data-sort='importance']")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('sort') === '-importance'")
    assert values() == sorted(values(), reverse=True)
    th = "#heads-table th:has(button[data-sort='importance'])"
    assert ui.page.get_attribute(th, "aria-sort") == "descending"
    # the keyboard: the header keeps focus when the table is redrawn; Enter sorts the other way
    assert ui.page.evaluate("document.activeElement.dataset.sort") == "importance"
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('sort') === 'importance'")
    assert values() == sorted(values())
    assert ui.page.get_attribute(th, "aria-sort") == "ascending"
    ui.page.focus("#heads-table button[data-sort='head']")
    ui.page.keyboard.press("Enter")  # "head": back to layer, head order
    ui.page.wait_for_function("() => !new URL(location).searchParams.has('sort')")
    assert [r[0] for r in table(ui)[1:5]] == ["L0 H0", "L0 H1", "L0 H2", "L0 H3"]


def test_a_head_clicked_in_a_map_opens_in_the_explorer(ui):
    ui.goto(f"/heads?model=decoder-mini&text={REPEATS.replace(' ', '+')}")
    shown(ui)
    click_cell(ui, "#scores", 2, 1)
    in_explorer(ui, 2, 1)
    q = params(ui.page.url)
    assert q["model"] == "decoder-mini" and q["text"] == REPEATS and "ablate" not in q
    # from the importance map: the same head, ablated (the mode importance was measured with)
    ui.page.go_back()
    shown(ui)
    ui.page.select_option("#mode-select", "mean")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('mode') === 'mean'")
    shown(ui)
    click_cell(ui, "#importance", 3, 2)
    in_explorer(ui, 3, 2)
    assert params(ui.page.url)["ablate"] == "decoder.self:3:2:mean"


def test_importance_by_attribution_patching_is_labelled_an_approximation(ui, app_server):
    ui.goto(f"/heads?model=decoder-mini&text={REPEATS.replace(' ', '+')}")
    shown(ui)
    ui.page.select_option("#method-select", "attribution_patching")
    ui.page.wait_for_function(
        "() => document.querySelector('#importance-note').textContent.includes('APPROXIMATION')"
    )
    assert params(ui.page.url)["method"] == "attribution_patching"
    body = {"model": "decoder-mini", "text": REPEATS, "importance_method": "attribution_patching"}
    note = scores_of(app_server, body)["definitions"]["importance"]
    assert note.startswith("APPROXIMATION (attribution patching)")
    assert note in ui.page.inner_text("#importance-note")


def test_a_seq2seq_site_and_a_table_link(ui, app_server):
    ui.goto("/heads?model=seq2seq-en-fr&site=decoder.cross&score=first_token")
    shown(ui)
    assert ui.page.is_visible("#site-field")
    note = ui.page.inner_text("#site-note")
    assert "previous token, induction and duplicate token do not apply" in note
    # the source has no start token: key 0 is a word, and the score says so, not "sink"
    text = ui.page.input_value("#text-input")
    source = post_json(app_server.url, "/tokenize", {"model": "seq2seq-en-fr", "text": text})
    first = source["tokens"][0]
    assert not first["special"]
    label = f"first token (“{first['text']}”, no sink)"
    assert table(ui)[0] == ["head ▲", label, "entropy", "importance"]
    assert f"key 0 is the word “{first['text']}”" in ui.page.inner_text("#scores-note")
    assert ui.page.text_content("#scores .cbtitle") == label  # the map's colour bar too
    assert "sink" not in ui.page.inner_text("#score-select option:checked").replace("no sink", "")
    assert len(table(ui)) == 1 + 3 * 4
    # the decoder's own keys start with its start token: there it is a sink
    ui.page.select_option("#site-select", "decoder.self")
    ui.page.wait_for_function(
        "() => document.querySelector('#scores-note').textContent.includes('start token')"
    )
    assert "“<s>”" in ui.page.inner_text("#scores-note")
    assert "first token (sink)" in table(ui)[0]
    ui.page.select_option("#site-select", "decoder.cross")
    ui.page.wait_for_function(
        "() => document.querySelector('#site-select').value === 'decoder.cross'"
    )
    ui.page.click("#heads-table a >> text=L2 H3")
    in_explorer(ui, 2, 3)
    q = params(ui.page.url)
    assert q["site"] == "decoder.cross" and q["target"] == "le chat noir a mangé la souris"
    ui.page.wait_for_function(
        "() => document.querySelector('#site-select').value === 'decoder.cross'"
    )


def test_url_round_trip_and_back_forward(ui):
    url = (
        "/heads?model=seq2seq-en-fr&site=encoder.self&score=entropy&versus=first_token"
        "&layer=2&head=1&sort=-entropy&mode=mean"
    )
    ui.goto(url)
    shown(ui)
    for select, value in [("#site-select", "encoder.self"), ("#score-select", "entropy"),
                          ("#versus-select", "first_token"), ("#layer-select", "2"),
                          ("#head-select", "1"), ("#mode-select", "mean")]:  # fmt: skip
        assert ui.page.input_value(select) == value, select
    assert (
        ui.page.get_attribute("#heads-table th:has(button[data-sort='entropy'])", "aria-sort")
        == "descending"
    )
    assert ui.page.get_attribute("#heads-table tr.selected", "data-layer") == "2"
    assert ui.page.get_attribute("#heads-table tr.selected", "data-head") == "1"
    shapes = ui.page.evaluate("document.querySelector('#scores').layout.shapes")
    assert shapes[0]["x0"] == 0.5 and shapes[0]["y0"] == 1.5  # head 1, layer 2 outlined
    ui.page.select_option("#score-select", "importance")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('score') === 'importance'")
    ui.page.go_back()
    ui.page.wait_for_function("() => document.querySelector('#score-select').value === 'entropy'")
    ui.page.reload()
    shown(ui)
    assert ui.page.input_value("#score-select") == "entropy"
    assert ui.page.input_value("#mode-select") == "mean"


def test_keyboard_moves_the_head_and_opens_it(ui):
    ui.goto(f"/heads?model=decoder-mini&text={REPEATS.replace(' ', '+')}")
    shown(ui)
    ui.page.locator("h1").click()
    ui.page.keyboard.press("]")
    ui.page.keyboard.press("]")
    ui.page.keyboard.press(".")
    assert "L2 H1 of the decoder self-attention" in ui.page.inner_text("#head-links")
    assert ui.page.get_attribute("#heads-table tr.selected", "data-layer") == "2"
    q = params(ui.page.url)
    assert (q["layer"], q["head"]) == ("2", "1")
    ui.page.keyboard.press("a")
    in_explorer(ui, 2, 1)
    assert params(ui.page.url)["ablate"] == "decoder.self:2:1:zero"


def test_the_random_probe_an_error_and_the_busy_state(ui, app_server):
    ui.allowed_console = ("status of 422",)
    held = []  # the exact sweep is asked on its stream
    ui.page.route("**/api/v1/heads/scores/stream", lambda route: held.append(route))
    ui.goto("/heads?model=encoder-mini&text=i+love+machine+learning&score=induction")
    ui.wait("#status.busy")
    assert "Scoring every head" in ui.page.inner_text("#status")
    held.pop().continue_()
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")
    ui.page.unroute("**/api/v1/heads/scores/stream")
    # no token repeats in the sentence: nothing to measure, said instead of a map
    assert ui.page.is_hidden("#scores")
    assert "no token occurs twice" in ui.page.inner_text("#scores-note")
    assert "(n/a here)" in ui.page.inner_text("#score-select")
    # the probe: random tokens, twice; induction is measured
    ui.page.click("label:has(#input-probe)")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('probe') === '1'")
    ui.wait("#scores .main-svg", state="attached")
    shown(ui)
    want = scores_of(app_server, {"model": "encoder-mini", "seed": 0, "run_length": 24})
    assert plotted(ui, "#scores") == want["scores"]["encoder.self"]["induction"]
    assert "seed 0" in ui.page.inner_text("#input-summary")
    assert ui.page.locator("#tokens .token").count() == len(want["tokens"]["source"])
    ui.page.fill("#seed-input", "7")
    ui.page.press("#seed-input", "Enter")
    ui.page.wait_for_function(
        "() => document.querySelector('#input-summary').textContent.includes('seed 7')"
    )
    assert params(ui.page.url)["seed"] == "7"
    # a run too long for the model: the server's message, in the status line and the banner
    ui.page.fill("#run-input", "400")
    ui.page.press("#run-input", "Enter")
    ui.wait("#error-banner")
    assert "run_length ≤ 127" in ui.page.inner_text("#status")
    assert "run_length" in ui.page.inner_text("#error-banner")


def test_the_rnn_says_what_does_not_apply(ui, app_server):
    ui.goto("/heads?model=rnn-en-fr&score=previous_token")
    ui.wait("#importance .main-svg", state="attached")
    assert "does not apply to cross-attention" in ui.page.inner_text("#scores-note")
    assert ui.page.is_hidden("#scores")
    assert "single attention head" in ui.page.inner_text("#site-note")
    rows = table(ui)
    text = ui.page.input_value("#text-input")
    first = post_json(app_server.url, "/tokenize", {"model": "rnn-en-fr", "text": text})["tokens"][
        0
    ]
    sink = "first token (sink)" if first["special"] else f"first token (“{first['text']}”, no sink)"
    assert rows[0] == ["head ▲", sink, "entropy", "importance"]
    assert len(rows) == 2 and rows[1][0] == "L0 H0"
    assert ui.page.input_value("#versus-select") == "first_token"
    ui.shot("heads-rnn")


def test_exports(ui, app_server):
    ui.goto(f"/heads?model=decoder-mini&text={REPEATS.replace(' ', '+')}&score=induction")
    shown(ui)
    want = scores_of(app_server, {"model": "decoder-mini", "text": REPEATS})["scores"]
    for panel, fmt in [("scores", "json"), ("scores", "png"), ("importance", "svg"),
                       ("table", "csv"), ("table", "json")]:  # fmt: skip
        with ui.page.expect_download() as info:
            ui.page.click(f".export[data-export='{panel}'] button[data-format='{fmt}']")
        download = info.value
        data = Path(download.path()).read_bytes()
        assert download.suggested_filename.endswith(f".{fmt}") and len(data) > 200
        if fmt == "png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        if fmt == "svg":
            assert b"<svg" in data
        if (panel, fmt) == ("scores", "json"):
            out = json.loads(data)
            assert out["score"] == "induction"
            assert out["matrix"] == want["decoder.self"]["induction"]
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(data.decode())))
            assert len(rows) == 16 and rows[0]["site"] == "decoder.self"
            got = float(rows[5]["importance"])  # layer 1, head 1
            assert got == pytest.approx(want["decoder.self"]["importance"][1][1])
        if (panel, fmt) == ("table", "json"):
            heads = json.loads(data)["heads"]
            assert heads[6]["entropy"] == want["decoder.self"]["entropy"][1][2]


def test_an_imported_12_head_model(ui, minilm):
    """all-MiniLM-L6-v2: 6 × 12 heads scored; no output head, so importance says why not."""
    from tests.e2e.scale_models import MINILM

    ui.goto(f"/heads?model={MINILM}&text=the+cat+sat+on+the+mat+and+the+cat+ate")
    ui.wait("#scores .main-svg", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")
    z = plotted(ui, "#scores")
    assert len(z) == 6 and len(z[0]) == 12
    assert len(table(ui)) == 1 + 72
    assert ui.page.is_hidden("#importance")
    assert "no output head" in ui.page.inner_text("#importance-note")
    assert "importance" not in table(ui)[0]
    ui.shot("heads-minilm")


def test_projector_mode_and_axe_with_the_panels_in_use(ui):
    ui.goto("/heads?model=seq2seq-en-fr&site=decoder.cross&sort=-importance&layer=1")
    shown(ui)
    ui.page.click("#projector-toggle")
    ui.page.wait_for_timeout(600)
    size = ui.page.evaluate("document.querySelector('#scores')._fullLayout.font.size")
    assert size == 17
    ui.shot("heads-projector")
    ui.page.keyboard.press("?")
    violations = ui.axe()
    assert not violations, report(violations)


def test_the_probe_strip_names_byte_pieces(ui, app_server):
    """Random ids hit byte-level pieces of multi-byte characters: each reads as its byte."""
    ui.goto("/heads?model=decoder-mini&probe=1&seed=0&run=12")
    ui.wait("#tokens .token", state="attached")
    want = scores_of(app_server, {"model": "decoder-mini", "seed": 0, "run_length": 12})
    ids = [t["id"] for t in want["tokens"]["source"]]
    ui.page.wait_for_function(
        "n => document.querySelectorAll('#tokens .token').length === n", arg=len(ids)
    )
    strip = ui.page.eval_on_selector_all(
        "#tokens .token .tok-text", "ts => ts.map((t) => t.textContent)"
    )
    assert not [s for s in strip if "\ufffd" in s]
    byte_ids = {t["id"]: t["text"] for t in want["tokens"]["source"] if t["text"].startswith("<0x")}
    if not byte_ids:
        assert not app_server.shipped, "the shipped decoder's probe (seed 0) holds byte pieces"
        pytest.skip("this checkpoint's probe holds no byte piece")
    for i, shown in zip(ids, strip, strict=True):
        if i in byte_ids:
            assert shown == byte_ids[i]
    # two different ids never read alike
    assert len({byte_ids[i] for i in byte_ids}) == len(byte_ids)


# The exact importance sweep streams its progress (POST /heads/scores/stream). On the small
# models it ends in a blink, so the page's stream is slowed here, in the page: each event the
# server sent is handed on DELAY_MS after the one before (the numbers are still the server's),
# and every text the meter shows is collected by a MutationObserver.
PROGRESS_TEXTS = """
window.__progressTexts = [];
new MutationObserver((records) => {
  for (const r of records)
    if (r.target.classList && r.target.classList.contains("job-progress-text"))
      for (const n of r.addedNodes) window.__progressTexts.push(n.textContent);
}).observe(document, { childList: true, subtree: true });
"""
SLOW_STREAM = """
(delay) => {
  window.__streamsAborted = 0;
  const realFetch = window.fetch;
  window.fetch = async (input, init = {}) => {
    const res = await realFetch(input, init);
    if (!String(input).includes("/heads/scores/stream") || !res.ok) return res;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = "";
    const body = new ReadableStream({
      async pull(controller) {
        for (;;) {
          const end = buffer.indexOf("\\n\\n");
          if (end >= 0) {
            const event = buffer.slice(0, end + 2);
            buffer = buffer.slice(end + 2);
            await new Promise((resolve) => setTimeout(resolve, delay));
            if (init.signal && init.signal.aborted) {
              window.__streamsAborted += 1;
              controller.error(new DOMException("aborted", "AbortError"));
              return;
            }
            controller.enqueue(encoder.encode(event));
            return;
          }
          const { value, done } = await reader.read();
          if (done) return controller.close();
          buffer += decoder.decode(value, { stream: true });
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}
"""
# texts no other test asks: an answer in the server's cache is streamed at once, no sweep run
SWEPT = "the dog ran to the park and the dog sat"
ABORTED = "a bird sang in the tree and a bird flew"
SWEEP_TEXT = (
    r"Ablating heads: (\d+) of (\d+) \(layer (\d+) of (\d+)\)( — about \d+( min)?( \d+ s)? left)?"
)


def slow_stream(ui, delay_ms: int):
    ui.page.add_init_script(script=PROGRESS_TEXTS)
    ui.page.add_init_script(script=f"({SLOW_STREAM})({delay_ms})")


def sweep_steps(texts: list[str]) -> list[tuple[int, int, int, int]]:
    """(done, total, layer, layers) of every progress text; each must read as SWEEP_TEXT."""
    import re

    steps = []
    for text in texts:
        m = re.fullmatch(SWEEP_TEXT, text)
        assert m, f"not a progress line: {text!r}"
        steps.append(tuple(int(m.group(k)) for k in range(1, 5)))
    return steps


def test_the_exact_sweep_shows_heads_and_layers_done_then_the_same_map(ui, app_server):
    slow_stream(ui, 400)
    model = app_server.models["decoder-mini"]
    layers, heads = model["n_layers"], model["n_layers"] * model["n_heads"]
    ui.goto(f"/heads?model=decoder-mini&text={SWEPT.replace(' ', '+')}")
    bar = ui.page.get_by_role("progressbar", name="Importance sweep")
    bar.wait_for()  # in the importance panel, while the sweep runs
    assert ui.page.locator(".matrix #importance-progress progress").count() == 1
    text = ui.page.inner_text("#importance-progress .job-progress-text")
    done, total, layer, of = sweep_steps([text])[0]
    assert (total, of) == (heads, layers) and 1 <= layer <= layers and 0 <= done <= total
    assert bar.get_attribute("aria-valuetext") == text
    assert int(float(bar.get_attribute("max"))) == heads
    shown(ui)
    assert ui.page.locator("#importance-progress .job-progress").count() == 0  # gone when done
    steps = sweep_steps(ui.page.evaluate("window.__progressTexts"))
    assert [s[0] for s in steps] == sorted({s[0] for s in steps})  # heads done only go up
    assert steps[-1] == (heads, heads, layers, layers)
    assert all(s[1:] == (heads, s[2], layers) and s[2] >= 1 for s in steps)
    want = scores_of(app_server, {"model": "decoder-mini", "text": SWEPT})
    assert plotted(ui, "#importance") == want["scores"]["decoder.self"]["importance"]
    assert f"{heads} heads scored" in ui.page.inner_text("#status")


def test_changing_the_input_mid_sweep_aborts_it_and_draws_the_new_one(ui, app_server):
    """The old stream is aborted (its meter goes), the new one is drawn; axe on the meter."""
    slow_stream(ui, 2500)
    ui.goto(f"/heads?model=decoder-mini&text={ABORTED.replace(' ', '+')}")
    ui.page.get_by_role("progressbar", name="Importance sweep").wait_for()
    violations = ui.axe()  # the meter as it runs
    assert not violations, report(violations)
    assert ui.page.locator("#importance-progress .job-progress").count() == 1
    ui.page.select_option("#mode-select", "mean")
    ui.page.wait_for_function("() => window.__streamsAborted === 1")
    shown(ui)
    assert ui.page.locator("#importance-progress .job-progress").count() == 0
    want = scores_of(
        app_server, {"model": "decoder-mini", "text": ABORTED, "importance_mode": "mean"}
    )
    assert plotted(ui, "#importance") == want["scores"]["decoder.self"]["importance"]
