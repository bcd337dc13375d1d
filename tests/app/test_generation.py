"""Generation end to end: SSE streaming, seeds, and the KV cache checked against
teacher-forced /attention; the decoder's causal prefix invariance through the API."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

API = "/api/v1"


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], orjson.loads(fields["data"])))
    return events


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_stream_sends_prompt_steps_then_done_and_matches_post(client, model_ids, kind):
    params = {"model": model_ids[kind], "text": "the black cat", "max_new_tokens": 6}
    with client.stream("GET", f"{API}/generate/stream", params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in r.headers  # never buffered by gzip
        text = "".join(r.iter_text())
    events = parse_sse(text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "prompt" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"step"} and len(kinds) - 2 >= 1
    post = client.post(f"{API}/generate", json=params).json()
    steps = [d for e, d in events if e == "step"]
    assert steps == post["steps"]
    done = events[-1][1]
    assert done["output"] == post["output"] and done["stop_reason"] == post["stop_reason"]
    assert events[0][1]["prompt"] == post["prompt"]


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_same_seed_same_output(client, model_ids, kind):
    body = {
        "model": model_ids[kind],
        "text": "the cat",
        "max_new_tokens": 20,
        "strategy": "sample",
        "temperature": 5.0,
    }
    a = client.post(f"{API}/generate", json={**body, "seed": 11}).json()
    # the stream bypasses the result cache: a real second run with the same seed
    with client.stream("GET", f"{API}/generate/stream", params={**body, "seed": 11}) as r:
        b = [d for e, d in parse_sse("".join(r.iter_text())) if e == "step"]
    assert [s["token"]["id"] for s in a["steps"]] == [s["token"]["id"] for s in b]
    c = client.post(f"{API}/generate", json={**body, "seed": 12}).json()
    assert [s["token"]["id"] for s in a["steps"]] != [s["token"]["id"] for s in c["steps"]]


def _rows_equal(step_rows, forced_rows, atol=2e-4):
    np.testing.assert_allclose(np.array(step_rows), np.array(forced_rows), atol=atol)


def test_decoder_step_attention_equals_teacher_forced_attention(client, model_ids):
    """Each step's rows come from the KV cache; /attention recomputes the whole sequence."""
    mid = model_ids["decoder"]
    gen = client.post(
        f"{API}/generate",
        json={"model": mid, "text": "the black cat", "strategy": "sample", "seed": 3,
              "temperature": 1.5, "max_new_tokens": 12},
    ).json()  # fmt: skip
    prompt = [t["id"] for t in gen["prompt"]]
    out = [s["token"]["id"] for s in gen["steps"]]
    seq = prompt + out[:-1]  # what the decoder read, step by step
    att = client.post(f"{API}/attention", json={"model": mid, "token_ids": seq}).json()
    forced = np.array(att["attention"]["decoder.self"])  # (L, H, T, T)
    for s in gen["steps"]:
        q = len(prompt) - 1 + s["step"]
        _rows_equal(s["attention"]["decoder.self"], forced[:, :, q, : q + 1])


def test_seq2seq_step_attention_equals_teacher_forced_attention(client, model_ids):
    mid = model_ids["seq2seq"]
    gen = client.post(
        f"{API}/generate",
        json={"model": mid, "text": "the dog bites the man", "max_new_tokens": 10},
    ).json()
    out = [s["token"]["id"] for s in gen["steps"]]
    bos = client.post(f"{API}/attention", json={"model": mid, "text": "x", "target": "y"}).json()[
        "tokens"
    ]["target"][0]["id"]
    att = client.post(
        f"{API}/attention",
        json={"model": mid, "text": "the dog bites the man", "target_ids": [bos] + out[:-1]},
    ).json()
    assert [t["id"] for t in att["tokens"]["source"]] == [t["id"] for t in gen["prompt"]]
    self_att = np.array(att["attention"]["decoder.self"])
    cross = np.array(att["attention"]["decoder.cross"])
    for s in gen["steps"]:
        t = s["step"]
        _rows_equal(s["attention"]["decoder.self"], self_att[:, :, t, : t + 1])
        _rows_equal(s["attention"]["decoder.cross"], cross[:, :, t, :])


def test_decoder_causal_prefix_invariance(client, model_ids):
    """Appending tokens never changes the attention of the tokens before them."""
    mid = model_ids["decoder"]
    long = client.post(
        f"{API}/tokenize", json={"model": mid, "text": "the black cat ate the mouse and the honey"}
    ).json()["tokens"]
    ids = [t["id"] for t in long]
    full = np.array(
        client.post(f"{API}/attention", json={"model": mid, "token_ids": ids}).json()["attention"][
            "decoder.self"
        ]
    )
    for cut in (2, len(ids) // 2, len(ids) - 1):
        part = client.post(
            f"{API}/attention",
            json={"model": mid, "token_ids": ids[:cut], "include": ["hidden"]},
        ).json()
        np.testing.assert_allclose(
            np.array(part["attention"]["decoder.self"]), full[:, :, :cut, :cut], atol=2e-4
        )


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_steps_carry_only_the_rows_asked_for(client, model_ids, kind):
    base = {"model": model_ids[kind], "text": "the black cat", "max_new_tokens": 6}
    full = client.post(f"{API}/generate", json=base).json()
    assert "rows" not in full  # every layer and head, in full
    picked = client.post(f"{API}/generate", json={**base, "layers": [1], "heads": [2, 0]}).json()
    assert picked["rows"] == {"layers": [1], "heads": [2, 0], "pool": None}
    for a, b in zip(full["steps"], picked["steps"], strict=True):
        for site, rows in b["attention"].items():
            assert rows == [[a["attention"][site][1][2], a["attention"][site][1][0]]]
    pooled = client.post(f"{API}/generate", json={**base, "pool": 2}).json()
    for a, b in zip(full["steps"], pooled["steps"], strict=True):
        for site, rows in b["attention"].items():
            edges = b["attention_edges"][site]
            full_rows = np.array(a["attention"][site])
            expected = np.stack(
                [full_rows[..., s:e].sum(-1) for s, e in zip(edges, edges[1:], strict=False)], -1
            )
            np.testing.assert_allclose(rows, expected, atol=3e-4)


def test_long_decodings_pool_their_rows_by_default(checkpoint_dir, model_ids):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.helpers import make_settings

    app = create_app(make_settings(checkpoint_dir, stream_full_rows_tokens=8))
    params = {"model": model_ids["decoder"], "text": "the black cat sat", "max_new_tokens": 6}
    with TestClient(app) as c:
        r = c.get(f"{API}/generate/stream", params=params)
        events = [b.split("\n", 1) for b in r.text.strip().split("\n\n")]
        prompt = orjson.loads(events[0][1].removeprefix("data: "))
        assert prompt["rows"]["pool"] == 64
        step = orjson.loads(events[1][1].removeprefix("data: "))
        assert step["attention_edges"]["decoder.self"][-1] == len(prompt["prompt"])
        picked = c.get(f"{API}/generate/stream", params={**params, "layers": 0, "heads": 1})
        first = orjson.loads(picked.text.split("\n\n")[0].split("\n", 1)[1].removeprefix("data: "))
        assert first["rows"] == {"layers": [0], "heads": [1], "pool": None}


# ---------------------------------------------------------------------------- token ids
def _ids(tokens: list[dict]) -> list[int]:
    return [t["id"] for t in tokens]


@pytest.mark.parametrize("kind", ["decoder", "seq2seq", "rnn"])
def test_token_ids_replay_a_generation_token_for_token(client, model_ids, kind):
    """The prompt ids an answer reports reproduce it exactly (a sampled one too, same seed), and
    its prompt + first k tokens (decoder) or `<s>` + first k tokens as `target_ids` (seq2seq)
    continue with exactly its remaining tokens, in the POST and in the stream."""
    model = model_ids[kind]
    text = "the black cat" if kind == "decoder" else "the black cat ate the mouse"
    body = {"model": model, "text": text, "max_new_tokens": 8}
    sample = {"strategy": "sample", "temperature": 3.0, "seed": 5}
    for extra in ({}, sample):
        first = client.post(f"{API}/generate", json={**body, **extra}).json()
        prompt = _ids(first["prompt"])
        by_ids = {"model": model, "token_ids": prompt, "max_new_tokens": 8, **extra}
        again = client.post(f"{API}/generate", json=by_ids).json()
        assert _ids(again.pop("prompt")) == _ids(first.pop("prompt"))  # ids have no offsets
        assert again == first
    first = client.post(f"{API}/generate", json=body).json()

    out = _ids(first["output"]["tokens"])
    assert len(out) >= 4, first["output"]
    k = 2
    if kind == "decoder":
        resume = {"model": model, "token_ids": prompt + out[:k]}
    else:
        bos = client.app.state.registry.get(model).config.bos_id
        resume = {"model": model, "token_ids": prompt, "target_ids": [bos, *out[:k]]}
    resume["max_new_tokens"] = len(out) - k
    rest = client.post(f"{API}/generate", json=resume).json()
    assert _ids(rest["output"]["tokens"]) == out[k:]
    for a, b in zip(rest["steps"], first["steps"][k:], strict=True):
        assert a["token"] == b["token"] and a["prob"] == pytest.approx(b["prob"], abs=2e-4)
        for site, rows in a["attention"].items():
            _rows_equal(rows, b["attention"][site])
    if kind != "decoder":
        assert _ids(rest["target"]) == resume["target_ids"]

    with client.stream("GET", f"{API}/generate/stream", params=resume) as r:
        assert r.status_code == 200
        events = parse_sse("".join(r.iter_text()))
    assert events[0][1]["prompt"] == rest["prompt"]
    assert [d for e, d in events if e == "step"] == rest["steps"]


@pytest.mark.parametrize(
    "extra, field, code",
    [
        ({"text": "the cat", "token_ids": [1, 2]}, "text", "exclusive_fields"),
        ({}, "text", "exclusive_fields"),
        ({"token_ids": [10**6]}, "token_ids.0", "out_of_range"),
        ({"token_ids": [1, 2], "target_ids": [1]}, "target_ids", "unsupported_field"),
    ],
)
def test_generation_ids_are_checked(client, model_ids, extra, field, code):
    r = client.post(f"{API}/generate", json={"model": model_ids["decoder"], **extra})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field and r.json()["error"]["code"] == code
    params = {"model": model_ids["decoder"], **extra}
    r = client.get(f"{API}/generate/stream", params=params)
    assert r.status_code == 422 and r.json()["error"]["field"] == field


def test_a_seq2seq_target_must_leave_room(client, model_ids, infos):
    model = model_ids["seq2seq"]
    full = [1] * infos[model]["max_len"]
    body = {"model": model, "text": "the cat", "target_ids": full}
    r = client.post(f"{API}/generate", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "target_ids"
