"""/generate with ``chat``: the text goes through the model's chat template as a question,
rendered as transformers' apply_chat_template renders it, on a tiny GGUF-imported model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from models.convert import import_checkpoint
from tests.helpers import make_settings
from tests.models.convert.tiny_gguf import write_llama

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")

API = "/api/v1"
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}.{% endfor %}"
    "{% if add_generation_prompt %} the{% endif %}"
)


@pytest.fixture(scope="module")
def chat_app(tmp_path_factory):
    source = tmp_path_factory.mktemp("gguf")
    write_llama(source / "tiny.gguf", chat_template=TEMPLATE)
    out = tmp_path_factory.mktemp("imported")
    import_checkpoint(str(source / "tiny.gguf"), "tiny-chat", out)
    with TestClient(create_app(make_settings(out))) as c:
        yield c, source


def test_a_question_goes_through_the_chat_template(chat_app):
    client, source = chat_app
    info = client.get(f"{API}/models/tiny-chat").json()
    assert "chat" in info["tasks"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), gguf_file="tiny.gguf")
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": "the cat"}],
        chat_template=TEMPLATE,
        add_generation_prompt=True,
        tokenize=False,
    )
    body = {"model": "tiny-chat", "text": "the cat", "max_new_tokens": 2, "chat": True}
    r = client.post(f"{API}/generate", json=body)
    assert r.status_code == 200, r.text
    prompt = [t["id"] for t in r.json()["prompt"]]
    assert prompt == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert prompt[0] == 1  # the template's {{ bos_token }}: <s>
    plain = client.post(f"{API}/generate", json={**body, "chat": False}).json()
    assert [t["id"] for t in plain["prompt"]] != prompt
    stream = client.get(
        f"{API}/generate/stream",
        params={"model": "tiny-chat", "text": "the cat", "max_new_tokens": 2, "chat": "true"},
    )
    assert stream.status_code == 200 and "event: done" in stream.text


def test_chat_on_a_model_without_a_template_names_the_field(client, model_ids):
    body = {"model": model_ids["decoder"], "text": "the cat", "chat": True}
    r = client.post(f"{API}/generate", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "chat"
