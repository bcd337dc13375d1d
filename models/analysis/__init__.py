"""Analyses of a model's heads on top of its hook points: pure torch, no web code.

`scores` classifies heads from their attention patterns (previous-token, induction, ...);
`ablation` builds `capture(..., edits=...)` that silence or mean-ablate chosen heads.
"""
