"""A scale's targets (the content's features, the styles' Gram matrices), whole where the image's
forward fits the room the memory plan leaves, in exact tiles where it does not."""

from __future__ import annotations

import torch

from ..objective.regions import layer_grams
from ..planning import memory
from ..vgg.features import VGG
from .tiled import tiled_features, tiled_grams


class Extractor:
    """Features and Gram matrices for the objective's targets: whole where the forward fits
    ``room`` bytes (None: always), tiled otherwise or when ``tile_size`` forces it."""

    def __init__(self, vgg: VGG, room: int | None = None, tile_size: int | None = None):
        self.vgg, self.room, self.tile_size = vgg, room, memory.aligned_tile(tile_size)
        self.estimator = memory.MemoryModel.for_graphs(vgg.graphs)
        self.size: tuple[int, int] | None = None

    def tile(self, height: int, width: int) -> int | None:
        if self.room is not None and self.size != (height, width):  # a new scale: its own, smaller room
            self.size = (height, width)
            self.vgg.release_memory()
        if self.tile_size is not None:
            return self.tile_size
        return memory.tile_for(self.estimator, height, width, self.room, "forward")

    @torch.no_grad()
    def features(self, image: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        tile = self.tile(image.shape[2], image.shape[3])
        if tile is None:
            return {k: v.clone() for k, v in self.vgg.features(image, layers).items()}
        return tiled_features(self.vgg, image, layers, tile)

    @torch.no_grad()
    def grams(
        self, image: torch.Tensor, layers: tuple[str, ...], mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        tile = self.tile(image.shape[2], image.shape[3])
        if tile is None:
            return layer_grams(self.vgg.features(image, layers), mask)
        return tiled_grams(self.vgg, image, layers, tile, mask)
