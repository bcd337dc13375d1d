"""The recipe of every shipped checkpoint: architecture, objective, steps, seed.

`attnviz train <id>` reproduces `checkpoints/<id>` from nothing with these settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Recipe:
    model_id: str
    title: str
    description: str
    objective: str  # "mlm+cls" | "lm" | "seq2seq" | "induction"
    tasks: list[str]
    # ModelConfig fields (or RNNConfig's, with "architecture": "rnn") except the vocabulary
    # and special ids
    architecture: dict
    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.01
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


#: the RNN translators (models/rnn.py): one recurrent layer each side, additive attention
RNN = dict(architecture="rnn", cell="lstm", d_embed=128, d_model=256, d_attn=128, max_len=256)

RECIPES: dict[str, Recipe] = {
    r.model_id: r
    for r in [
        Recipe(
            model_id="encoder-mini",
            title="Encoder (BERT-style)",
            description=(
                "A 4-layer, 4-head BERT-style encoder with learned positions and post-norm "
                "LayerNorm, pre-trained with masked language modelling (15 % of tokens, "
                "80/10/10) and then given a [CLS] head for positive / negative / neutral."
            ),
            objective="mlm+cls",
            tasks=["attention", "fill-mask", "classify"],
            architecture=dict(
                kind="encoder",
                n_layers=4,
                n_heads=4,
                d_model=128,
                d_ff=512,
                max_len=256,
                positional="learned",
                norm="layernorm",
                norm_position="post",
                activation="gelu",
            ),
            steps=3000,
            lr=5e-4,
            extra={"cls_steps": 1200, "mask_prob": 0.15},
        ),
        Recipe(
            model_id="decoder-mini",
            title="Decoder (GPT/LLaMA-style)",
            description=(
                "A 4-layer, 4-head decoder with rotary positions (RoPE), pre-norm RMSNorm and a "
                "SwiGLU feed-forward, trained on next-token prediction over the English corpus."
            ),
            objective="lm",
            tasks=["attention", "generate"],
            architecture=dict(
                kind="decoder",
                n_layers=4,
                n_heads=4,
                d_model=128,
                d_ff=384,
                max_len=256,
                positional="rope",
                norm="rmsnorm",
                norm_position="pre",
                activation="swiglu",
            ),
            steps=2500,
        ),
        Recipe(
            model_id="seq2seq-en-fr",
            title="Encoder-decoder (original Transformer), English → French",
            description=(
                "A 3+3-layer, 4-head encoder-decoder with sinusoidal positions and post-norm "
                "LayerNorm, as in 'Attention Is All You Need', translating the corpus's English "
                "into French. Cross-attention shows which source word each French word reads."
            ),
            objective="seq2seq",
            tasks=["attention", "generate", "translate"],
            architecture=dict(
                kind="seq2seq",
                n_layers=3,
                n_decoder_layers=3,
                n_heads=4,
                d_model=128,
                d_ff=512,
                max_len=256,
                positional="sinusoidal",
                norm="layernorm",
                norm_position="post",
                activation="relu",
                scale_embeddings=True,
            ),
            steps=2500,
            lr=7e-4,
            warmup=400,
        ),
        Recipe(
            model_id="induction-2l",
            title="Two-layer attention-only decoder (induction heads)",
            description=(
                "Two layers of four heads, attention only (no FFN), RoPE positions, RMSNorm "
                "pre-norm, trained on random tokens holding random runs of 8-64 tokens that "
                "each occur twice at random places: it copies the second time by looking up "
                "the token that followed the previous occurrence of the current token."
            ),
            objective="induction",
            tasks=["attention", "generate"],
            architecture=dict(
                kind="decoder",
                n_layers=2,
                n_heads=4,
                d_model=128,
                d_ff=512,
                max_len=256,
                positional="rope",
                # Without a norm the 0.02-scale residual stream kept every attention pattern
                # uniform: no circuit within 1500 steps, whatever the data and lr.
                norm="rmsnorm",
                norm_position="pre",
                attn_only=True,
            ),
            steps=1500,
            batch_size=32,
            lr=3e-3,
            # 0.1 left more of the previous-token job to other layer-0 heads; 0.6 and 1.0
            # blurred the induction heads.
            weight_decay=0.3,
            extra={
                "seq_len": 160,
                "run_lengths": [8, 64],
                "max_gap": 15,
                "heldout_run_lengths": [20, 40],  # never trained on: evaluation only
                "eval_run_lengths": [5, 7, 20, 40, 80, 100],  # probes of up to 201 tokens
            },
        ),
        Recipe(
            model_id="rnn-en-fr",
            title="Before transformers: LSTM encoder-decoder with additive attention, English → French",
            description=(
                "An LSTM encoder reads the English left to right, one hidden state per word; an "
                "LSTM decoder writes the French, attending over those states with additive "
                "(Bahdanau) attention: one layer, one head. Same corpus, split and tokenizer "
                "as seq2seq-en-fr, so the two translators can be compared."
            ),
            objective="seq2seq",
            tasks=["attention", "generate", "translate"],
            architecture=RNN,
            steps=3000,
            extra={"compare_with": "seq2seq-en-fr", "timing_steps": 30},
        ),
        Recipe(
            model_id="rnn-tanh-en-fr",
            title="Plain tanh RNN encoder-decoder with additive attention (companion)",
            description=(
                "rnn-en-fr with the plain recurrence h_t = tanh(W_x x_t + W_h h_{t-1} + b) "
                "instead of LSTM cells, trained with the same recipe: the companion for "
                "measuring vanishing gradients (the norm of dloss/dh_t for every t) beside "
                "the LSTM on the same sentence."
            ),
            objective="seq2seq",
            tasks=["attention", "generate", "translate"],
            architecture={**RNN, "cell": "tanh"},
            steps=3000,
        ),
    ]
}
