"""What an imported decoder's heads do, measured once at import for its card: on the induction
probe (a run of random tokens, twice), each head's previous-token, induction and first-token
(attention sink) scores, and the heads that stand out in each."""

from __future__ import annotations

import torch

from models.analysis import scores
from models.hooks import capture, hook_name

RUN, SEED, TOP, THRESHOLD = 32, 0, 5, 0.4


@torch.inference_mode()
def head_summary(model, specials: list[int]) -> dict:
    """The card's ``heads``: per score, the strongest heads (layer, head, score) at or above
    THRESHOLD (at most TOP), and how many heads reach it."""
    cfg = model.config
    run = min(RUN, (cfg.max_len - 1) // 2, cfg.vocab_size - len(set(specials)) - 1)
    ids = scores.induction_probe(
        run, cfg.vocab_size, seed=SEED, bos_id=cfg.bos_id, exclude=specials
    )
    names = [hook_name("decoder.self", li, "pattern") for li in range(cfg.n_layers)]
    with capture(model, names=names) as trace:
        model.decode(ids)
    patterns = torch.cat([trace[n].double() for n in names])  # (L, H, T, T)
    measured = {
        "previous_token": scores.previous_token(patterns),
        "induction": scores.induction(patterns, ids[0], causal=True),
        "first_token": scores.first_token(patterns),
    }
    out: dict = {
        "measured_on": f"the induction probe: {'BOS + ' if cfg.bos_id is not None else ''}"
        f"{run} random tokens, twice (seed {SEED}); heads scoring ≥ {THRESHOLD}",
    }
    for name, value in measured.items():
        flat = value.flatten()
        order = flat.argsort(descending=True)
        strong = [int(i) for i in order if flat[i] >= THRESHOLD]
        out[name] = {
            "count": len(strong),
            "top": [
                [i // cfg.n_heads, i % cfg.n_heads, round(float(flat[i]), 3)] for i in strong[:TOP]
            ],
        }
    return out
