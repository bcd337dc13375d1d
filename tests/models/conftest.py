import pytest
import torch

from models import ModelConfig, build_model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(kind: str, **overrides):
    """A small random model of each family, in float64 so references agree to 1e-5 easily."""
    defaults = {
        "encoder": dict(positional="learned", norm="layernorm", norm_position="post"),
        "decoder": dict(
            positional="rope", norm="rmsnorm", norm_position="pre", activation="swiglu"
        ),
        "seq2seq": dict(positional="sinusoidal", norm="layernorm", norm_position="post"),
    }[kind]
    cfg = ModelConfig(
        kind=kind,
        vocab_size=40,
        d_model=32,
        n_heads=4,
        n_layers=2,
        d_ff=64,
        max_len=64,
        bos_id=1,
        eos_id=2,
        **{**defaults, **overrides},
    )
    return build_model(cfg).double().eval()
