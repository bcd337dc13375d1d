"""The bad-input catalogue: each case is a 4xx naming the field (never a 500 or a hang),
and valid-but-unusual text (emoji, right-to-left, control characters) is a 200."""

from __future__ import annotations

import json

import pytest

API = "/api/v1"


def error_of(r, status=422):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert "Traceback" not in r.text
    return body["error"]


@pytest.fixture(scope="module")
def dec(model_ids):
    return model_ids["decoder"]


@pytest.fixture(scope="module")
def enc(model_ids):
    return model_ids["encoder"]


# ------------------------------------------------------------------------------------ text
@pytest.mark.parametrize("path", ["/tokenize", "/attention", "/generate", "/classify"])
@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t  \r\n", "a" * 100_000, "the \x00 cat"], ids=lambda t: repr(t)[:12]
)
def test_bad_text_is_422_naming_text(client, model_ids, path, text):
    mid = model_ids[
        "classifier" if path == "/classify" and "classifier" in model_ids else "encoder"
    ]
    if path == "/generate":
        mid = model_ids["decoder"]
    err = error_of(client.post(API + path, json={"model": mid, "text": text}))
    assert err["field"] == "text"


def test_too_many_tokens_is_422_naming_text(client, dec):
    err = error_of(client.post(f"{API}/attention", json={"model": dec, "text": "cat " * 600}))
    assert err["field"] == "text" and err["code"] == "too_many_tokens"


@pytest.mark.parametrize(
    "text",
    [
        "the cat 🐱 ate the 🐭 👍🏽",
        "القطة أكلت الفأر",  # right-to-left
        "שלום עולם",
        "the\x01cat\x07sat\x1b[31m on the mat",  # control characters
        "日本語のテキスト",
        "e\u0301 \u200b zero-width",
    ],
)
@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_unusual_but_valid_text_tokenizes(client, model_ids, kind, text):
    mid = model_ids[kind]
    tok = client.post(f"{API}/tokenize", json={"model": mid, "text": text})
    assert tok.status_code == 200, tok.text
    assert any(not t["special"] for t in tok.json()["tokens"])
    att = client.post(f"{API}/attention", json={"model": mid, "text": text, "layers": [0]})
    assert att.status_code == 200, att.text


def test_text_that_normalises_to_nothing_is_422(client, enc):
    # the BERT normaliser drops control characters: nothing is left to attend to
    err = error_of(client.post(f"{API}/tokenize", json={"model": enc, "text": "\x01\x02\x03"}))
    assert err["field"] == "text"


# ------------------------------------------------------------------------------------ body
def test_invalid_json_is_422_naming_body(client, enc):
    r = client.post(
        f"{API}/attention",
        content=b'{"model": "x", "text": ',
        headers={"Content-Type": "application/json"},
    )
    err = error_of(r)
    assert err["field"] == "body" and "JSON" in err["message"]


def test_a_body_that_is_not_an_object(client):
    err = error_of(client.post(f"{API}/tokenize", json=["a", "b"]))
    assert err["field"] == "body"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_nan_and_infinity_literals_are_422(client, dec, literal):
    raw = f'{{"model": "{dec}", "text": "hi", "strategy": "sample", "temperature": {literal}}}'
    r = client.post(f"{API}/generate", content=raw, headers={"Content-Type": "application/json"})
    assert error_of(r)["field"] == "temperature"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"text": "hello"}, "model"),
        ({"model": 3, "text": "hello"}, "model"),
        ({"model": "MODEL", "text": 42}, "text"),
        ({"model": "MODEL", "text": ["a"]}, "text"),
        ({"model": "MODEL", "text": "hi", "surprise": 1}, "surprise"),
        ({"model": "MODEL", "text": "hi", "layers": "0"}, "layers"),
        ({"model": "MODEL", "text": "hi", "layers": [0.5]}, "layers.0"),
        ({"model": "MODEL", "text": "hi", "heads": [True]}, "heads.0"),
        ({"model": "MODEL", "text": "hi", "format": "xml"}, "format"),
        ({"model": "MODEL", "text": "hi", "include": ["everything"]}, "include.0"),
    ],
)
def test_wrong_types_and_extra_fields(client, enc, body, field):
    body = {k: (enc if v == "MODEL" else v) for k, v in body.items()}
    assert error_of(client.post(f"{API}/attention", json=body))["field"] == field


def test_unknown_model_is_404(client):
    err = error_of(client.post(f"{API}/tokenize", json={"model": "gpt-5", "text": "hi"}), 404)
    assert err["field"] == "model"


# ------------------------------------------------------------------------------------ indices
@pytest.mark.parametrize("field", ["layers", "heads"])
@pytest.mark.parametrize("index", [-1, 99])
def test_bad_layer_and_head_indices(client, model_ids, field, index):
    for kind in ("encoder", "seq2seq"):
        body = {"model": model_ids[kind], "text": "the cat", field: [0, index]}
        assert error_of(client.post(f"{API}/attention", json=body))["field"] == f"{field}.1"


@pytest.mark.parametrize("field", ["layer", "head", "query", "key", "max_position"])
@pytest.mark.parametrize("value", [-1, 10**6])
def test_bad_rope_relative_indices(client, dec, field, value):
    body = {"model": dec, "text": "the cat sat", field: value}
    assert error_of(client.post(f"{API}/rope/relative", json=body))["field"] == field


def test_target_only_for_seq2seq(client, dec):
    body = {"model": dec, "text": "the cat", "target": "le chat"}
    assert error_of(client.post(f"{API}/attention", json=body))["field"] == "target"


def test_text_and_token_ids_are_exclusive(client, dec):
    body = {"model": dec, "text": "the cat", "token_ids": [1, 2]}
    assert error_of(client.post(f"{API}/attention", json=body))["field"] == "text"
    body = {"model": dec, "token_ids": [1, 10**7]}
    assert error_of(client.post(f"{API}/attention", json=body))["field"] == "token_ids.1"


# ------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize(
    "override,field",
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 10**6}, "max_new_tokens"),
        ({"max_new_tokens": 2.5}, "max_new_tokens"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": -0.1}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "42"}, "seed"),
        ({"seed": -3}, "seed"),
        ({"seed": 2**70}, "seed"),
        ({"strategy": "beam"}, "strategy"),
    ],
)
def test_bad_sampling_parameters(client, dec, override, field):
    body = {"model": dec, "text": "the cat", "strategy": "sample", **override}
    assert error_of(client.post(f"{API}/generate", json=body))["field"] == field


@pytest.mark.parametrize(
    "params,field",
    [
        ({"temperature": "nan"}, "temperature"),
        ({"temperature": "inf"}, "temperature"),
        ({"top_p": "2"}, "top_p"),
        ({"seed": "x"}, "seed"),
        ({"max_new_tokens": "0"}, "max_new_tokens"),
        ({"text": " "}, "text"),
    ],
)
def test_bad_stream_parameters_are_json_422_before_streaming(client, dec, params, field):
    r = client.get(f"{API}/generate/stream", params={"model": dec, "text": "hi", **params})
    assert r.headers["content-type"].startswith("application/json")
    assert error_of(r)["field"] == field


# ------------------------------------------------------------------------------------ size
def test_oversized_body_is_413(client, enc):
    big = json.dumps({"model": enc, "text": "a" * (2 << 20)})
    r = client.post(f"{API}/tokenize", content=big, headers={"Content-Type": "application/json"})
    assert error_of(r, 413)["code"] == "payload_too_large"


def test_oversized_streamed_body_is_413(client, enc):
    def chunks():
        yield b'{"model": "' + enc.encode() + b'", "text": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    r = client.post(
        f"{API}/tokenize", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert error_of(r, 413)["code"] == "payload_too_large"


def test_wrong_method_is_405_in_the_error_shape(client):
    error_of(client.get(f"{API}/attention"), 405)
