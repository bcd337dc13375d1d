"""POST /block: one block's Add & Norm and FFN, the stream across the stack, and three
normalisations of the same activations (models.analysis.block, models.analysis.normalization)."""

from __future__ import annotations

from app.inference.common import ablation_info, forward, greedy_target, target_of, tokens_of
from app.inputs import BlockInput, Sequence
from app.serialize import Format, rounded, tensor
from models.analysis import normalization
from models.analysis.block import BlockReading, block_hooks, read_block


def block(b: BlockInput, fmt: Format, max_new_tokens: int) -> dict:
    inp, entry = b.input, b.input.entry
    cfg, model = entry.config, entry.model
    target = target_of(inp, max_new_tokens) if b.reads_target else None  # encoders: no decoding
    names = block_hooks(model, b.stack, b.layer)
    trace = forward(entry, inp.source.ids, target.ids if target else None, names, inp.edits)
    reading = read_block(model, trace, b.stack, b.layer)
    sentence = trace[reading.first_stream][0]
    others = [_first_stream(b, seq, reading, max_new_tokens) for seq in b.batch]
    compared = normalization.compare(sentence, others, cfg.norm_eps)
    return {
        "model": entry.id,
        "kind": cfg.kind,
        "format": fmt,
        "stack": b.stack,
        "layer": b.layer,
        "n_layers": cfg.depth(b.stack),
        "d_model": cfg.d_model,
        "norm": {"type": cfg.norm, "position": cfg.norm_position},
        "reads": "target" if b.reads_target else "source",
        "tokens": tokens_of(inp, target),
        "order": [{"step": s.step, "module": s.module} for s in reading.order],
        "normalization": _norms(reading, fmt),
        "ffn": _ffn(reading, fmt),
        "residual": _residual(reading),
        "comparison": _comparison(reading, compared, b.batch_text, others, fmt),
        **ablation_info(inp),
    }


def _first_stream(b: BlockInput, seq: Sequence, reading: BlockReading, max_new_tokens: int):
    """What the block's first norm reads for another sentence of the batch, (T_i, D)."""
    entry, edits = b.input.entry, b.input.edits
    target = greedy_target(entry, seq.ids, max_new_tokens, edits) if b.reads_target else None
    trace = forward(entry, seq.ids, target.ids if target else None, [reading.first_stream], edits)
    return trace[reading.first_stream][0]


def _stats(s: normalization.TokenStats) -> dict:
    return {"mean": rounded(s.mean), "std": rounded(s.std), "rms": rounded(s.rms)}


def _norms(reading: BlockReading, fmt: Format) -> dict:
    out = {}
    for name, n in reading.norms.items():
        layer = None if name in ("embed_norm", "final_norm") else reading.layer
        prefix = f"{reading.stack}." + ("" if layer is None else f"blocks.{layer}.") + name
        out[name] = {
            "kind": n.kind,
            "eps": n.eps,
            "hooks": prefix,
            "stream": tensor(n.stream, fmt),
            "normalized": tensor(n.normalized, fmt),
            "output": tensor(n.output, fmt),
            "gain": rounded(n.gain),
            "bias": None if n.bias is None else rounded(n.bias),
            "stats": {part: _stats(s) for part, s in n.stats().items()},
        }
    return out


def _ffn(reading: BlockReading, fmt: Format) -> dict | None:
    f = reading.ffn
    if f is None:
        return None
    out = {
        "activation": f.activation,
        "d_ff": f.pre.shape[-1],
        "pre": tensor(f.pre, fmt),
        "post": tensor(f.post, fmt),
        "out": tensor(f.out, fmt),
        "zeroed": rounded(f.zeroed),
        "unit_write": rounded(f.unit_write),
    }
    if f.gate is not None:
        out |= {"gate": tensor(f.gate, fmt), "up": tensor(f.up, fmt)}
    return out


def _residual(reading: BlockReading) -> dict:
    r = reading.residual
    return {
        "points": [{"layer": li, "after": sub} for li, sub in r.points],
        "l2": rounded(r.l2),
        "added": rounded(r.added),
    }


def _comparison(reading, compared, texts: list[str], others, fmt: Format) -> dict:
    def per_feature(p: normalization.PerFeature) -> dict:
        return {
            "mean": rounded(p.mean),
            "std": rounded(p.std),
            "n_tokens": p.n_tokens,
            "n_sentences": p.n_sentences,
            "output": tensor(p.output, fmt),
        }

    ln, rms = compared.layernorm, compared.rmsnorm
    return {
        "stream": reading.first_stream,
        "eps": compared.eps,
        "batch": [
            {"text": text, "n_tokens": int(x.shape[0])}
            for text, x in zip(texts, others, strict=True)
        ],
        "layernorm": {
            "mean": rounded(ln.stats.mean),
            "std": rounded(ln.stats.std),
            "output": tensor(ln.output, fmt),
        },
        "rmsnorm": {"rms": rounded(rms.stats.rms), "output": tensor(rms.output, fmt)},
        "batchnorm": {
            "alone": per_feature(compared.batchnorm_alone),
            "batch": per_feature(compared.batchnorm_batch),
        },
    }
