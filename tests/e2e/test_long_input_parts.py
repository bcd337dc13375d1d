"""The pieces under the long-input views, run in the browser against independent references:
token labels for each tokenizer's markers (lib/tokens.js), the binary transport's decoding
(lib/tensor.js) against the JSON answer, and the canvas heatmap's pixels (lib/heatcanvas.js):
a pattern one cell wide stays visible when 2048 cells share a few hundred pixels."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def open_a_page(ui):
    ui.goto("/positions?model=encoder-mini")
    ui.wait("#model-select option", state="attached")


def run_module(ui, module: str, body: str, arg=None):
    """Evaluate `body` (an async function of (m, arg)) with the module imported as m."""
    return ui.page.evaluate(
        f"async (arg) => {{ const m = await import('/static/js/lib/{module}'); return ({body})(m, arg); }}",
        arg,
    )


def test_token_labels_read_the_same_for_every_tokenizer(ui):
    open_a_page(ui)
    # WordPiece with offsets (the user's text): "tokenizers" -> token | izer | s, "jumped," -> jumped | ,
    wordpiece = [
        {"text": "[CLS]", "start": 0, "end": 0, "special": True},
        {"text": "token", "start": 0, "end": 5, "special": False},
        {"text": "izer", "start": 5, "end": 9, "special": False},
        {"text": "s", "start": 9, "end": 10, "special": False},
        {"text": "jumped", "start": 11, "end": 17, "special": False},
        {"text": ",", "start": 17, "end": 18, "special": False},
        {"text": "[SEP]", "start": 18, "end": 18, "special": True},
    ]
    labels = run_module(
        ui, "tokens.js", "(m, t) => m.labelTokens(t).map((x) => x.label)", wordpiece
    )
    assert labels == ["[CLS]", "token", "##izer", "##s", "jumped", ",", "[SEP]"]
    # known only by id: byte-level BPE (Ġ marks a word start), SentencePiece (▁), WordPiece (##)
    ids_only = [
        [
            {"text": "<|endoftext|>", "special": True},
            {"text": "Ġjump"},
            {"text": "ing"},
            {"text": "Ġover"},
        ],
        [{"text": "<s>", "special": True}, {"text": "▁jump"}, {"text": "ing"}, {"text": "▁over"}],
        [{"text": "[CLS]", "special": True}, {"text": "jump"}, {"text": "##ing"}, {"text": "over"}],
    ]
    for tokens in ids_only:
        got = run_module(ui, "tokens.js", "(m, t) => m.labelTokens(t).map((x) => x.label)", tokens)
        assert got[1:] == ["jump", "##ing", "over"], got
    # candidates of a next-token list: specials by name, bytes of a character with their id
    cases = [
        ({"id": 5, "text": " the"}, {}, "the"),
        ({"id": 6, "text": "ing"}, {}, "##ing"),
        ({"id": 6, "text": "ing"}, {"afterWord": False}, "ing"),
        ({"id": 7, "text": "ing"}, {"marksStarts": False}, "ing"),
        ({"id": 8, "text": "##s"}, {"marksStarts": False}, "##s"),
        ({"id": 0, "text": "<|endoftext|>"}, {}, "<|endoftext|>"),
        ({"id": 2, "text": "</s>"}, {}, "</s>"),
        ({"id": 9, "text": "\ufffd"}, {}, "\ufffd (id 9)"),
    ]
    for token, opts, want in cases:
        got = run_module(ui, "tokens.js", "(m, a) => m.candidateLabel(a[0], a[1])", [token, opts])
        assert got == want, (token, opts, got)


def test_binary_answers_decode_to_the_json_answer(ui, app_server):
    open_a_page(ui)
    body = {"model": "seq2seq-en-fr", "text": "the cat sat on the mat", "target": "le chat"}
    body["include"] = ["scores", "qkv"]
    got = run_module(
        ui,
        "api.js",
        """async (m, body) => {
             const a = await m.attentionBinary(body);
             const out = {};
             for (const [s, t] of Object.entries(a.attention)) out[s] = { shape: t.shape, data: t.toNested() };
             out.scores = a.scores["decoder.self"].toNested();
             out.z = a.qkv["decoder.cross"].z.toNested();
             return out;
           }""",
        body,
    )
    req = urllib.request.Request(
        app_server.url + "/api/v1/attention",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        want = json.load(r)
    for site, weights in want["attention"].items():
        assert got[site]["shape"] == list(np.shape(weights))
        assert np.allclose(
            got[site]["data"], weights, atol=1e-3
        )  # f16, probabilities on a 1e-3 grid
    scores = np.array(want["scores"]["decoder.self"], dtype=float)  # masked: None
    mine = np.array(got["scores"], dtype=float)
    assert np.array_equal(np.isnan(mine), np.isnan(scores))  # the mask survives as NaN
    assert np.allclose(mine[~np.isnan(mine)], scores[~np.isnan(scores)], rtol=2e-3, atol=2e-3)
    assert np.allclose(got["z"], want["qkv"]["decoder.cross"]["z"], rtol=2e-3, atol=2e-3)


def test_a_one_cell_pattern_stays_visible_at_2048_tokens(ui):
    """A diagonal one cell wide and one hot key column, zoomed out: every pixel they touch shows
    the largest value it covers (yellow), the rest the smallest (dark purple)."""
    open_a_page(ui)
    pixels = run_module(
        ui,
        "heatcanvas.js",
        """async (m) => {
             const n = 2048;
             const data = new Float32Array(n * n);
             for (let i = 0; i < n; i++) { data[i * n + i] = 1; data[i * n + 700] = 1; }
             const div = document.createElement('div');
             div.style.width = '600px';
             document.querySelector('main').prepend(div);
             const heat = m.canvasHeatmap(div);
             await heat.draw({ rows: n, cols: n, data }, { zmin: 0, zmax: 1, square: true });
             const canvas = div.querySelector('canvas');
             const p = JSON.parse(div.dataset.plot);
             const dpr = window.devicePixelRatio || 1;
             const ctx = canvas.getContext('2d');
             const at = (fi, fj) => Array.from(ctx.getImageData(
               Math.floor((p.left + fj * p.w) * dpr), Math.floor((p.top + fi * p.h) * dpr), 1, 1).data.slice(0, 3));
             const cell = (i, j) => at((i + 0.5) / n, (j + 0.5) / n);
             return {
               perPixel: n / (p.w * dpr),
               diagonal: [100, 901, 1500, 2000].map((i) => cell(i, i)),
               column: [50, 1234, 1999].map((i) => cell(i, 700)),
               off: [[100, 1800], [1800, 100], [1000, 300]].map(([i, j]) => cell(i, j)),
               note: div.querySelector('.heat-note').textContent,
             };
           }""",
    )
    assert pixels["perPixel"] > 2  # several cells per pixel: zoomed out
    yellow, purple = [253, 231, 37], [68, 1, 84]  # viridis at 1 and at 0
    for rgb in pixels["diagonal"] + pixels["column"]:
        assert max(abs(a - b) for a, b in zip(rgb, yellow, strict=True)) <= 2, rgb
    for rgb in pixels["off"]:
        assert max(abs(a - b) for a, b in zip(rgb, purple, strict=True)) <= 2, rgb
    assert "largest" in pixels["note"]
