"""How an objective is evaluated: x → (parts, d total / d x), one strategy per class.

- ``whole.FusedEvaluator``: the whole image through the fused graph (features → loss →
  gradient in one onnxruntime run), for the built-in objective: content on relu4_2, one
  unmasked Gram term per style layer. The fast path. With the *guided* graph it also runs
  masked (regional) objectives: any number of guided Gram terms per style layer.
- ``whole.AutogradEvaluator``: the whole image through ``VGG.features`` (feature graph forward,
  gradient graph backward) and the torch loss formulas, for any objective (masked styles,
  other layers).
- ``tiled.TiledEvaluator``: any objective, tile by tile, exactly, where the whole image's
  evaluation does not fit the scale's memory room (``nst_runtime.planning.memory``).

Pixel-space terms (TV, temporal) are cheap and go through torch autograd in every strategy.
The optimizer sees only the ``Evaluator`` call; ``choose.choose_evaluator`` is the one place
that decides which strategy a scale uses, and ``targets.Extractor`` the one that decides how a
scale's targets are computed.
"""
