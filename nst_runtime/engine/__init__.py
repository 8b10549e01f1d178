"""The engine: ``stylize()`` and ``run()``, the coarse-to-fine optimisation, the optimizer,
animations frame by frame, and the time model that prices a run before it starts.

Its modules import torch; this package's ``__init__`` imports nothing, so a worker that only
prices runs (``engine.timing``) starts without paying for torch.
"""
