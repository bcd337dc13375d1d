"""bench/RESULTS.md sections written by the browser benches: each between its own markers, the
rest of the file (the API bench's, other sections) left alone. Only `make bench` sets
ATTNVIZ_BENCH_RESULTS; a plain test run never touches that tracked file."""

from __future__ import annotations

import os
from pathlib import Path

RESULTS_ENV = "ATTNVIZ_BENCH_RESULTS"


def write_section(name: str, text: str, results: Path | None = None) -> None:
    """Put `text` between <!-- e2e:NAME:begin --> and its end marker (appended when new)."""
    if results is None:
        if not os.environ.get(RESULTS_ENV):
            return
        results = Path(os.environ[RESULTS_ENV])
    begin, end = f"<!-- e2e:{name}:begin -->", f"<!-- e2e:{name}:end -->"
    body = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = results.read_text() if results.exists() else "# Benchmark results\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + body + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old.rstrip() + "\n\n" + body
    results.write_text(new)
