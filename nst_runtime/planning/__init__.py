"""Planning a run before it runs: the coarse-to-fine schedule, the memory budget, the tile grid.

Arithmetic on sizes only (no VGG, no tensors), so a run that cannot fit is refused at once.
"""
