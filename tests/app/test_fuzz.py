"""Property-based fuzzing of the live OpenAPI document (schemathesis + hypothesis).

For every operation, requests are generated from the document the server publishes
(``/openapi.json``, with this server's limits filled in) and sent to the app:

* **positive** (valid against the schema): the answer is a 2xx, or a 4xx whose ``code`` is
  one of the documented rules a schema cannot state (``app.inputs.RULES``: they depend on
  the model or relate two fields). Anything else means the contract allows what the server
  refuses;
* **negative** (schema-invalid): the answer is a 4xx;
* always: no 5xx, the status is one the operation documents, and a JSON body validates
  against the schema documented for that status.

Two sources of requests: schemathesis's coverage cases (each schema's boundaries, e.g. the
smallest float above an exclusive minimum, the longest string allowed; deterministic), then
hypothesis with a fixed budget and seed (``derandomize``). The same requests every run,
about a minute in all on two cores. The models are small random ones built here: the contract does not depend on
the weights, and they keep each request cheap. The ``model`` fields are narrowed to the loaded
ids (otherwise nearly every request is a 404 for a random id and nothing deeper is reached).
"""

from __future__ import annotations

import copy
from pathlib import Path

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from jsonschema import Draft202012Validator

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.specs.openapi.checks import negative_data_rejection  # noqa: E402

from app.inputs import RULES  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.helpers import build_fixture_checkpoints, make_settings  # noqa: E402

POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE
#: Examples per operation and mode; the model-running ones cost the most.
BUDGET = {POSITIVE: 70, NEGATIVE: 40}
# /patch/stream and /heads/scores/stream take /patch's and /heads/scores' bodies (fuzzed in
# full there): a few examples check their framing
CHEAP = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/models",
    "/api/v1/patch/stream",
    "/api/v1/heads/scores/stream",
}


def operations() -> list[tuple[str, str]]:
    spec = create_app(make_settings(Path("unused"))).openapi()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    root = build_fixture_checkpoints(tmp_path_factory.mktemp("fuzz-checkpoints"))
    # boundary cases include a text of max_text_chars matching the text pattern: cheap to
    # make at 200 characters, minutes at the default 8192
    settings = make_settings(root, max_text_chars=200)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def document(fuzz_client) -> dict:
    return fuzz_client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def schema(fuzz_client, document):
    """The live document, its model fields narrowed to the loaded ids."""
    ids = [m["id"] for m in fuzz_client.get("/api/v1/models").json()["models"]]
    narrowed = copy.deepcopy(document)
    for name, component in narrowed["components"]["schemas"].items():
        if name.endswith("Request") and "model" in component.get("properties", {}):
            component["properties"]["model"]["enum"] = ids
    for ops in narrowed["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["name"] in ("model", "model_id"):
                    param["schema"]["enum"] = ids
    return schemathesis.openapi.from_dict(narrowed)


def with_a_mask(case):
    """fill-mask: put a [MASK] in the text, or every request stops at the no_mask rule."""
    if isinstance(case.body, dict) and isinstance(case.body.get("text"), str):
        k = len(case.body["text"]) // 2
        case.body["text"] = case.body["text"][:k] + " [MASK] " + case.body["text"][k:]
    return case


def check(document: dict, method: str, path: str, case, mode, response) -> None:
    status = response.status_code
    shown = f"{method} {response.request.url} -> {status}: {response.text[:300]}"
    assert status < 500, shown
    op = document["paths"][path][method.lower()]
    assert str(status) in op["responses"], f"undocumented status: {shown}"
    media = response.headers.get("content-type", "").split(";")[0]
    content = op["responses"][str(status)].get("content", {})
    assert media in content, f"undocumented content type {media!r}: {shown}"
    if media == "application/json":
        body_schema = {**content[media]["schema"], "components": document["components"]}
        errors = list(Draft202012Validator(body_schema).iter_errors(response.json()))
        assert not errors, f"{errors[0].message} at {list(errors[0].path)}: {shown}"
    if mode == POSITIVE and status >= 400:
        code = response.json()["error"]["code"]
        assert code in RULES, f"a schema-valid request refused by an undocumented rule: {shown}"
    if mode == NEGATIVE:
        # schemathesis's own check knows which invalid values stay invalid once written into
        # a URL (a boolean in a query string is the valid string "false")
        case.validate_response(response, checks=[negative_data_rejection])


def expectation(case, op):
    """The mode a case's answer is checked against; None where the API's documented leniency
    makes any answer but a 5xx right: unknown query parameters are ignored (the API
    description says so), and so is a Content-Type on a request without a body."""
    mode = case.meta.generation.mode
    declared = {p.name for p in op.query}
    if set(case.query or {}) - declared:
        return None
    scenario = getattr(case.meta.phase.data, "scenario", None)
    if scenario == "malformed_content_type" and not op.body:
        return None
    return mode


def send(client, case):
    """The case's request, through the test client; None when the client itself cannot send
    it (e.g. a URL too long): that is no statement about the server."""
    sent = case.as_transport_kwargs()
    request = {k: sent[k] for k in ("method", "url", "headers", "params", "json") if k in sent}
    if "data" in sent:  # a negative body that is not JSON
        request["content"] = sent["data"]
    try:
        return client.request(**request)
    except ValueError:
        return None


@pytest.mark.parametrize("method,path", operations())
def test_the_boundaries_keep_the_contract(fuzz_client, document, schema, method, path):
    op = schema[path][method]
    cases = schema.iter_coverage_cases(
        op,
        generation_modes=[POSITIVE, NEGATIVE],
        generation_config=schema.config.generation_for(operation=op),
    )
    n = 0
    for case in cases:
        if case.method.upper() != method:  # an unexpected method: 405, not in any document
            response = send(fuzz_client, case)
            assert response is None or response.status_code == 405, response.text
            continue
        response = send(fuzz_client, case)
        if response is not None:
            check(document, method, path, case, expectation(case, op), response)
            n += 1
    assert n > 0


@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE], ids=str)
@pytest.mark.parametrize("method,path", operations())
def test_the_server_keeps_its_contract(fuzz_client, document, schema, method, path, mode):
    op = schema[path][method]
    if mode == NEGATIVE and not (op.body or op.path_parameters or op.query):
        pytest.skip("nothing to make invalid")
    strategy = op.as_strategy(generation_mode=mode)
    if path.endswith("/fill-mask") and mode == POSITIVE:
        strategy = strategy.map(with_a_mask)

    @hypothesis.settings(
        max_examples=5 if path in CHEAP else BUDGET[mode],
        derandomize=True,  # a fixed seed: the same requests every run
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def fuzz(case) -> None:
        response = send(fuzz_client, case)
        if response is None:
            hypothesis.reject()
        check(document, method, path, case, expectation(case, op), response)

    fuzz()


def test_the_document_uses_json_schema_keywords_only(document):
    """pydantic writes a constraint it could not translate under its own name ("ge"): JSON
    Schema ignores it, so the document would allow what the server refuses."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") in ("integer", "number", "string", "array"):
                found.extend(f"{where}.{k}" for k in ("ge", "gt", "le", "lt") if k in node)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}.{i}")

    walk(document, "")
    assert not found
    assert "x-server-limit" not in str(document)  # every server limit was filled in
