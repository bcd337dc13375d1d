"""Every endpoint answers what its OpenAPI document declares: for each request below (successes
and errors), the status is one the operation lists, and the JSON body validates against the
schema declared for that status (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

API = "/api/v1"


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def catalogue(ids: dict[str, str]) -> list[tuple[str, str, dict, int]]:
    """(method, path, request, expected status); request is json= or params=."""
    enc, dec, s2s = ids["encoder"], ids["decoder"], ids["seq2seq"]
    every = {"include": ["scores", "masks", "qkv", "rope", "hidden", "norms"]}
    cases = [
        ("GET", "/healthz", {}, 200),
        ("GET", "/readyz", {}, 200),
        ("GET", f"{API}/models", {}, 200),
        ("GET", f"{API}/models/{enc}", {}, 200),
        ("GET", f"{API}/models/nope", {}, 404),
        ("POST", f"{API}/tokenize", {"json": {"model": "nope", "text": "hi"}}, 404),
        ("POST", f"{API}/tokenize", {"json": {"model": enc, "text": " "}}, 422),
        ("POST", f"{API}/attention", {"json": {"model": "nope", "text": "hi"}}, 404),
        ("POST", f"{API}/attention", {"json": {"model": enc, "text": "hi", "heads": [99]}}, 422),
        ("POST", f"{API}/attention", {"json": {"model": enc, "text": "hi", "extra": 1}}, 422),
        ("POST", f"{API}/generate", {"json": {"model": s2s, "text": "the cat"}}, 200),
        ("POST", f"{API}/generate", {"json": {"model": enc, "text": "the cat"}}, 422),
        ("POST", f"{API}/generate", {"json": {"model": "nope", "text": "the cat"}}, 404),
        ("GET", f"{API}/generate/stream", {"params": {"model": dec, "text": " "}}, 422),
        ("GET", f"{API}/generate/stream", {"params": {"model": "nope", "text": "a"}}, 404),
        ("POST", f"{API}/fill-mask", {"json": {"model": enc, "text": "the [MASK] sat"}}, 200),
        ("POST", f"{API}/fill-mask", {"json": {"model": enc, "text": "no mask here"}}, 422),
        ("POST", f"{API}/fill-mask", {"json": {"model": dec, "text": "the [MASK]"}}, 422),
        ("POST", f"{API}/classify", {"json": {"model": dec, "text": "the cat"}}, 422),
        ("GET", f"{API}/models/{dec}/positions", {"params": {"n": 0}}, 422),
        ("GET", f"{API}/models/nope/positions", {}, 404),
        ("POST", f"{API}/rope/relative", {"json": {"model": dec, "text": "the cat sat"}}, 200),
        ("POST", f"{API}/rope/relative", {"json": {"model": enc, "text": "the cat sat"}}, 200),
        ("POST", f"{API}/rope/relative", {"json": {"model": dec, "text": "a", "key": 50}}, 422),
        ("POST", f"{API}/logit-lens", {"json": {"model": enc, "text": "the [MASK] sat"}}, 200),
        ("POST", f"{API}/logit-lens", {"json": {"model": enc, "text": "no mask"}}, 422),
        ("POST", f"{API}/rollout", {"json": {"model": "nope", "text": "a"}}, 404),
        ("POST", f"{API}/attribution", {"json": {"model": dec, "text": "a", "token": -1}}, 422),
        ("POST", f"{API}/heads/scores", {"json": {"model": dec, "run_length": 4}}, 200),
        ("POST", f"{API}/heads/scores", {"json": {"model": s2s, "text": "the cat"}}, 200),
        ("POST", f"{API}/heads/scores", {"json": {"model": enc, "run_length": 999}}, 422),
        ("GET", f"{API}/models/{enc}/snapshots", {}, 404),
        (
            "GET",
            f"{API}/models/nope/snapshots/0/attention",
            {"params": {"layer": 0, "head": 0}},
            404,
        ),
        ("POST", f"{API}/block", {"json": {"model": dec, "text": "a", "layer": 99}}, 422),
        ("POST", f"{API}/block", {"json": {"model": "nope", "text": "a"}}, 404),
        (
            "POST",
            f"{API}/block",
            {"json": {"model": s2s, "text": "the cat", "stack": "decoder"}},
            200,
        ),
    ]
    for mid in (enc, dec, s2s):
        cases += [
            ("POST", f"{API}/tokenize", {"json": {"model": mid, "text": "the cat sat"}}, 200),
            ("POST", f"{API}/attention", {"json": {"model": mid, "text": "the cat", **every}}, 200),
            (
                "POST",
                f"{API}/attention",
                {"json": {"model": mid, "text": "the cat", "format": "f16", **every}},
                200,
            ),
            ("GET", f"{API}/models/{mid}/positions", {"params": {"n": 8, "text": "the cat"}}, 200),
            ("POST", f"{API}/rollout", {"json": {"model": mid, "text": "the cat"}}, 200),
            ("POST", f"{API}/rollout", {"json": {"model": mid, "text": "a", "format": "f16"}}, 200),
            ("POST", f"{API}/logit-lens", {"json": {"model": mid, "text": "the [MASK]"}}, 200),
            ("POST", f"{API}/attribution", {"json": {"model": mid, "text": "the [MASK]"}}, 200),
            ("POST", f"{API}/block", {"json": {"model": mid, "text": "a", "batch": ["b c"]}}, 200),
            ("POST", f"{API}/block", {"json": {"model": mid, "text": "a", "format": "f16"}}, 200),
        ]
    cases.append(("POST", f"{API}/generate", {"json": {"model": dec, "text": "the cat"}}, 200))
    logprob = {"kind": "logprob", "answer": 5}
    for mid, end in ((dec, 7), (s2s, 7), (enc, 7)):
        pair = {"clean": {"token_ids": [5, 6, end]}, "corrupted": {"token_ids": [5, 8, end]}}
        metric = logprob if mid == s2s else {**logprob, "position": 1}  # s2s: its last target
        cases.append(
            ("POST", f"{API}/patch", {"json": {"model": mid, **pair, "metric": metric}}, 200)
        )
    short = {"clean": {"token_ids": [5, 6]}, "corrupted": {"token_ids": [5]}, "metric": logprob}
    cases.append(("POST", f"{API}/patch", {"json": {"model": dec, **short}}, 422))
    cases += [
        ("POST", f"{API}/rnn/unroll", {"json": {"model": s2s, "text": "the cat"}}, 422),
        ("POST", f"{API}/rnn/unroll", {"json": {"model": "nope", "text": "the cat"}}, 404),
    ]
    if "rnn" in ids:
        rnn = {"model": ids["rnn"], "text": "the cat"}
        cases += [
            ("POST", f"{API}/rnn/unroll", {"json": rnn}, 200),
            (
                "POST",
                f"{API}/rnn/unroll",
                {"json": {**rnn, "format": "f16", "compare": ids["rnn"]}},
                200,
            ),
        ]
    if "classifier" in ids:
        body = {"model": ids["classifier"], "text": "the movie was good"}
        cases.append(("POST", f"{API}/classify", {"json": body}, 200))
    return cases


def schema_for(spec: dict, path: str, method: str, status: int, media: str) -> dict:
    op = spec["paths"][path][method.lower()]
    assert str(status) in op["responses"], f"{method} {path} does not document {status}"
    content = op["responses"][str(status)].get("content", {})
    assert media in content, f"{method} {path} {status} does not document {media}"
    # the document's components travel with the schema so that its $refs resolve
    return {**content[media]["schema"], "components": spec["components"]}


def template_of(spec: dict, url: str) -> str:
    """/api/v1/models/x/positions -> /api/v1/models/{model_id}/positions"""
    parts = url.split("/")
    for template in spec["paths"]:
        t = template.split("/")
        if len(t) == len(parts) and all(
            a == b or a.startswith("{") for a, b in zip(t, parts, strict=True)
        ):
            return template
    raise AssertionError(f"{url} is not in the OpenAPI document")


def test_every_answer_matches_the_schema_its_operation_declares(client, spec, model_ids):
    seen = set()
    for method, url, request, status in catalogue(model_ids):
        r = client.request(method, url, **request)
        assert r.status_code == status, f"{method} {url} {request}: {r.status_code} {r.text}"
        template = template_of(spec, url)
        seen.add((method, template))
        schema = schema_for(spec, template, method, status, "application/json")
        errors = sorted(Draft202012Validator(schema).iter_errors(r.json()), key=str)
        assert not errors, f"{method} {url} {status}: {errors[0].message} at {errors[0].path}"
    documented = {
        (m.upper(), p)
        for p, ops in spec["paths"].items()
        for m in ops
        # not JSON: checked below, in test_patch_api and in test_head_scores_stream (each
        # stream's result is its JSON twin's answer, byte for byte)
        if p
        not in (
            "/metrics",
            f"{API}/generate/stream",
            f"{API}/patch/stream",
            f"{API}/heads/scores/stream",
        )
    }
    assert documented <= seen, f"operations without a checked answer: {documented - seen}"


def test_the_stream_sends_what_its_json_twin_declares(client, spec, model_ids):
    """Each `step` event is a StepInfo of POST /generate; `done` carries its output."""
    assert (
        "text/event-stream"
        in spec["paths"][f"{API}/generate/stream"]["get"]["responses"]["200"]["content"]
    )
    generate = schema_for(spec, f"{API}/generate", "POST", 200, "application/json")
    response = generate["components"]["schemas"][generate["$ref"].rsplit("/", 1)[1]]
    steps = response["properties"]["steps"]
    step_schema = {**steps["items"], "components": spec["components"]}
    output_schema = {**response["properties"]["output"], "components": spec["components"]}
    r = client.get(f"{API}/generate/stream", params={"model": model_ids["decoder"], "text": "hi"})
    assert r.status_code == 200
    events = [block.split("\n", 1) for block in r.text.strip().split("\n\n")]
    assert events[0][0] == "event: prompt" and events[-1][0] == "event: done"
    for head, data in events[1:-1]:
        assert head == "event: step"
        Draft202012Validator(step_schema).validate(json.loads(data.removeprefix("data: ")))
    done = json.loads(events[-1][1].removeprefix("data: "))
    Draft202012Validator(output_schema).validate(done["output"])
