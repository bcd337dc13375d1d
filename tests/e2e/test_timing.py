"""Time from Run to the first painted heatmap, measured in the browser. `make test` checks the
median and keeps the figures in test-results/; `make bench` sets ATTNVIZ_BENCH_RESULTS to
bench/RESULTS.md, and the test writes its own section there (between markers; the rest of the
file is left alone). A plain test run never touches that tracked file.

explorer.js marks `attnviz:run` when Run starts the request and `attnviz:heatmap` once
Plotly has drawn the heatmap and the browser has painted it (two animation frames later);
`attnviz:run-to-heatmap` is the measure between them. Sentences are distinct, so the
server's result cache never answers.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import statistics
import subprocess

import pytest

from tests.e2e.bench_results import write_section
from tests.e2e.conftest import CHROMIUM, ROOT

pytestmark = pytest.mark.e2e

SENTENCES = [
    "the small white bird saw the big red fish",
    "the young girl liked the green apple",
    "the happy boy found the book",
    "the woman sees the house",
    "the big dog found the cheese",
]
TARGETS = [
    "le petit oiseau blanc a vu le grand poisson rouge",
    "la jeune fille a aimé la pomme verte",
    "le garçon heureux a trouvé le livre",
    "la femme voit la maison",
    "le grand chien a trouvé le fromage",
]


def measures(page) -> list[float]:
    return page.evaluate(
        "() => performance.getEntriesByName('attnviz:run-to-heatmap').map(e => e.duration)"
    )


def test_time_from_run_to_first_heatmap(ui, app_server):
    rows = []
    cold = None
    for model_id in ("encoder-mini", "decoder-mini", "seq2seq-en-fr"):
        seq2seq = app_server.models[model_id]["kind"] == "seq2seq"
        first = f"/?model={model_id}&text=i+went+to+the+store" + (
            "&target=je+suis+all%C3%A9+au+magasin" if seq2seq else ""
        )
        ui.goto(first, wait_for="#heatmap .main-svg")
        ui.page.wait_for_function(
            "() => performance.getEntriesByName('attnviz:run-to-heatmap').length === 1"
        )
        if cold is None:  # the first page of the session: open -> painted heatmap
            cold = ui.page.evaluate(
                "() => performance.getEntriesByName('attnviz:heatmap')[0].startTime"
            )
        for i, sentence in enumerate(SENTENCES):
            ui.page.fill("#text-input", sentence)
            if seq2seq:
                ui.page.fill("#target-input", TARGETS[i])
            ui.page.click("#run-button")
            ui.page.wait_for_function(
                f"() => performance.getEntriesByName('attnviz:run-to-heatmap').length === {i + 2}"
            )
        times = measures(ui.page)[1:]  # the page-load run is counted in `cold`
        tokens = ui.page.locator("#tokens .token").count()
        rows.append((model_id, tokens, times))

    everything = [t for _, _, ts in rows for t in ts]
    median = statistics.median(everything)
    assert median < 2000, f"Run → heatmap median {median:.0f} ms"

    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "## Time to first heatmap (browser)",
        "",
        "From the Run click to the first heatmap painted in the explorer (`performance.mark` at",
        "Run; the mark after Plotly has drawn and the browser painted, two animation frames",
        "later). Headless Chromium driven by `tests/e2e/test_timing.py` against",
        "`python -m app.server` on this machine (CPU, 2 workers × 1 torch thread), 5 distinct",
        "sentences per model so the server's cache never answers. Written by `make bench`.",
        "",
        "| model | tokens (last run) | runs | median ms | min ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model_id, tokens, ts in rows:
        lines.append(
            f"| {model_id} | {tokens} | {len(ts)} | {statistics.median(ts):.0f} | {min(ts):.0f} | {max(ts):.0f} |"
        )
    lines += [
        f"| **all** | | {len(everything)} | **{median:.0f}** | {min(everything):.0f} | {max(everything):.0f} |",
        "",
        "Opening the explorer cold (navigation start → first heatmap painted, Plotly's 4.6 MB",
        f"script included): {cold:.0f} ms.",
        "",
        f"Checkpoints: {'shipped (trained)' if app_server.shipped else 'random fixture weights of the same shapes'}"
        f" · {version} · Python {platform.python_version()} · {dt.date.today().isoformat()}",
    ]
    out = ROOT / "test-results" / "time-to-first-heatmap.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cold_ms": cold, "runs": {m: ts for m, _, ts in rows}}, indent=1))
    write_section("time-to-first-heatmap", "\n".join(lines))
