"""attnviz.show / export: how large each output is, and how long from show() to drawn.

Sizes: every view of decoder-mini (4 layers × 4 heads, trained) on a 128-token text, and of
random attention of the issue's shape (6 layers × 8 heads: a softmax of N(0, 2²) logits, the
causal mask applied: random weights compress worse than a trained model's) at 64 and 128
tokens. Time: show() and _repr_html_() in Python, then the output opened from file:// in
headless Chromium (every other request blocked) until every panel is drawn; the median of
``--runs`` runs per view. Prints a Markdown table; paste it into bench/RESULTS.md with the
load average it prints.

    .venv/bin/python bench/bench_notebook.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import attnviz  # noqa: E402
from attnviz.payload import answer_json  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
SENTENCE = "the cat sat on the mat and the dog ran to the park "


def random_attention(layers: int, heads: int, n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(layers, heads, n, n)) * 2
    x = np.where(np.tril(np.ones((n, n), bool)), x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def text_of(n_tokens: int) -> str:
    """A text decoder-mini reads as exactly ``n_tokens`` tokens (BOS included)."""
    words = (SENTENCE * 40).split()
    for k in range(1, len(words)):
        out = attnviz.show(model="decoder-mini", text=" ".join(words[:k]), view="heatmap")
        if len(answer_json(out.payload)["tokens"]["source"]) >= n_tokens:
            return " ".join(words[:k])
    raise RuntimeError("the sentence is too short")


def drawn_ms(browser, path: Path) -> float:
    """ms from navigation start to every output on the page drawn."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.route(
        "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
    )
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-attnviz]')].every(n => n.dataset.attnviz === 'drawn')",
        timeout=120_000,
    )
    ms = page.evaluate("() => performance.now()")
    context.close()
    return ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    text128 = text_of(128)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| input | view | output size | show() + HTML (ms) | page drawn (ms) | total (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    cases = []
    for view in attnviz.VIEWS:
        cases.append(
            ("decoder-mini 4 × 4, 128 tokens", view, dict(model="decoder-mini", text=text128))
        )
    for n in (64, 128):
        a = random_attention(6, 8, n)
        tokens = [f"t{i}" for i in range(n)]
        for view in attnviz.VIEWS:
            cases.append((f"random 6 × 8, {n} tokens", view, dict(attention=a, tokens=tokens)))
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        drawn_ms(browser, attnviz.show(**cases[0][2], view="heads").save(Path(tmp) / "warm.html"))
        for label, view, kwargs in cases:
            py, page_ms, size = [], [], 0
            for run in range(args.runs):
                start = time.perf_counter()
                html = attnviz.show(**kwargs, view=view).html()
                py.append((time.perf_counter() - start) * 1000)
                path = Path(tmp) / f"run{run}.html"
                path.write_text(html)
                size = len(html.encode())
                page_ms.append(drawn_ms(browser, path))
            a, b = statistics.median(py), statistics.median(page_ms)
            print(
                f"| {label} | {view} | {size / 1024:,.0f} kB | {a:,.0f} | {b:,.0f} | {a + b:,.0f} |"
            )
        browser.close()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
