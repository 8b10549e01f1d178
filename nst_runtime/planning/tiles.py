"""Where the tiles of an exact tiled evaluation lie: pure geometry, no compute.

The image is cut into *inner* regions that partition it; each tile is its inner region plus a
halo, clipped at the image border (never padded past it, so the border's zero padding stays the
whole image's). Inner boundaries and halos are multiples of ``ALIGN`` = 16 px, so a tile's
four 2×2 pool grids coincide with the whole image's and its inner region maps to whole
positions on every layer's grid (Galerne et al., "Scaling Painting Style Transfer", 2022).

Two halos make a tile exact (``halos``):
- *forward*: the receptive radius of the deepest tap (70 px for VGG-19's relu5_1), aligned up:
  every tap is exact on the tile's inner region. The statistics pass needs this; so does the
  gradient pass that zeroes the upstream gradient outside the inner region and sums the tiles'
  whole image gradients ("sum" stitching).
- *crop*: twice that radius and a position's width, aligned up (160 px): the tile's image
  gradient is exact on its inner region when the upstream gradient is given on the whole tile
  ("crop" stitching, SPST's).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from nst_export.architecture import Layer

ALIGN = 16  # 2⁴: four 2×2 poolings


def _align_up(value: int) -> int:
    return ALIGN * math.ceil(value / ALIGN)


def receptive_radius(plan: list[Layer]) -> int:
    """Pixels on each side of an aligned region that its deepest tap's values depend on."""
    radius, stride = 0, 1
    for layer in plan:
        if layer.kind == "conv":
            radius += stride  # a 3×3 convolution, padding 1, at this stride
        elif layer.kind == "pool":
            stride *= 2  # 2×2, stride 2, aligned: no reach past the region, only coarser steps
    return radius


def halos(plan: list[Layer]) -> dict[str, int]:
    """The aligned halo each stitching needs (see the module docstring).

    For ``crop``, a pixel p reaches every position whose receptive field holds it: one whose
    block of ``scale`` pixels lies up to radius + scale away, and that position reads another
    radius beyond (156 px for relu5_1; 160 aligned).
    """
    radius = receptive_radius(plan)
    deepest = layer_scale(plan, plan[-1].name)
    return {"sum": _align_up(radius), "crop": _align_up(2 * radius + deepest)}


def layer_scale(plan: list[Layer], name: str) -> int:
    """How many image pixels one position of layer ``name`` spans (2 per pool before it)."""
    scale = 1
    for layer in plan:
        if layer.kind == "pool":
            scale *= 2
        if layer.name == name:
            return scale
    raise KeyError(name)


@dataclass(frozen=True)
class Span:
    """One axis of a tile: the pixels it reads [start, stop) and the ones it owns [inner_start, inner_stop)."""

    start: int
    stop: int
    inner_start: int
    inner_stop: int
    length: int  # the image's length on this axis

    def inner_on(self, scale: int) -> tuple[int, int]:
        """The owned positions on a layer grid of this ``scale``, relative to the tile's own grid.

        A tile that reaches the image's end floors like the whole image does (an odd size drops
        the same last row), so its last inner position is the whole layer's last position.
        """
        origin = self.start // scale
        stop = self.length // scale if self.inner_stop == self.length else self.inner_stop // scale
        return self.inner_start // scale - origin, stop - origin

    def on(self, scale: int) -> tuple[int, int]:
        """The tile's positions on a layer grid of this ``scale``, in whole-layer coordinates."""
        return self.start // scale, self.start // scale + (self.stop - self.start) // scale


def split(length: int, inner: int, halo: int) -> list[Span]:
    """Spans whose inner parts partition [0, length) into near-equal aligned pieces ≤ ``inner``.

    Every span reads the same length (the largest piece plus both halos; those at the end up to
    15 px less), shifted inward at the borders: more context never changes an inner region's
    values, and equal tiles let onnxruntime's arena reuse one set of buffers for all of them
    (tiles of three sizes held three sets: docs/benchmarks.md §8).
    """
    if inner % ALIGN or halo % ALIGN or inner <= 0:
        raise ValueError(f"tile size {inner} and halo {halo} must be positive multiples of {ALIGN}")
    units = math.ceil(length / ALIGN)
    count = math.ceil(units / (inner // ALIGN))
    base, extra = divmod(units, count)
    bounds = [0]
    for i in range(count):
        bounds.append(min(length, bounds[-1] + ALIGN * (base + (i < extra))))
    reach = min(length, ALIGN * (base + (extra > 0)) + 2 * halo)
    spans = []
    for inner_start, inner_stop in itertools.pairwise(bounds):
        start = max(0, inner_start - halo)
        if start + reach > length:  # the end of the image: the span must reach it, from an aligned start
            start = _align_up(length - reach)
        spans.append(Span(start, min(length, start + reach), inner_start, inner_stop, length))
    return spans


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    @property
    def height(self) -> int:
        return self.rows.stop - self.rows.start

    @property
    def width(self) -> int:
        return self.cols.stop - self.cols.start

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def image_slices(self) -> tuple[slice, slice]:
        return slice(self.rows.start, self.rows.stop), slice(self.cols.start, self.cols.stop)

    def inner_slices(self) -> tuple[slice, slice]:
        """The owned pixels, in image coordinates."""
        return slice(self.rows.inner_start, self.rows.inner_stop), slice(self.cols.inner_start, self.cols.inner_stop)

    def local_inner_slices(self, scale: int = 1) -> tuple[slice, slice]:
        """The owned positions of a layer of this ``scale``, on the tile's own grid."""
        (r0, r1), (c0, c1) = self.rows.inner_on(scale), self.cols.inner_on(scale)
        return slice(r0, r1), slice(c0, c1)

    def layer_slices(self, scale: int) -> tuple[slice, slice]:
        """The tile's positions on a whole layer grid of this ``scale``."""
        (r0, r1), (c0, c1) = self.rows.on(scale), self.cols.on(scale)
        return slice(r0, r1), slice(c0, c1)

    def layer_inner_slices(self, scale: int) -> tuple[slice, slice]:
        """The owned positions on a whole layer grid of this ``scale``."""
        (r0, r1), (c0, c1) = self.rows.inner_on(scale), self.cols.inner_on(scale)
        ro, co = self.rows.start // scale, self.cols.start // scale
        return slice(ro + r0, ro + r1), slice(co + c0, co + c1)


def plan_tiles(height: int, width: int, inner: int, halo: int) -> list[Tile]:
    """Row-major tiles of at most ``inner`` owned pixels a side, each read with ``halo`` around it."""
    return [Tile(r, c) for r in split(height, inner, halo) for c in split(width, inner, halo)]


def largest_tile(height: int, width: int, inner: int, halo: int) -> tuple[int, int]:
    """(height, width) of the biggest tile of that plan, without listing the tiles."""
    rows, cols = split(height, inner, halo), split(width, inner, halo)
    return max(s.stop - s.start for s in rows), max(s.stop - s.start for s in cols)
