"""The pieces under the long-input views, run in the browser against independent references:
token labels for each tokenizer's markers (lib/tokens.js), the binary transport's decoding
(lib/tensor.js) against the JSON answer, and the canvas heatmap's pixels (lib/heatcanvas.js):
a pattern one cell wide stays visible when 2048 cells share a few hundred pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.e2e.urls import post_json

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
    want = post_json(app_server.url, "/attention", body)
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


def sse(events: list[tuple[str, dict]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


@pytest.mark.parametrize("pooled", [False, True])
def test_the_player_reads_selected_and_pooled_rows(ui, pooled):
    """The decoding stream's contract for long contexts: `rows` in the prompt event names the
    layers and heads each step's attention holds ([L'][H'][keys]); `attention_edges` (pooled
    rows) says which tokens each value covers. A stream in that form (served here by the test)
    is drawn as the rows it holds; pooled blocks are spread over their tokens."""
    prompt = [
        {"id": 1, "text": "<|endoftext|>", "start": 0, "end": 0, "special": True},
        {"id": 260, "text": "the", "start": 0, "end": 3, "special": False},
        {"id": 318, "text": "cat", "start": 4, "end": 7, "special": False},
    ]
    rows = [[0.5, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]]  # step 1 over 3 keys, step 2 over 4
    steps = []
    for k, row in enumerate(rows):
        step = {
            "step": k + 1,
            "token": {"id": 370 + k, "text": [" ate", " the"][k]},
            "prob": 0.9,
            "top": [{"id": 370 + k, "text": [" ate", " the"][k], "prob": 0.9}],
        }
        if pooled:  # two blocks: tokens [0, n-1) and [n-1, n)
            n = len(row)
            step["attention"] = {"decoder.self": [[[sum(row[:-1]), row[-1]]]]}
            step["attention_edges"] = {"decoder.self": [0, n - 1, n]}
        else:
            step["attention"] = {"decoder.self": [[row]]}
        steps.append(step)
    body = sse(
        [("prompt", {"model": "decoder-mini", "kind": "decoder", "prompt": prompt,
                     "rows": {"layers": [1], "heads": [2], "pool": 2 if pooled else None}})]
        + [("step", s) for s in steps]
        + [("done", {"output": {"text": " ate the", "tokens": [s["token"] for s in steps]},
                     "stop_reason": "max_new_tokens"})]
    )  # fmt: skip
    ui.page.route(
        "**/api/v1/generate/stream?*",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body),
    )
    ui.goto("/decode?model=decoder-mini&text=the+cat&max_new_tokens=2&layer=1&head=2&step=2")
    ui.page.wait_for_function("() => document.querySelector('#align')?.data?.[0]?.z?.length === 2")
    z = ui.page.evaluate("() => document.querySelector('#align').data[0].z")
    if pooled:
        want = [[0.375, 0.375, 0.25, None], [0.2, 0.2, 0.2, 0.4]]
    else:
        want = [[0.5, 0.25, 0.25, None], rows[1]]
    for got_row, want_row in zip(z, want, strict=True):  # None: a key not generated yet
        filled = [v for v in want_row if v is not None]
        assert got_row[: len(filled)] == pytest.approx(filled)
        assert all(v is None for v in got_row[len(filled) :])
