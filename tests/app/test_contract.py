"""The REST contract of DESIGN section 5, endpoint by endpoint, on every model family."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard

from app.serialize import decode_f16

API = "/api/v1"
SENTENCE = "the black cat ate the mouse"
MODEL_INFO_KEYS = {
    "id", "kind", "title", "description", "n_layers", "n_heads", "d_model", "d_head", "d_ff",
    "positional", "norm", "norm_position", "activation", "vocab_size", "max_len", "n_params",
    "tasks",
}  # fmt: skip
KINDS = ["encoder", "decoder", "seq2seq"]
SITES = {
    "encoder": ["encoder.self"],
    "decoder": ["decoder.self"],
    "seq2seq": ["encoder.self", "decoder.self", "decoder.cross"],
}


def post(client, path, **body):
    return client.post(API + path, json=body)


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["device"] == "cpu"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    for name in (
        "attnviz_requests_total",
        "attnviz_request_duration_seconds_bucket",
        "attnviz_queue_depth",
        "attnviz_models_loaded",
    ):
        assert name in metrics.text


def test_models_list_and_card(client):
    models = client.get(f"{API}/models").json()["models"]
    assert {m["kind"] for m in models} >= set(KINDS)
    for m in models:
        assert set(m) >= MODEL_INFO_KEYS
        assert m["d_head"] * m["n_heads"] == m["d_model"] and m["n_params"] > 0
        card = client.get(f"{API}/models/{m['id']}").json()
        assert card["id"] == m["id"]
        parts = card["card"]["parameters"]
        assert parts["total"] == m["n_params"] == sum(v for k, v in parts.items() if k != "total")


def test_unknown_model_is_404_in_the_error_shape(client):
    r = client.get(f"{API}/models/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_model" and r.json()["error"]["field"] == "model"
    r = post(client, "/attention", model="nope", text=SENTENCE)
    assert r.status_code == 404 and r.json()["error"]["field"] == "model"
    r = client.get("/no/such/route")
    assert r.status_code == 404 and set(r.json()["error"]) == {"code", "message", "field"}


@pytest.mark.parametrize("kind", KINDS)
def test_tokenize_offsets_point_into_the_text(client, model_ids, kind):
    text = "the cat sat on the mat"
    tokens = post(client, "/tokenize", model=model_ids[kind], text=text).json()["tokens"]
    words = [t for t in tokens if not t["special"]]
    assert words and all(text[t["start"] : t["end"]] == t["text"] for t in words)
    assert all("Ġ" not in t["text"] for t in tokens)
    specials = [t for t in tokens if t["special"]]
    if kind == "encoder":
        assert tokens[0]["special"] and tokens[-1]["special"]  # [CLS] … [SEP]
    elif kind == "decoder":
        assert tokens[0]["special"] and len(specials) == 1  # BOS + text
    else:
        assert tokens[-1]["special"] and len(specials) == 1  # text + </s>


@pytest.mark.parametrize("kind", KINDS)
def test_attention_shapes_and_rows_sum_to_one(client, model_ids, infos, kind):
    mid = model_ids[kind]
    r = post(client, "/attention", model=mid, text=SENTENCE)
    assert r.status_code == 200, r.text
    body = r.json()
    info = infos[mid]
    assert body["model"] == mid and body["kind"] == kind and body["format"] == "json"
    assert body["heads"] == list(range(info["n_heads"])) and body["n_heads"] == info["n_heads"]
    assert set(body["attention"]) == set(SITES[kind])
    n_src = len(body["tokens"]["source"])
    n_tgt = len(body["tokens"]["target"]) if kind == "seq2seq" else n_src
    expect = {"encoder.self": (n_src, n_src), "decoder.self": (n_tgt, n_tgt)}
    expect["decoder.cross"] = (n_tgt, n_src)
    if kind == "decoder":
        expect["decoder.self"] = (n_src, n_src)
    for site, att in body["attention"].items():
        a = np.array(att, dtype=float)
        assert a.shape[1:] == (info["n_heads"], *expect[site])
        # each weight is rounded to 4 decimals: the sum drifts by up to Tk · 5e-5
        np.testing.assert_allclose(a.sum(-1), 1.0, atol=a.shape[-1] * 5e-5 + 1e-4)
        if site == "decoder.self":
            assert np.all(np.triu(a, k=1) == 0)  # causal


def test_seq2seq_default_target_is_the_greedy_output(client, model_ids, infos):
    mid = model_ids["seq2seq"]
    att = post(client, "/attention", model=mid, text=SENTENCE).json()
    gen = post(client, "/generate", model=mid, text=SENTENCE, max_new_tokens=128)
    if gen.status_code == 422:  # a server with a lower max_new_tokens: nothing to compare
        pytest.skip(gen.text)
    out = [t["id"] for t in gen.json()["output"]["tokens"]]
    if gen.json()["stop_reason"] == "eos":
        out = out[:-1]  # the target the decoder reads stops before </s>
    target = [t["id"] for t in att["tokens"]["target"]]
    assert att["tokens"]["target"][0]["special"]  # <s>
    assert target[1:] == out[: len(target) - 1]
    assert len(target) - 1 >= min(len(out), infos[mid]["max_len"] - 1)


def test_attention_subset_include_and_f16(client, model_ids, infos):
    mid = model_ids["seq2seq"]
    body = dict(model=mid, text=SENTENCE, target="le chat noir", layers=[0], heads=[1, 0])
    everything = ["scores", "masks", "qkv", "rope", "hidden"]
    j = post(client, "/attention", **body, include=everything).json()
    f = post(client, "/attention", **body, include=everything, format="f16").json()
    assert j["layers"] == [0] and j["heads"] == [1, 0]
    d_head = infos[mid]["d_head"]
    n_src, n_tgt = len(j["tokens"]["source"]), len(j["tokens"]["target"])
    assert [t["text"] for t in j["tokens"]["target"][1:]] and j["tokens"]["target"][0]["special"]
    assert np.array(j["attention"]["decoder.cross"]).shape == (1, 2, n_tgt, n_src)
    assert np.array(j["masks"]["decoder.self"]).shape == (n_tgt, n_tgt)
    assert np.array(j["qkv"]["decoder.cross"]["k"]).shape == (1, 2, n_src, d_head)
    assert np.array(j["hidden"]["encoder"]["resid_post"]).shape == (1, n_src)
    assert j["rope"] is None  # sinusoidal positions
    # masked cells of the scores are null, exactly where the mask is 0
    scores = np.array(j["scores"]["decoder.self"], dtype=float)
    mask = np.array(j["masks"]["decoder.self"])
    assert np.all(np.isnan(scores[..., mask == 0])) and not np.any(np.isnan(scores[..., mask == 1]))
    # f16 decodes to the JSON values within 1e-3 (relative for the unbounded tensors)
    for site, att in f["attention"].items():
        assert att["dtype"] == "float16"
        np.testing.assert_allclose(decode_f16(att), np.array(j["attention"][site]), atol=1e-3)
    np.testing.assert_allclose(
        decode_f16(f["scores"]["decoder.self"]), scores, rtol=1e-3, atol=1e-3, equal_nan=True
    )
    np.testing.assert_allclose(
        decode_f16(f["qkv"]["encoder.self"]["q"]),
        np.array(j["qkv"]["encoder.self"]["q"]),
        rtol=1e-3,
        atol=1e-3,
    )


def test_rope_include_on_a_rope_model(client, model_ids, infos):
    mid = model_ids["rope"]
    j = post(client, "/attention", model=mid, text=SENTENCE, include=["rope", "qkv"]).json()
    n = len(j["tokens"]["source"])
    d_head = infos[mid]["d_head"]
    angles = np.array(j["rope"]["angles"])
    assert angles.shape == (n, d_head // 2) and j["rope"]["d_head"] == d_head
    np.testing.assert_allclose(angles[1], angles[2] / 2, atol=1e-3)  # angle = position · θ
    assert {"q", "k", "v", "rot_q", "rot_k"} <= set(j["qkv"]["decoder.self"])


def test_gzip_for_large_bodies(client, model_ids):
    r = client.post(
        f"{API}/attention",
        json={"model": model_ids["encoder"], "text": SENTENCE, "include": ["qkv"]},
        headers={"Accept-Encoding": "gzip"},
    )
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < len(r.content)  # httpx decompressed it
    plain = client.post(
        f"{API}/attention",
        json={"model": model_ids["encoder"], "text": SENTENCE, "include": ["qkv"]},
        headers={"Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers and plain.content == r.content


def test_zstd_when_the_client_accepts_it_and_any_cached_encoding_serves_all(client, model_ids):
    """zstd (what browsers and httpx accept first) compresses ~3x faster than gzip; a result
    cached for one client's encoding still answers another client correctly."""
    body = {"model": model_ids["seq2seq"], "text": SENTENCE, "include": ["scores"]}
    z = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "zstd, gzip"})
    assert z.headers["content-encoding"] == "zstd"
    # this httpx may or may not decode zstd itself
    unzstd = z.content if z.content[:1] == b"{" else zstandard.decompress(z.content)
    g = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "gzip"})
    assert g.headers["content-encoding"] == "gzip"  # from the cached payload, via GZip
    raw = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "identity"})
    assert unzstd == g.content == raw.content
    assert int(z.headers["content-length"]) < len(raw.content) / 2
    # cached without zstd first: the hit gains a zstd copy for the next zstd client
    body["include"] = ["masks"]
    client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "identity"})
    z2 = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "zstd"})
    assert z2.headers["content-encoding"] == "zstd"


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_generate_contract(client, model_ids, infos, kind):
    mid = model_ids[kind]
    r = post(client, "/generate", model=mid, text="the cat", max_new_tokens=5, n_top=3)
    assert r.status_code == 200, r.text
    body = r.json()
    steps, prompt = body["steps"], body["prompt"]
    assert 1 <= len(steps) <= 5 and body["stop_reason"] in ("eos", "max_new_tokens", "max_len")
    assert [s["step"] for s in steps] == list(range(len(steps)))
    L = infos[mid]["n_decoder_layers"] or infos[mid]["n_layers"]
    H = infos[mid]["n_heads"]
    for s in steps:
        assert 0 < s["prob"] <= 1 and len(s["top"]) == 3
        assert s["top"][0]["prob"] >= s["top"][-1]["prob"]
        n_keys = (len(prompt) if kind == "decoder" else 1) + s["step"]
        assert np.array(s["attention"]["decoder.self"]).shape == (L, H, n_keys)
        if kind == "seq2seq":
            assert np.array(s["attention"]["decoder.cross"]).shape == (L, H, len(prompt))
    assert [t["id"] for t in body["output"]["tokens"]] == [s["token"]["id"] for s in steps]
    assert isinstance(body["output"]["text"], str)


def test_fill_mask_and_classify(client, model_ids, infos):
    enc = model_ids["encoder"]
    r = post(client, "/fill-mask", model=enc, text="the [MASK] ate the [MASK]", top_k=4)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["masks"]) == 2
    for m in body["masks"]:
        assert body["tokens"][m["index"]]["text"] == "[MASK]"
        probs = [p["prob"] for p in m["predictions"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    with_att = post(
        client, "/fill-mask", model=enc, text="the [MASK] ate", include_attention=True
    ).json()
    n = len(with_att["tokens"])
    assert np.array(with_att["attention"]["encoder.self"]).shape[2:] == (n, n)

    if "classifier" not in model_ids:
        pytest.skip("no encoder with a classification head")
    mid = model_ids["classifier"]
    c = post(client, "/classify", model=mid, text="the movie was not good").json()
    assert [x["label"] for x in c["labels"]] == infos[mid]["labels"]
    assert abs(sum(x["prob"] for x in c["labels"]) - 1) < 1e-4
    assert c["label"] == max(c["labels"], key=lambda x: x["prob"])["label"]
    heads = np.array(c["cls_attention"]["heads"])
    assert heads.shape == (infos[mid]["n_heads"], len(c["tokens"]))
    np.testing.assert_allclose(heads.sum(-1), 1, atol=heads.shape[-1] * 5e-5 + 1e-4)


def test_encoder_tasks_refuse_other_families(client, model_ids):
    r = post(client, "/fill-mask", model=model_ids["decoder"], text="the [MASK]")
    assert r.status_code == 422 and r.json()["error"]["field"] == "model"
    r = post(client, "/classify", model=model_ids["seq2seq"], text="hello")
    assert r.status_code == 422 and r.json()["error"]["field"] == "model"
    r = post(client, "/generate", model=model_ids["encoder"], text="hello")
    assert r.status_code == 422 and r.json()["error"]["field"] == "model"
    r = post(client, "/fill-mask", model=model_ids["encoder"], text="no mask here")
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"


@pytest.mark.parametrize("kind", KINDS)
def test_positions(client, model_ids, infos, kind):
    mid = model_ids[kind]
    info = infos[mid]
    r = client.get(f"{API}/models/{mid}/positions", params={"n": 16, "text": "the cat"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n"] == 16 and body["positional"] == info["positional"]
    if info["positional"] in ("sinusoidal", "learned"):
        table = np.array(body["table"])
        assert table.shape == (16, info["d_model"])
        if info["positional"] == "sinusoidal":
            np.testing.assert_allclose(table[0, 0::2], 0, atol=1e-4)  # sin(0)
            np.testing.assert_allclose(table[0, 1::2], 1, atol=1e-4)  # cos(0)
    if info["positional"] == "rope":
        assert np.array(body["rope"]["angles"]).shape == (16, info["d_head"] // 2)
    emb = body["embedding"]
    T = len(emb["tokens"])
    assert np.array(emb["sum"]).shape == (T, info["d_model"])
    if emb["position"] is not None:
        np.testing.assert_allclose(
            np.array(emb["token"]) + np.array(emb["position"]), np.array(emb["sum"]), atol=2e-4
        )
    for bad in (0, info["max_len"] + 1):
        r = client.get(f"{API}/models/{mid}/positions", params={"n": bad})
        assert r.status_code == 422 and r.json()["error"]["field"] == "n"


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for p in (
        "/api/v1/models",
        "/api/v1/models/{model_id}",
        "/api/v1/tokenize",
        "/api/v1/attention",
        "/api/v1/generate",
        "/api/v1/generate/stream",
        "/api/v1/fill-mask",
        "/api/v1/classify",
        "/api/v1/models/{model_id}/positions",
        "/api/v1/rope/relative",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert p in paths, p
    attention = spec["paths"]["/api/v1/attention"]["post"]
    assert attention["description"] and "422" in attention["responses"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "<script>" not in docs.text  # no inline script


def test_qkv_include_carries_the_heads_outputs_input_and_w_o_output(client, model_ids, infos):
    """The arithmetic view shows the server's tensors, not products it recomputes."""
    for kind in ("encoder", "seq2seq"):
        mid = model_ids[kind]
        j = post(client, "/attention", model=mid, text=SENTENCE, include=["qkv"]).json()
        d_model, n_heads = infos[mid]["d_model"], infos[mid]["n_heads"]
        for site, qkv in j["qkv"].items():
            a = np.array(j["attention"][site])  # (L, H, Tq, Tk)
            v, z = np.array(qkv["v"]), np.array(qkv["z"])
            L, _, Tq, _ = a.shape
            assert z.shape == (L, n_heads, Tq, infos[mid]["d_head"])
            np.testing.assert_allclose(z, a @ v, atol=2e-3)  # Z = A·V, per head
            assert np.array(qkv["x"]).shape == (L, Tq, d_model)
            assert np.array(qkv["out"]).shape == (L, Tq, d_model)


def test_the_schema_states_every_simple_bound_with_this_servers_limits(client, app):
    """What the server refuses on a field's own merits, the document says (issue 14's list:
    an empty text, n=0, ...); limits that are settings show this server's values."""
    spec = client.get("/openapi.json").json()
    schemas, settings = spec["components"]["schemas"], app.state.settings

    def text_schema(s):
        return next(b for b in s.get("anyOf", [s]) if b.get("type") == "string")

    for name in ("TokenizeRequest", "AttentionRequest", "GenerateRequest", "FillMaskRequest"):
        text = text_schema(schemas[name]["properties"]["text"])
        assert text["minLength"] == 1 and text["maxLength"] == settings.max_text_chars
        assert "pattern" in text  # not only whitespace, no NUL
    attention = schemas["AttentionRequest"]["properties"]
    ids = attention["token_ids"]["anyOf"][0]
    assert ids["minItems"] == 1 and ids["maxItems"] == settings.max_input_tokens
    assert ids["items"]["minimum"] == 0
    assert attention["layers"]["anyOf"][0]["items"]["minimum"] == 0
    generate = schemas["GenerateRequest"]["properties"]
    assert generate["max_new_tokens"]["maximum"] == settings.max_new_tokens
    assert generate["temperature"]["exclusiveMinimum"] == 0
    params = {
        p["name"]: p["schema"]
        for p in spec["paths"]["/api/v1/models/{model_id}/positions"]["get"]["parameters"]
    }
    assert params["n"]["anyOf"][0]["minimum"] == 1
    stream = {
        p["name"]: p["schema"]
        for p in spec["paths"]["/api/v1/generate/stream"]["get"]["parameters"]
    }
    assert stream["max_new_tokens"]["maximum"] == settings.max_new_tokens
    assert stream["top_p"]["maximum"] == 1 and stream["n_top"]["maximum"] == 20
    # the rules a schema cannot state are listed, by code, in the API description
    for code in ("out_of_range", "exclusive_fields", "no_mask", "unsupported_task"):
        assert f"`{code}`" in spec["info"]["description"]


def test_operators_get_head_an_icon_and_a_permissions_policy(client):
    for path in ("/healthz", "/readyz", "/"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b"", path
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    policy = client.get("/healthz").headers["permissions-policy"]
    assert "camera=()" in policy and "microphone=()" in policy
    assert 'rel="icon"' in client.get("/docs").text
