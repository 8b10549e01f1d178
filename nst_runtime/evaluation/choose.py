"""The one place that decides how a scale's objective is evaluated: whole or in tiles, fused,
guided or through autograd."""

from __future__ import annotations

from ..objective.terms import Objective
from ..options import Options
from ..planning import memory
from ..planning.schedule import Scale
from ..vgg.features import VGG
from .base import Evaluator
from .tiled import TiledEvaluator
from .whole import AutogradEvaluator, FusedEvaluator, fused_inputs, guided_inputs, whole_image_graph


def choose_evaluator(vgg: VGG, objective: Objective, options: Options, scale: Scale | None = None) -> Evaluator:
    """The fastest strategy that evaluates this objective exactly within the scale's memory room.

    Whole-image evaluation (the fused graph, or the guided one for masked terms, where the
    objective allows) wherever it fits ``scale.memory``; otherwise tiles, as large as fit;
    ``options.tile_size`` forces tiles of that size.
    """
    graph = whole_image_graph(vgg, objective) if options.fused and objective.layers else None
    tile = memory.aligned_tile(options.tile_size)
    if tile is None and objective.layers and scale is not None:
        estimator = memory.MemoryModel.for_graphs(vgg.graphs)
        strategy = "fused" if graph is not None else "autograd"
        tile = memory.tile_for(estimator, objective.height, objective.width, scale.memory, strategy)
    if tile is not None and objective.layers:
        return TiledEvaluator(vgg, objective, tile)
    if graph == "fused":
        return FusedEvaluator(vgg, objective, fused_inputs(vgg, objective))
    if graph == "guided":
        return FusedEvaluator(vgg, objective, guided_inputs(vgg, objective), "guided")
    return AutogradEvaluator(vgg, objective)
