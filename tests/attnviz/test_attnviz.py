"""attnviz.show / export_html / `attnviz export`: the payload is the API's answer, attention
given elsewhere keeps its values, the page inlines static/js's own modules, bad input is a
ValueError naming the argument. (Drawn in a browser: tests/e2e/test_notebook.py.)"""

from __future__ import annotations

import base64
import gzip
import re

import numpy as np
import orjson
import pytest
import torch
from fastapi.testclient import TestClient

import attnviz
from app.main import create_app
from app.serialize import decode_f16
from attnviz import page
from tests.helpers import checkpoints_under_test, make_settings
from training.cli import main as cli

TEXT = "the cat sat on the mat"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return checkpoints_under_test(lambda: tmp_path_factory.mktemp("checkpoints"))[0]


@pytest.fixture(scope="module")
def client(checkpoints):
    with TestClient(create_app(make_settings(checkpoints))) as c:
        yield c


def softmaxed(shape, seed=0, causal=False):
    x = np.random.default_rng(seed).normal(size=shape) * 2
    if causal:
        x = np.where(np.tril(np.ones(shape[-2:], bool)), x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def unpack(html: str, name: str) -> dict:
    packed = re.search(rf"<script[^>]*data-attnviz-{name}>([^<]*)</script>", html)[1]
    return orjson.loads(gzip.decompress(base64.b64decode(packed)))


@pytest.mark.parametrize(("model", "extra"), [("decoder-mini", {}), ("seq2seq-en-fr", {})])
def test_the_payload_is_the_api_answer_byte_for_byte(checkpoints, client, model, extra):
    out = attnviz.show(model=str(checkpoints / model), text=TEXT, view="heads")
    body = {"model": model, "text": TEXT, "format": "f16", **extra}
    r = client.post("/api/v1/attention", json=body)
    assert r.status_code == 200
    assert out.payload.answer == r.content
    # and the page carries exactly that answer
    assert unpack(out._repr_html_(), "page")["answer"] == orjson.loads(r.content)


def test_heatmap_and_grid_carry_what_they_draw(checkpoints, client):
    path = str(checkpoints / "decoder-mini")
    heat = orjson.loads(
        attnviz.show(model=path, text=TEXT, view="heatmap", layer=1, head=2).payload.answer
    )
    assert (heat["layers"], heat["heads"]) == ([1], [2])
    r = client.post(
        "/api/v1/attention",
        json={
            "model": "decoder-mini",
            "text": TEXT,
            "format": "f16",
            "layers": [1],
            "heads": [2],
            "include": ["masks"],
        },
    )
    assert heat == r.json()
    grid = orjson.loads(attnviz.show(model=path, text=TEXT, view="grid").payload.answer)
    assert "masks" in grid and len(grid["layers"]) == grid["n_layers"]


def test_hugging_face_attentions_keep_their_values():
    layers = tuple(torch.from_numpy(softmaxed((1, 4, 5, 5), seed=i, causal=True)) for i in range(3))
    tokens = ["<|endoftext|>", "The", "Ġcat", "Ġsat", "."]
    out = attnviz.show(attention=layers, tokens=tokens, view="heatmap", layer=2, head=3)
    answer = orjson.loads(out.payload.answer)
    assert answer["kind"] == "decoder" and list(answer["attention"]) == ["decoder.self"]  # causal
    got = decode_f16(answer["attention"]["decoder.self"])
    assert got.shape == (3, 4, 5, 5)
    want = torch.stack([a[0] for a in layers]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)  # f16 on the 1e-3 grid (app/serialize.py)
    assert [t["special"] for t in answer["tokens"]["source"]] == [True, False, False, False, False]
    # one [layers, heads, q, k] numpy array is the same thing; not causal: an encoder's
    enc = orjson.loads(
        attnviz.show(attention=softmaxed((2, 2, 4, 4)), tokens=list("abcd")).payload.answer
    )
    assert list(enc["attention"]) == ["encoder.self"]


def test_encoder_decoder_attention_given():
    src, tgt = ["the", "cat", "</s>"], ["<s>", "le", "chat", "</s>"]
    out = attnviz.show(
        encoder_attention=softmaxed((2, 2, 3, 3)),
        decoder_attention=softmaxed((2, 2, 4, 4), causal=True),
        cross_attention=softmaxed((2, 2, 4, 3), seed=5),
        encoder_tokens=src,
        decoder_tokens=tgt,
        view="heads",
        site="decoder.cross",
    )
    answer = orjson.loads(out.payload.answer)
    assert answer["kind"] == "seq2seq"
    np.testing.assert_allclose(
        decode_f16(answer["attention"]["decoder.cross"]), softmaxed((2, 2, 4, 3), seed=5), atol=1e-3
    )
    assert [t["text"] for t in answer["tokens"]["target"]] == tgt


class FakeCache:
    """What attnviz reads of a TransformerLens ActivationCache: keys() and [name]."""

    def __init__(self, tensors):
        self.tensors = tensors

    def keys(self):
        return self.tensors.keys()

    def __getitem__(self, name):
        return self.tensors[name]


def test_an_activation_cache_is_read_by_its_hook_names():
    patterns = [torch.from_numpy(softmaxed((1, 2, 4, 4), seed=i, causal=True)) for i in range(2)]
    cache = FakeCache(
        {
            **{f"blocks.{i}.attn.hook_pattern": p for i, p in enumerate(patterns)},
            "blocks.0.attn.hook_scores": torch.zeros(1, 2, 4, 4),  # not read
        }
    )
    answer = orjson.loads(attnviz.show(cache=cache, tokens=list("abcd")).payload.answer)
    np.testing.assert_allclose(
        decode_f16(answer["attention"]["decoder.self"]), torch.cat(patterns).numpy(), atol=1e-3
    )


def test_the_page_inlines_static_js_modules_unchanged_but_for_their_imports():
    b = page.bundle()
    entry = b["modules"][b["entry"]]
    assert "export async function mount" in entry
    sources = "\n".join(b["modules"])
    assert not re.search(r"""from\s*["']\.""", sources)  # every relative import rewritten
    assert "import.meta.url" not in sources  # the worker's URL too
    # each module is static/js's file with only its specifiers replaced
    heat = (page.JS / "lib" / "heatcanvas.js").read_text()
    unplaced = [re.sub(r"__attnviz_module_\d+__", "X", m) for m in b["modules"]]
    assert (
        re.sub(r'"\.{1,2}/[^"]+"', '"X"', heat).replace(
            'new URL("X", import.meta.url)', 'new URL("X")'
        )
        in unplaced
    )
    # dependencies come before the modules that import them
    for i, m in enumerate(b["modules"]):
        assert all(int(n) < i for n in re.findall(r"__attnviz_module_(\d+)__", m))


def test_outputs_are_self_contained_and_unique(checkpoints):
    path = str(checkpoints / "decoder-mini")
    a, b = (attnviz.show(model=path, text=TEXT, view="grid")._repr_html_() for _ in range(2))
    ids = [re.search(r'id="(attnviz-[0-9a-f]+)"', h)[1] for h in (a, b)]
    assert ids[0] != ids[1]
    for h in (a, b):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", h)
        assert "http://" not in h.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in h
        # every style rule is scoped to attnviz outputs
        css = re.sub(r"/\*.*?\*/", "", re.search(r"<style>(.*?)</style>", h, re.S)[1], flags=re.S)
        selectors = [
            s.strip() for group in re.findall(r"([^{}]+)\{", css) for s in group.split(",")
        ]
        assert len(selectors) > 20
        assert all(s.startswith(".attnviz-standalone") for s in selectors), selectors


def test_export_writes_one_page_that_names_model_input_and_version(checkpoints, tmp_path, capsys):
    out = tmp_path / "page.html"
    rc = cli(["export", "--model", str(checkpoints / "decoder-mini"), "--text", TEXT,
              "--view", "heatmap", "--layer", "1", "--head", "1", "--out", str(out)])  # fmt: skip
    assert rc == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    data = unpack(html, "page")
    assert (data["model"], data["input"], data["version"]) == (
        "decoder-mini",
        TEXT,
        attnviz.__version__,
    )
    assert (data["view"], data["layer"], data["head"]) == ("heatmap", 1, 1)
    assert f"decoder-mini · {TEXT}" in html  # the title says it without JavaScript
    assert cli(["export", "--model", "no-such-model", "--text", "x", "--out", str(out)]) == 2
    assert "model: unknown model 'no-such-model'" in capsys.readouterr().err


BAD = [
    # (arguments, the argument the message must name)
    (dict(attention=softmaxed((2, 2, 4, 4)), tokens=list("abc")), "attention"),  # tokens short
    (dict(attention=softmaxed((2, 4, 4)), tokens=list("abcd")), "attention"),  # 3-D
    (dict(attention=(torch.ones(2, 4, 4) / 4,), tokens=list("abcd")), "attention[0]"),  # 3-D
    (
        dict(
            attention=(torch.ones(1, 2, 4, 4) / 4, torch.ones(1, 3, 4, 4) / 4), tokens=list("abcd")
        ),
        "attention",
    ),
    (dict(attention=(torch.ones(2, 2, 4, 4) / 4,), tokens=list("abcd")), "attention[0]"),  # batch 2
    (dict(attention=softmaxed((1, 2, 3, 3)), tokens="abc"), "tokens"),
    (dict(attention=softmaxed((1, 2, 3, 3)) * 5, tokens=list("abc")), "attention"),
    (dict(attention=softmaxed((1, 2, 3, 3))), "tokens"),
    (
        dict(
            encoder_attention=softmaxed((1, 2, 3, 3)),
            decoder_attention=softmaxed((1, 2, 4, 4)),
            cross_attention=softmaxed((1, 2, 3, 4)),  # keys and queries swapped
            encoder_tokens=list("abc"),
            decoder_tokens=list("wxyz"),
        ),
        "cross_attention",
    ),
    (dict(encoder_attention=softmaxed((1, 2, 3, 3)), encoder_tokens=list("abc")), "attention"),
    (dict(cache={"blocks.0.mlp.hook_post": torch.zeros(1)}, tokens=["a"]), "cache"),
    (dict(attention=softmaxed((1, 2, 3, 3)), tokens=list("abc"), view="lines"), "view"),
    (dict(attention=softmaxed((1, 2, 3, 3)), tokens=list("abc"), layer=1), "layer"),
    (dict(attention=softmaxed((1, 2, 3, 3)), tokens=list("abc"), head=-1), "head"),
    (dict(attention=softmaxed((1, 2, 3, 3)), tokens=list("abc"), site="decoder.cross"), "site"),
    # more than attnviz.payload.MAX_CELLS weights (a broadcast view: no memory behind it)
    (
        dict(attention=np.broadcast_to(np.float32(0), (1, 1, 6000, 6000)), tokens=["a"] * 6000),
        "attention",
    ),
    (dict(model="no-such-model", text="hello"), "model"),
    (dict(model=torch.nn.Linear(2, 2), text="hello"), "model"),
    (dict(model="decoder-mini"), "text"),
    (dict(), "model"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD)])
def test_bad_input_is_a_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}: "):
        attnviz.show(**kwargs)


def test_model_input_errors_name_the_field(checkpoints):
    path = str(checkpoints / "decoder-mini")
    with pytest.raises(ValueError, match=r"^layer: "):
        attnviz.show(model=path, text=TEXT, view="heatmap", layer=9)
    with pytest.raises(ValueError, match=r"^target: "):
        attnviz.show(model=path, text=TEXT, target="le chat")
    with pytest.raises(ValueError, match=r"^text: "):
        attnviz.show(model=path, text="word " * 400)


def test_the_web_ui_export_is_the_notebook_page(checkpoints, client):
    """POST /export/standalone (the explorer's "HTML (standalone)"): the same page show() makes."""
    body = {"model": "decoder-mini", "text": TEXT, "view": "heatmap", "layer": 1, "head": 3}
    r = client.post("/export/standalone", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    data = unpack(r.text, "page")
    local = attnviz.show(
        model=str(checkpoints / "decoder-mini"), text=TEXT, view="heatmap", layer=1, head=3
    )
    assert data["answer"] == orjson.loads(local.payload.answer)
    assert (data["model"], data["input"], data["view"]) == ("decoder-mini", TEXT, "heatmap")
    assert unpack(r.text, "modules") == page.bundle()
    assert "/export/standalone" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"model": "no-such-model"}, 404, "model"),
        ({"layer": 7}, 422, "layer"),
        ({"view": "heatmap", "head": 9}, 422, "head"),
        ({"view": "lines"}, 422, "view"),
        ({"site": "decoder.cross"}, 422, "site"),
        ({"text": "word " * 400}, 422, "text"),
        ({"target": "le chat"}, 422, "target"),
    ],
)
def test_the_web_ui_export_refuses_bad_input_naming_the_field(client, change, status, field):
    r = client.post("/export/standalone", json={"model": "decoder-mini", "text": TEXT, **change})
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"].split(".")[0] == field


def test_a_loaded_hugging_face_model_is_converted_and_reads_as_it_does():
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<|endoftext|>", "the", "cat", "sat", "on", "mat", "[UNK]"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=16, vocab_size=7, n_positions=32, bos_token_id=0,
        eos_token_id=0, initializer_range=0.5, attn_implementation="eager",
    )  # fmt: skip
    hf = transformers.GPT2LMHeadModel(config).eval()
    out = attnviz.show(model=hf, tokenizer=tok, text="the cat sat on the mat", view="heads")
    answer = orjson.loads(out.payload.answer)
    ids = [t["id"] for t in answer["tokens"]["source"]]
    assert ids[1:] == [1, 2, 3, 4, 1, 5]  # the model's BOS, then the words
    with torch.no_grad():
        want = hf(torch.tensor([ids]), output_attentions=True).attentions
    np.testing.assert_allclose(
        decode_f16(answer["attention"]["decoder.self"]),
        torch.cat(want).numpy(),
        atol=1e-3,
    )
    with pytest.raises(ValueError, match=r"^tokenizer: "):
        attnviz.show(model=hf, text="the cat")


def test_text_and_tokens_never_become_markup():
    xss = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
    out = attnviz.show(attention=softmaxed((1, 1, 2, 2)), tokens=[xss, "b"], view="heatmap")
    html = out.html()
    assert "<img" not in html and "alert(2)</script>" not in html
    assert unpack(html, "page")["answer"]["tokens"]["source"][0]["text"] == xss


def test_an_output_too_large_for_a_notebook_is_refused_before_the_forward_pass(
    checkpoints, monkeypatch
):
    import attnviz.payload

    monkeypatch.setattr(attnviz.payload, "MAX_CELLS", 4 * 4 * 7 * 7 - 1)  # decoder-mini, 7 tokens
    path = str(checkpoints / "decoder-mini")
    with pytest.raises(ValueError, match=r"^view: more than"):
        attnviz.show(model=path, text=TEXT, view="heads")
    assert attnviz.show(model=path, text=TEXT, view="heatmap")  # one head still fits


def test_a_gguf_file_is_dequantized_and_drawn_as_transformers_reads_it(tmp_path):
    """model= a .gguf file (llama.cpp's format): the weights transformers reads from the same
    file give the attention drawn (every layer and head, to the f16 grid)."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from tests.models.convert.tiny_gguf import write_llama

    write_llama(tmp_path / "tiny chat.gguf")
    text = "the cat sat on the mat"
    out = attnviz.show(model=str(tmp_path / "tiny chat.gguf"), text=text, view="explorer")
    answer = orjson.loads(out.payload.answer)
    got = decode_f16(answer["attention"]["decoder.self"])
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path), gguf_file="tiny chat.gguf", dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(tmp_path), gguf_file="tiny chat.gguf"
    )
    ids = tokenizer(text)["input_ids"]
    assert [t["id"] for t in answer["tokens"]["source"]] == ids
    with torch.no_grad():
        want = torch.cat(hf(torch.tensor([ids]), output_attentions=True).attentions).numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert out.payload.model == "tiny chat"
    with pytest.raises(ValueError, match="^model"):
        (tmp_path / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 12)
        attnviz.show(model=str(tmp_path / "broken.gguf"), text=text)
