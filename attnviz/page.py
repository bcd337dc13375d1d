"""One notebook output or one exported page: the view's ES modules, its styles and its answer,
all inline, so that it draws with nothing fetched (Jupyter without a network, a file:// page).

The modules are static/js's own, read when the output is built: ``static/js/views/
standalone.js`` and everything it imports, in dependency order, each import specifier (and
the raster worker's ``new URL(…, import.meta.url)``) replaced by a placeholder that
``static/js/standalone-loader.js`` turns into a blob: URL. No forked copy, no build step.

The modules and the data travel gzipped and base64-encoded (see ``_packed``).

Styles: the head view's, the grid's and the canvas heatmap's sections of static/css/app.css,
scoped under ``.attnviz-standalone``, then static/css/standalone.css (the output's frame: a
light card that stays readable in a dark notebook theme).
"""

from __future__ import annotations

import base64
import gzip
import html
import re
import uuid
from pathlib import Path

import orjson

from app.config import ROOT

STATIC = ROOT / "static"
JS = STATIC / "js"
ENTRY = "views/standalone.js"
LOADER = JS / "standalone-loader.js"
SCOPE = ".attnviz-standalone"
#: the sections of app.css (their "/* ---- name" headers) that the standalone view's components use
CSS_SECTIONS = ("head view", "grid of thumbnails", "canvas heatmaps")

_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}/[^"']+)\2""")
_WORKER_URL = re.compile(r"""new URL\((["'])(\.{1,2}/[^"']+)\1,\s*import\.meta\.url\)""")


def _placeholder(index: int) -> str:
    return f"__attnviz_module_{index}__"


def bundle(entry: str = ENTRY) -> dict:
    """{"modules": [source, ...] (dependencies first), "entry": index of ``entry``}."""
    order: list[str] = []
    sources: dict[str, str] = {}
    visiting: set[str] = set()

    def visit(rel: str) -> None:
        if rel in sources:
            return
        if rel in visiting:
            raise RuntimeError(f"static/js: an import cycle through {rel}")
        visiting.add(rel)
        path = (JS / rel).resolve()
        if not path.is_relative_to(JS.resolve()) or not path.is_file():
            raise RuntimeError(f"static/js: {rel} is imported but does not exist")
        text = path.read_text()
        base = Path(rel).parent

        def dep(spec: str) -> str:
            target = (base / spec).as_posix()
            parts: list[str] = []
            for part in target.split("/"):
                if part == "..":
                    parts.pop()
                elif part not in (".", ""):
                    parts.append(part)
            name = "/".join(parts)
            visit(name)
            return _placeholder(order.index(name))

        text = _IMPORT.sub(lambda m: f'{m[1]}"{dep(m[3])}"', text)
        text = _WORKER_URL.sub(lambda m: f'new URL("{dep(m[2])}")', text)
        visiting.discard(rel)
        sources[rel] = text
        order.append(rel)

    visit(entry)
    return {"modules": [sources[r] for r in order], "entry": order.index(entry)}


def _sections(css: str, names: tuple[str, ...]) -> str:
    """The text of app.css's sections with these names."""
    parts = re.split(r"^/\* ---- ", css, flags=re.M)
    return "\n".join(p.split("\n", 1)[1] for p in parts if p.split(" ---", 1)[0] in names)


def _scope(css: str) -> str:
    """Every rule's selectors prefixed with SCOPE; rules for the projector mode dropped."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        kept = [s.strip() for s in selectors.split(",") if not s.strip().startswith("html.")]
        if kept:
            out.append(", ".join(f"{SCOPE} {s}" for s in kept) + " {" + body.strip() + "}")
    return "\n".join(out)


def styles() -> str:
    app_css = (STATIC / "css" / "app.css").read_text()
    variables = re.search(r":root\s*\{([^}]*)\}", app_css)[1]
    return "\n".join(
        [
            f"{SCOPE} {{{variables.strip()}}}",
            _scope(_sections(app_css, CSS_SECTIONS)),
            (STATIC / "css" / "standalone.css").read_text(),
        ]
    )


def _packed(data: bytes) -> str:
    """gzip + base64 (the loader unpacks it with DecompressionStream): attention on the f16
    answer's 1e-3 grid compresses ~4×, the modules ~3×."""
    return base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode()


def fragment(page: dict, answer: bytes) -> str:
    """One output: a <div> with its styles, modules, answer and loader (unique ids)."""
    uid = f"attnviz-{uuid.uuid4().hex[:12]}"
    page_json = orjson.dumps(page)[:-1] + b',"answer":' + answer + b"}"
    return (
        f'<div id="{uid}" class="attnviz-standalone" data-attnviz="pending">'
        f"<style>{styles()}</style>"
        '<p class="attnviz-fallback">attnviz: this output is drawn by JavaScript. In Jupyter, '
        "trust the notebook (File › Trust) to draw it.</p>"
        f'<div class="attnviz-view" id="{uid}-view"></div>'
        '<script type="application/octet-stream" data-attnviz-modules>'
        f"{_packed(orjson.dumps(bundle()))}</script>"
        f'<script type="application/octet-stream" data-attnviz-page>{_packed(page_json)}</script>'
        f"<script>{LOADER.read_text()}</script>"
        "</div>"
    )


def document(title: str, body: str) -> str:
    """A whole page around an output, for a file that opens from disk."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{margin:1.5rem;font-family:system-ui,sans-serif;background:#f4f5f8}</style>"
        f"</head><body>\n{body}\n</body></html>\n"
    )
