"""Memory planning: what a request will hold at its peak, predicted from its shapes before it
runs, against ``ATTNVIZ_MEMORY_BUDGET_MB``.

Each endpoint states its need as ``fixed + n × per_item`` (n: the heads of a sweep batch, the
vocabulary ids of a lens chunk...) and asks either `require` (it fits, or a 422
``too_much_memory`` naming the field to change and what would fit) or `largest_chunk` (the
largest n within the budget: the work is then done in chunks of n). The estimates are float32
bytes of the tensors a step keeps alive at once (a forward pass holds one layer's attention
at a time; a capture keeps what it records), not the allocator's overhead: the budget is a
bound on the request's working set, checked before any work starts.
"""

from __future__ import annotations

from models.config import ModelConfig

FLOAT = 4  # bytes: the server runs float32
MB = 1 << 20


def budget_bytes(settings) -> int:
    return settings.memory_budget_mb * MB


def weights_budget_bytes(settings) -> int | None:
    """What the models' weights may take: ATTNVIZ_MODELS_MEMORY_MB, or by default the memory
    the machine has available at start less what the workers' requests may hold (each up to
    the request budget). None where the available memory cannot be read (not Linux)."""
    if settings.models_memory_mb:
        return settings.models_memory_mb * MB
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    return max(0, available - settings.max_concurrency * budget_bytes(settings))


def mb(n: int) -> int:
    """Bytes as whole MB, rounded up (a message never says "0 MB")."""
    return max(1, -(-n // MB))


def too_much(field: str, message: str):
    from app.errors import invalid

    return invalid(field, message, "too_much_memory")


def require(need: int, budget: int, field: str, what: str, advice: str) -> None:
    """A 422 naming ``field`` when ``need`` bytes exceed the budget."""
    if need > budget:
        raise too_much(
            field,
            f"{what} needs about {mb(need)} MB (the budget, ATTNVIZ_MEMORY_BUDGET_MB, is "
            f"{mb(budget)} MB): {advice}",
        )


def largest_chunk(
    fixed: int, per_item: int, budget: int, most: int, field: str, what: str, advice: str
) -> int:
    """The largest n ≤ ``most`` with fixed + n × per_item within the budget (a 422 naming
    ``field`` when not even one item fits)."""
    n = (budget - fixed) // max(1, per_item)
    if n < 1:
        require(fixed + per_item, budget, field, what, advice)
    return int(max(1, min(most, n)))


# --- the shapes of one forward pass -------------------------------------------------------


def attention_bytes(cfg: ModelConfig, queries: int, keys: int, batch: int = 1) -> int:
    """One attention module's transient tensors: scores, masked scores, pattern (B, H, Tq, Tk)."""
    return 3 * batch * cfg.n_heads * queries * keys * FLOAT


def stream_bytes(cfg: ModelConfig, tokens: int, batch: int = 1) -> int:
    """One block's other activations: the residual stream, norms, Q, K, V, Z, W_O's output and
    the FFN's hidden units (SwiGLU's three)."""
    return batch * tokens * (8 * cfg.d_model + 3 * cfg.d_ff) * FLOAT


def logits_bytes(cfg: ModelConfig, positions: int, batch: int = 1) -> int:
    return batch * positions * cfg.vocab_size * FLOAT


def forward_bytes(cfg: ModelConfig, tokens: int, batch: int = 1, *, logits: bool = True) -> int:
    """The peak of one forward pass of ``batch`` sequences of ``tokens``: the widest layer's
    transients (a block frees them before the next) plus, with ``logits``, the vocabulary
    logits of every position."""
    peak = attention_bytes(cfg, tokens, tokens, batch) + stream_bytes(cfg, tokens, batch)
    if logits and getattr(cfg, "lm_head", True):
        peak += logits_bytes(cfg, tokens, batch)
    return peak


def patterns_bytes(cfg: ModelConfig, queries: int, keys: int, layers: int) -> int:
    """Every head's pattern of ``layers`` layers, kept by a capture (float32)."""
    return layers * cfg.n_heads * queries * keys * FLOAT


def check_forward(settings, cfg: ModelConfig, tokens: int, what: str, *, batch: int = 1) -> None:
    """The common case: one forward pass (plus what it answers, small beside it)."""
    require(
        forward_bytes(cfg, tokens, batch),
        budget_bytes(settings),
        "text",
        f"{what} on {tokens} tokens",
        "send a shorter text",
    )
