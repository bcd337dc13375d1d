"""notebooks/tour.ipynb executed in a real kernel (nbclient), then its saved outputs and the
file it exported opened in headless Chromium from file:// with every other request blocked:
nothing is requested, nothing logs an error, every output draws, two on one page both answer,
and the heatmap's hover reads the weight the GPT-2 of the notebook computed."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.e2e.conftest import AXE_JS, AXE_TAGS, ROOT, TIMEOUT_MS
from tests.e2e.urls import post_json
from tests.helpers import checkpoints_under_test

TOUR = ROOT / "notebooks" / "tour.ipynb"
# Appended to the tour: the weights the GPT-2 heatmap shows (layer 1, head 2), for the page
# to be compared with.
PROBE = "import json\nprint(json.dumps(outputs.attentions[1][0, 2].tolist()))"


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """(the executed notebook as saved and read back, its folder)."""
    work = tmp_path_factory.mktemp("tour")
    checkpoints = checkpoints_under_test(lambda: tmp_path_factory.mktemp("checkpoints"))[0]
    nb = nbformat.read(TOUR, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    env = {"ATTNVIZ_CHECKPOINT_DIR": str(checkpoints), "ATTNVIZ_DEVICE": "cpu"}
    env |= {"OMP_NUM_THREADS": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        NotebookClient(
            nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(work)}}
        ).execute()
    nbformat.write(nb, work / "tour.ipynb")
    return nbformat.read(work / "tour.ipynb", as_version=4), work


def html_outputs(nb) -> list[str]:
    return [
        o["data"]["text/html"]
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]


def open_offline(browser, url: str):
    """A page at ``url`` whose every request but file: is blocked and counted."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    seen = {"requests": [], "errors": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def on_request(request):
        if not request.url.startswith(("file:", "data:", "blob:")):
            seen["requests"].append(request.url)

    page.on("request", on_request)
    context.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
    )
    page.goto(url)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-attnviz]')].every(n => n.dataset.attnviz === 'drawn')",
        timeout=TIMEOUT_MS,
    )
    return page, seen


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.x A/AA violations (its script inlined: nothing is requested)."""
    if not AXE_JS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE_JS} is missing: run `npm ci`")
        pytest.skip(f"{AXE_JS} is missing: run `npm ci` (make test does)")
    page.add_script_tag(content=AXE_JS.read_text())
    return page.evaluate(
        """async (tags) => (await axe.run(document, {runOnly: {type: "tag", values: tags}}))
             .violations.map((v) => ({id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(" "))}))""",
        AXE_TAGS,
    )


def hover_cell(page, heat, i: int, j: int) -> float:
    """Hover cell (i, j) of a canvas heatmap; the weight its tooltip reads."""
    heat.locator("canvas").scroll_into_view_if_needed()
    plot = json.loads(heat.get_attribute("data-plot"))
    cells = page.evaluate(
        "(n) => n.querySelector('canvas').getBoundingClientRect().toJSON()", heat.element_handle()
    )
    r0, r1, c0, c1 = (int(v) for v in heat.get_attribute("data-painted").split(","))
    x = cells["x"] + plot["left"] + (j - c0 + 0.5) * plot["w"] / (c1 - c0)
    y = cells["y"] + plot["top"] + (i - r0 + 0.5) * plot["h"] / (r1 - r0)
    page.mouse.move(x, y)
    page.wait_for_function(
        "([n, want]) => n.dataset.hover === want", arg=[heat.element_handle(), f"{i},{j}"]
    )
    tip = heat.locator(".heat-tip").inner_text()
    return float(re.search(r"weight: ([0-9.]+)", tip)[1])


def test_the_tour_draws_offline_from_its_saved_outputs(tour, chromium_browser):
    nb, work = tour
    outputs = html_outputs(nb)
    assert len(outputs) == 3  # the explorer, the translator's head view, the GPT-2 heatmap
    gpt2_weights = json.loads(nb.cells[-1].outputs[0]["text"])
    page_file = work / "outputs.html"
    # in a dark theme (JupyterLab dark: light text on a dark page), as a notebook shows them
    dark = "<style>body { background: #111; color: #eee; } code { background: #333; }</style>"
    page_file.write_text(
        f"<!DOCTYPE html><html lang='en'><meta charset='utf-8'><title>tour</title>{dark}<body>"
        + "\n".join(outputs)
    )
    page, seen = open_offline(chromium_browser, page_file.as_uri())
    try:
        roots = page.locator("[data-attnviz]")
        assert roots.count() == 3
        ids = page.evaluate("() => [...document.querySelectorAll('[id]')].map(n => n.id)")
        assert len(ids) == len(set(ids)), ids

        explorer, translator, gpt2 = (roots.nth(k) for k in range(3))
        colours = explorer.evaluate(
            """(n) => [getComputedStyle(n).backgroundColor,
                       getComputedStyle(n.querySelector('.attnviz-input')).color,
                       getComputedStyle(n.querySelector('.attnviz-model')).backgroundColor,
                       getComputedStyle(n.querySelector('svg.head-view .tokens text:not(.special)')).fill]"""
        )
        ink = "rgb(27, 33, 48)"
        assert colours == ["rgb(255, 255, 255)", ink, "rgba(0, 0, 0, 0)", ink]  # readable
        assert explorer.locator("svg.head-view line").count() > 0
        assert translator.locator("select[aria-label=attention]").input_value() == "decoder.cross"
        assert translator.locator("svg.head-view line").count() > 0

        # the GPT-2 heatmap reads the weights the model gave
        heat = gpt2.locator(".attnviz-heat")
        assert (heat.get_attribute("data-layer"), heat.get_attribute("data-head")) == ("1", "2")
        for i, j in [(3, 1), (6, 6), (5, 0)]:
            assert hover_cell(page, heat, i, j) == pytest.approx(gpt2_weights[i][j], abs=1e-3)

        # two outputs on one page both answer: the explorer's grid picks its heatmap's head
        explorer.locator('.thumb[data-layer="2"][data-head="1"]').click()
        heat_x = explorer.locator(".attnviz-heat")
        page.wait_for_function(
            "(n) => n.dataset.layer === '2' && n.dataset.head === '1' && n.dataset.painted",
            arg=heat_x.element_handle(),
        )
        assert "layer 2 · head 1" in heat_x.locator(".heat-title").inner_text()
        assert hover_cell(page, heat, 4, 2) == pytest.approx(gpt2_weights[4][2], abs=1e-3)
        assert axe_violations(page) == []
        assert seen["requests"] == [] and seen["errors"] == []
    finally:
        page.context.close()


def test_the_exported_file_opens_from_disk(tour, chromium_browser):
    _, work = tour
    exported = work / "attention.html"
    page, seen = open_offline(chromium_browser, exported.as_uri())
    try:
        about = page.locator(".attnviz-about").inner_text()
        import attnviz

        assert "decoder-mini" in about and "the cat sat on the mat" in about
        assert attnviz.__version__ in about
        assert page.locator("svg.head-view line").count() > 0
        assert seen["requests"] == [] and seen["errors"] == []
    finally:
        page.context.close()


def test_tour_is_committed_without_outputs():
    nb = nbformat.read(TOUR, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert os.path.getsize(TOUR) < 20_000


def test_the_explorer_exports_the_view_as_one_offline_page(ui, chromium_browser, tmp_path):
    text = "the dog bites the man"
    ui.goto(
        f"/?model=decoder-mini&text={text.replace(' ', '+')}&layer=1&head=2",
        wait_for="#heatmap .main-svg",
    )
    button = ui.page.locator('.export[data-export="heatmap"] button[data-format="html"]')
    assert button.inner_text() == "HTML (standalone)"
    with ui.page.expect_download() as info:
        button.click()
    saved = tmp_path / "explorer.html"
    info.value.save_as(saved)
    assert info.value.suggested_filename.endswith(".html")
    # scores on screen: the page (weights) would not be what is shown, and the banner says so
    ui.page.select_option("#values-select", "scores")
    button.click()
    ui.wait("#error-banner")
    assert "shows attention weights" in ui.page.locator("#error-banner").inner_text()

    page, seen = open_offline(chromium_browser, saved.as_uri())
    try:
        heat = page.locator(".attnviz-heat")
        assert (heat.get_attribute("data-layer"), heat.get_attribute("data-head")) == ("1", "2")
        body = {"model": "decoder-mini", "text": text, "layers": [1], "heads": [2]}
        weights = post_json(ui.base, "/attention", body)["attention"]["decoder.self"][0][0]
        for i, j in [(3, 1), (5, 5)]:
            assert hover_cell(page, heat, i, j) == pytest.approx(weights[i][j], abs=1e-3)
        assert text in page.locator(".attnviz-about").inner_text()
        assert seen["requests"] == [] and seen["errors"] == []
    finally:
        page.context.close()
