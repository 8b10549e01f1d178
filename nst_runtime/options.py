"""Every knob of a run, validated in one place before any compute starts.

The CLI, the worker and ``stylize()`` all build an ``Options``; a nonsense value fails here with
a message that names the option, so no front end has to repeat the checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import NSTError
from .units import MIN_MEMORY, parse_memory

QUALITIES = ("draft", "normal", "high")
PRESERVE_COLORS = ("none", "luminance", "histogram")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
WEIGHT_SOURCES = ("vgg19", "vgg16", "torchvision-vgg19")

MIN_SIZE = 32
DEFAULT_SIZE = 512
# Steps of a frame that starts from the warped previous frame (the first frame of a shot gets the
# full schedule), and the temporal term's weight in user terms: measured on the benchmark
# (docs/benchmarks.md, "Temporal consistency").
FRAME_STEPS = 20
DEFAULT_TEMPORAL_WEIGHT = 1.0
MIN_TILE = 64  # tile sizes are rounded down to a multiple of 16 (the pool grids must align)


def strength_to_style_weight(strength: float) -> float:
    """User-facing 0–1 strength → style weight multiplier; 0.5 is the default balance (×1)."""
    if not 0.0 <= strength <= 1.0:
        raise NSTError(f"strength must be between 0 and 1, got {strength}")
    return 10.0 ** (4.0 * (strength - 0.5))


@dataclass(frozen=True)
class Options:
    size: int | None = DEFAULT_SIZE  # longest side of the computation; None = the content's own size
    quality: str = "normal"
    steps: tuple[int, ...] | None = None  # explicit steps per scale (one value = every scale)
    style_weight: float = 1.0
    content_weight: float = 1.0
    tv_weight: float = 0.0
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    preserve_color: str = "none"
    init: str = "content"
    init_image: object | None = None  # path, PIL image or array, used when given
    optimizer: str = "lbfgs"
    seed: int = 0
    device: str = "auto"
    weights: str = "vgg19"
    pooling: str = "max"
    fused: bool = True  # use the fused loss-and-gradient graph when the objective is its built-in one
    max_memory: int | None = None  # bytes the whole run may use (None: a safe share of what is available)
    tile_size: int | None = None  # force tiled evaluation with tiles of this many pixels a side
    scales: int | None = None  # coarse-to-fine scale count (None: from the preset; 1: the full size only)

    def validate(self, n_styles: int) -> Options:
        _choice("quality", self.quality, QUALITIES)
        _choice("preserve-color", self.preserve_color, PRESERVE_COLORS)
        _choice("device", self.device, DEVICES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("init", self.init, INITS)
        _choice("weights", self.weights, WEIGHT_SOURCES)
        _choice("pooling", self.pooling, ("max", "avg"))
        if self.size is not None and (not isinstance(self.size, int) or self.size < MIN_SIZE):
            raise NSTError(f"size must be at least {MIN_SIZE} pixels, got {self.size}")
        for name in ("style_weight", "content_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise NSTError(f"{name.replace('_', '-')} must be a non-negative number, got {value}")
        if not math.isfinite(self.style_scale) or not 0.05 <= self.style_scale <= 8:
            raise NSTError(f"style-scale must be between 0.05 and 8, got {self.style_scale}")
        if self.steps is not None and (not self.steps or any(not isinstance(s, int) or s < 0 for s in self.steps)):
            raise NSTError(f"steps must be non-negative integers, got {list(self.steps)}")
        if self.scales is not None and (not isinstance(self.scales, int) or self.scales < 1):
            raise NSTError(f"scales must be a positive integer, got {self.scales!r}")
        if n_styles < 1:
            raise NSTError("at least one style image is needed")
        if self.style_blend is not None:
            blend = self.style_blend
            if len(blend) != n_styles:
                raise NSTError(f"style-blend has {len(blend)} weights for {n_styles} style image(s)")
            if any(not math.isfinite(b) or b < 0 for b in blend) or sum(blend) <= 0:
                raise NSTError(f"style-blend weights must be non-negative and not all zero, got {list(blend)}")
        if self.max_memory is not None and (not isinstance(self.max_memory, int) or self.max_memory < MIN_MEMORY):
            raise NSTError(f"max-memory must be at least {MIN_MEMORY >> 20}M, got {self.max_memory!r}")
        if self.tile_size is not None and (not isinstance(self.tile_size, int) or self.tile_size < MIN_TILE):
            raise NSTError(f"tile-size must be an integer of at least {MIN_TILE}, got {self.tile_size!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise NSTError(f"seed must be an integer, got {self.seed!r}")
        return self

    def blend(self, n_styles: int) -> list[float]:
        weights = self.style_blend or (1.0,) * n_styles
        total = float(sum(weights))
        return [w / total for w in weights]


def _choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise NSTError(f"unknown {name} {value!r} (expected {', '.join(allowed)})")


def compute_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """The computation's size: longest side capped at ``size``, shortest side at least MIN_SIZE."""
    factor = 1.0 if size is None else min(1.0, size / max(height, width))
    return max(MIN_SIZE, round(height * factor)), max(MIN_SIZE, round(width * factor))


def make_options(
    *,
    strength: float | None = None,
    steps: int | Sequence[int] | None = None,
    style_blend: Sequence[float] | None = None,
    max_memory: int | str | None = None,
    **values,
) -> Options:
    """Options from keyword values, turning user terms (strength, a single steps int, a memory
    size such as "4G") into fields."""
    if strength is not None:
        if values.get("style_weight", 1.0) != 1.0:
            raise NSTError("give either strength or style-weight, not both")
        values["style_weight"] = strength_to_style_weight(float(strength))
    if steps is not None:
        steps = (steps,) if isinstance(steps, int) else tuple(steps)
    blend = tuple(float(b) for b in style_blend) if style_blend is not None else None
    if max_memory is not None:
        max_memory = parse_memory(max_memory)
    return Options(steps=steps, style_blend=blend, max_memory=max_memory, **values)
