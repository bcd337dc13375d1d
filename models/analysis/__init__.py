"""Analyses beyond attention weights, in pure torch on a model and its hook points (no web
code; app/ serves them):

* ``scores``: what kind of head: previous-token, induction, duplicate-token, first-token,
  entropy, read off attention patterns; ``induction_probe`` builds the standard input;
* ``ablation``: ``capture(..., edits=...)`` that silence or mean-ablate chosen heads;
* ``importance``: each head's effect on the model's own predictions, ablations batched;
* ``lens``: the logit lens; ``rollout``: attention rollout;
* ``attribution``: value-weighted norms and direct logit attribution;
* ``block``: one block's norms, FFN and residual stream read off its hook points;
* ``normalization``: LayerNorm / RMSNorm / BatchNorm side by side on the same activations.
"""
