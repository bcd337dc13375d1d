from models.transformer import count_parameters
from tests.helpers import tiny


def test_parameter_parts_add_up_and_heads_have_the_textbook_size():
    model = tiny("encoder", n_classes=3, labels=["negative", "neutral", "positive"])
    parts = count_parameters(model)
    assert parts["total"] == sum(p.numel() for p in model.parameters())
    d, v = model.config.d_model, model.config.vocab_size
    assert parts["cls_head"] == d * 3 + 3  # hidden × classes + classes
    assert parts["lm_head"] == d * v + v
    # 4 projections of d×d + d per attention module, 2 layers
    assert parts["attention"] == 2 * 4 * (d * d + d)
    assert parts["norms"] == 2 * 2 * 2 * d  # two LayerNorms (γ, β) per layer


def test_attention_only_model_has_no_ffn_or_norms():
    parts = count_parameters(tiny("decoder", attn_only=True, norm="none"))
    assert parts["ffn"] == 0 and parts["norms"] == 0 and parts["attention"] > 0
