"""Analyses beyond attention weights, in pure torch on a model and its trace: head scores,
ablation, the logit lens, attention rollout, value-weighted norms, direct logit attribution,
one block's norms, FFN and residual stream (``block``), and LayerNorm / RMSNorm / BatchNorm
side by side (``normalization``). Each is testable without the web service (app/ serves
them)."""
