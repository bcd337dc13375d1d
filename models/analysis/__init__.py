"""Analyses beyond attention weights, in pure torch on a model and its trace: head scores,
ablation, the logit lens, attention rollout, value-weighted norms and direct logit
attribution. Each is testable without the web service (app/ serves them)."""
