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


# ------------------------------------------------------------------------------------ issue 14
# Each of these was a 500, or a request the documented schema allows that the server refused.
SURROGATE = "a \ud800 b"  # JSON "a \ud800 b": a lone UTF-16 surrogate, not Unicode


def raw_json(client, path, text: str):
    """json.dumps escapes the surrogate as \\ud800, exactly what a browser sends."""
    return client.post(
        API + path, content=json.dumps(text), headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/tokenize", {"model": "ENC", "text": SURROGATE}, "text"),
        ("/attention", {"model": "ENC", "text": SURROGATE}, "text"),
        ("/attention", {"model": "S2S", "text": "the cat", "target": SURROGATE}, "target"),
        ("/generate", {"model": "DEC", "text": SURROGATE}, "text"),
        ("/fill-mask", {"model": "ENC", "text": SURROGATE + " [MASK]"}, "text"),
        ("/classify", {"model": "ENC", "text": SURROGATE}, "text"),
        ("/rope/relative", {"model": "DEC", "text": SURROGATE}, "text"),
        ("/tokenize", {"model": SURROGATE, "text": "hi"}, "model"),
    ],
)
def test_a_lone_surrogate_is_422_naming_the_field(client, model_ids, path, body, field):
    names = {"ENC": model_ids["encoder"], "DEC": model_ids["decoder"], "S2S": model_ids["seq2seq"]}
    body = {k: names.get(v, v) for k, v in body.items()}
    err = error_of(raw_json(client, path, body))
    assert err["field"] == field and err["code"] == "invalid_text"
    assert "surrogate" in err["message"]


def test_a_lone_surrogate_in_a_key_is_422_too(client, enc):
    err = error_of(raw_json(client, "/tokenize", {"model": enc, "text": "hi", "\udc00": 1}))
    assert err["field"] == "body" and err["code"] == "invalid_text"


def test_an_error_message_that_echoes_a_surrogate_is_still_json():
    from app.errors import error_body

    body = json.loads(error_body("unknown_model", "unknown model '\ud800'", "model"))
    assert body["error"]["message"] == "unknown model '\\ud800'"


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "encoder-mini", "text": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"model": "encoder-mini", "text": "\xff\xfe"}',
        "\ufeff{}".encode("utf-16-le"),
    ],
)
def test_a_body_that_is_not_utf8_is_422_naming_body(client, body):
    r = client.post(f"{API}/tokenize", content=body, headers={"Content-Type": "application/json"})
    err = error_of(r)
    assert err["field"] == "body" and "UTF-8" in err["message"]


def test_a_repeated_json_key_is_422_naming_body(client, enc):
    raw = f'{{"model": "nope", "model": "{enc}", "text": "the cat"}}'
    r = client.post(f"{API}/attention", content=raw, headers={"Content-Type": "application/json"})
    err = error_of(r)
    assert err["field"] == "body" and "'model'" in err["message"] and "twice" in err["message"]
    nested = f'{{"model": "{enc}", "text": "the cat", "layers": [0], "layers": [1]}}'
    r = client.post(
        f"{API}/attention", content=nested, headers={"Content-Type": "application/json"}
    )
    assert error_of(r)["field"] == "body"


@pytest.mark.parametrize(
    "temperature,top_p", [(1e-38, 1.0), (1e-39, 1.0), (0.7, 1e-46), (5e-324, 5e-324)]
)
def test_a_tiny_temperature_or_top_p_decodes_greedily(client, dec, temperature, top_p):
    """The limit of sampling as the temperature (or the nucleus) shrinks is greedy decoding."""
    greedy = client.post(f"{API}/generate", json={"model": dec, "text": "the cat"})
    body = {"model": dec, "text": "the cat", "strategy": "sample", "seed": 3}
    cold = client.post(f"{API}/generate", json={**body, "temperature": temperature, "top_p": top_p})
    assert cold.status_code == 200, cold.text
    assert cold.json()["output"] == greedy.json()["output"]
    params = {"model": dec, "text": "the cat", "strategy": "sample", "seed": 3}
    stream = client.get(
        f"{API}/generate/stream", params={**params, "temperature": temperature, "top_p": top_p}
    )
    assert stream.status_code == 200 and "event: error" not in stream.text
    assert "event: done" in stream.text


def test_mask_alone_and_special_tokens_typed_in_the_text_are_valid(client, enc):
    r = client.post(f"{API}/fill-mask", json={"model": enc, "text": "[MASK]"})
    assert r.status_code == 200, r.text
    assert len(r.json()["masks"]) == 1 and r.json()["masks"][0]["predictions"]
    r = client.post(f"{API}/attention", json={"model": enc, "text": "[CLS]", "layers": [0]})
    assert r.status_code == 200, r.text
    typed = [t for t in r.json()["tokens"]["source"] if t["end"] > t["start"]]
    assert [t["text"] for t in typed] == ["[CLS]"]


def test_integral_floats_are_integers_as_json_schema_says(client, enc):
    """JSON Schema's integer includes 1.0; strings and fractions stay refused."""
    r = client.post(f"{API}/attention", json={"model": enc, "text": "the cat", "layers": [0.0]})
    assert r.status_code == 200 and r.json()["layers"] == [0]


def test_the_default_max_new_tokens_never_exceeds_the_servers_limit(checkpoint_dir, model_ids):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.helpers import make_settings

    with TestClient(create_app(make_settings(checkpoint_dir, max_new_tokens=4))) as c:
        r = c.post(f"{API}/generate", json={"model": model_ids["decoder"], "text": "the cat"})
        assert r.status_code == 200, r.text
        assert len(r.json()["steps"]) <= 4
        big = {"model": model_ids["decoder"], "text": "the cat", "max_new_tokens": 5}
        assert error_of(c.post(f"{API}/generate", json=big))["field"] == "max_new_tokens"
