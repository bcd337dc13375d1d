"""What the encoder was trained to do: fill [MASK] tokens, classify from [CLS]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from app.inference.common import ablation_info, as_batch, prob
from app.inputs import ModelInput
from app.serialize import rounded
from models import capture
from models.hooks import hook_name


def _masks(inp: ModelInput, top_k: int, names: list[str], edits: dict | None):
    """The top predictions at every [MASK], and the trace of ``names``."""
    entry, codec = inp.entry, inp.entry.codec
    model, ids = entry.model, inp.source.ids
    with capture(model, names, edits=edits) as trace:
        logits = model.mlm_logits(model.encode(as_batch(ids, entry)))[0].float()  # (T, V)
    never = [i for i in codec.special_ids if i < logits.shape[-1]]
    if never:
        logits[:, never] = float("-inf")  # predict words, not [CLS] / [SEP] / [MASK] / [PAD]
    positions = [k for k, i in enumerate(ids) if i == codec.mask_id]
    probs = F.softmax(logits[positions], dim=-1)
    top_p, top_i = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
    masks = [
        {
            "index": k,
            "predictions": [
                {"id": int(i), "token": codec.token_text(int(i)), "prob": prob(p)}
                for p, i in zip(top_p[row].tolist(), top_i[row].tolist(), strict=True)
            ],
        }
        for row, k in enumerate(positions)
    ]
    return masks, trace


def fill_mask(inp: ModelInput, top_k: int, with_attention: bool) -> dict:
    entry = inp.entry
    names = []
    if with_attention:
        names = [hook_name("encoder.self", li, "pattern") for li in range(entry.config.n_layers)]
    masks, trace = _masks(inp, top_k, names, inp.edits)
    out: dict = {"model": entry.id, "tokens": inp.source.tokens, "masks": masks}
    if with_attention:
        out["attention"] = {"encoder.self": rounded(torch.stack([trace[n][0] for n in names]))}
    if inp.ablate:  # what the model says without the ablation
        out |= ablation_info(inp, baseline={"masks": _masks(inp, top_k, [], None)[0]})
    return out


def _labels(inp: ModelInput, names: list[str], edits: dict | None):
    entry, cfg = inp.entry, inp.entry.config
    with capture(entry.model, names, edits=edits) as trace:
        logits = entry.model.classify(entry.model.encode(as_batch(inp.source.ids, entry)))
    probs = F.softmax(logits[0].float(), dim=-1).tolist()
    labels = cfg.labels or [f"class_{i}" for i in range(len(probs))]
    return {
        "label": labels[int(np.argmax(probs))],
        "labels": [{"label": lab, "prob": prob(p)} for lab, p in zip(labels, probs, strict=True)],
    }, trace


def classify(inp: ModelInput) -> dict:
    entry = inp.entry
    last = entry.config.depth("encoder") - 1
    name = hook_name("encoder.self", last, "pattern")
    answer, trace = _labels(inp, [name], inp.edits)
    out = {
        "model": entry.id,
        "tokens": inp.source.tokens,
        **answer,
        "cls_attention": {"layer": last, "heads": rounded(trace[name][0, :, 0, :])},
    }
    if inp.ablate:
        out |= ablation_info(inp, baseline=_labels(inp, [], None)[0])
    return out
