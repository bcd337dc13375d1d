"""What the browser tests read off URLs and ask the server directly (the answers a page must
show)."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import parse_qs, urlparse


def params(url: str) -> dict:
    """A URL's query as {key: its first value}."""
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def post(base: str, path: str, body: dict) -> bytes:
    """POST a JSON body to `base + /api/v1 + path`; the raw answer."""
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return r.read()


def post_json(base: str, path: str, body: dict) -> dict:
    return json.loads(post(base, path, body))
