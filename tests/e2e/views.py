"""The views the browser tests open: a URL each, and what must be drawn once its results are
shown (test_pages checks they load clean; test_accessibility runs axe on them)."""

from __future__ import annotations

VIEWS = {
    "explorer": (
        "/?model=seq2seq-en-fr",
        ["#heatmap .main-svg", "#head-view line", ".thumb canvas", "#model-says .says-block"],
    ),
    "math": ("/math?model=decoder-mini", ["[data-step='8'] .main-svg", "#row-detail table"]),
    "decode": ("/decode?model=seq2seq-en-fr&step=3", ["#align .main-svg", "#topk .main-svg"]),
    "rope": (
        "/rope?model=decoder-mini",
        ["#angles .main-svg", "#pair .main-svg", "#relative .main-svg", "#relative-sin .main-svg"],
    ),
    "positions": (
        "/positions?model=seq2seq-en-fr",
        ["#table .main-svg", "#emb-sum .main-svg", "#similarity .main-svg"],
    ),
    "block": (
        "/block?model=decoder-mini",
        [
            "#order-panel svg.block-order",
            "#residual-panel .main-svg",
            "#norm-panel .main-svg",
            "#compare-panel .main-svg",
            "#ffn-panel .main-svg",
        ],
    ),
    "heads": (
        "/heads?model=decoder-mini&text=the+cat+sat+on+the+mat+and+the+cat+ate",
        ["#scores .main-svg", "#weights .main-svg", "#importance .main-svg", "#heads-table td"],
    ),
    "patch": (
        "/patch?model=seq2seq-en-fr",
        ["#resid_pre .main-svg", "#head_z .main-svg", "#memory .main-svg", "#top-cells a"],
    ),
    "rnn": (
        "/rnn?model=rnn-en-fr",
        [
            "#states .main-svg",
            "#gates .main-svg",
            "#gradients .main-svg",
            "#align-rnn .main-svg",
            "#align-transformer .main-svg",
            "#step-detail table",
        ],
    ),
    "lesson": (
        "/lesson?step=5",
        ["#step-body svg.block-order", "#step-body .main-svg"],
    ),
    "card": ("/card?model=encoder-mini", ["#arch-svg", "#params .main-svg", "#loss .main-svg"]),
    "model-page": ("/models/seq2seq-en-fr", ["#arch-svg", "#params .main-svg"]),
}
