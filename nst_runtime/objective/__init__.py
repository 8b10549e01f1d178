"""What a run minimises, as data: the Gatys loss formulas, the per-scale targets, regions (masked
style terms) and the temporal term of videos. Evaluators below the engine turn it into numbers."""
