"""Every knob of a run: one table, validated in one place before any compute starts.

``Options``' fields are the table. Each user-facing field carries an ``Option`` record (its help,
how a command line spells it, which front ends offer it), and everything else is derived from
it: ``stylize()``'s keywords and their documentation, the ``nst`` flags and their help
(``nst_runtime.cli.common``), the worker's JSON keys (``nst_runtime.worker.protocol``). A new
option is one field here. ``make_options`` turns user terms (a strength, one number of steps, a
memory size such as "4G", size 0, an init image's path) into fields; ``Options.validate`` fails
on a nonsense value with a message that names the option, so no front end repeats the checks.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import NSTError
from .units import MIN_MEMORY, parse_memory

QUALITIES = ("draft", "normal", "high")
PRESERVE_COLORS = ("none", "luminance", "histogram")
DEVICES = ("auto", "cpu", "cuda", "openvino", "openvino-f32", "openvino-bf16", "openvino-gpu")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
WEIGHT_SOURCES = ("vgg19", "vgg16", "torchvision-vgg19")
POOLINGS = ("max", "avg")

MIN_SIZE = 32
DEFAULT_SIZE = 512
MIN_TILE = 64  # tile sizes are rounded down to a multiple of 16 (the pool grids must align)
FRONTS = frozenset({"python", "cli", "worker"})


@dataclass(frozen=True)
class Option:
    """How the front ends offer one field of ``Options`` (see the module docstring).

    ``kind`` says how a command line spells the value: "int", "number", "ints" (comma-separated),
    "numbers", "choice" (one of ``choices``), "image" (a file) or "text"; JSON and Python take the
    value itself (an image: a path, a PIL image or an array; the worker's IMAGE object).
    """

    help: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    fronts: frozenset[str] = FRONTS


def option(default: Any, help: str, kind: str = "text", **spec: Any) -> Any:
    """A field of ``Options`` that the front ends offer."""
    return field(default=default, metadata={"option": Option(help, kind, **spec)})


def strength_to_style_weight(strength: float) -> float:
    """User-facing 0–1 strength → style weight multiplier; 0.5 is the default balance (×1)."""
    if not 0.0 <= strength <= 1.0:
        raise NSTError(f"strength must be between 0 and 1, got {strength}")
    return 10.0 ** (4.0 * (strength - 0.5))


@dataclass(frozen=True)
class Options:
    size: int | None = option(
        DEFAULT_SIZE,
        "longest side of the computation in pixels (0: the content's own size); "
        "the result is scaled back to the content's size",
        "int",
    )
    quality: str = option(
        "normal", "how many coarse-to-fine scales and steps: draft is quick, high is thorough", "choice",
        choices=QUALITIES,
    )  # fmt: skip
    steps: tuple[int, ...] | None = option(
        None,
        "steps per scale instead of the quality's: one number for every scale, or one per scale "
        "from coarse to fine (their count sets the number of scales)",
        "ints",
        metavar="N[,N...]",
    )
    strength: float | None = option(
        None, "style strength in user terms (0.5 = the default balance); replaces style-weight", "number",
        metavar="0..1",
    )  # fmt: skip
    style_weight: float = option(1.0, "multiplier of the style loss", "number")
    content_weight: float = option(1.0, "multiplier of the content loss", "number")
    tv_weight: float = option(0.0, "total-variation smoothing (0: off; 1: gentle)", "number")
    style_blend: tuple[float, ...] | None = option(
        None, "one weight per style image, e.g. 0.7,0.3 (default: equal)", "numbers", metavar="W[,W...]"
    )
    style_scale: float = option(
        1.0,
        "the style image's size relative to the output up to look-size (larger: bigger brush strokes); "
        "above it the brush texture keeps the painting's own pixel size times this",
        "number",
    )
    look_size: int = option(
        DEFAULT_SIZE,
        "the size at which the look is set (the preview's longest side): a larger run first paints "
        "the preview, then keeps its look on the image resized to this size and adds only the "
        "painting's brush texture at its own pixels (0: every layer at every size)",
        "int",
    )
    preserve_color: str = option(
        "none",
        "keep the content's colours: luminance (style on luminance only) or "
        "histogram (style colours matched to the content first)",
        "choice",
        choices=PRESERVE_COLORS,
    )
    init: str = option(
        "content",
        "start from the content image, from seeded random noise, or from an image file",
        metavar="content|noise|PATH",
    )
    init_image: object | None = option(
        None, "an image to start from (a path, PIL image or array); init=PATH does the same", fronts={"python"}
    )
    continue_from: object | None = option(
        None,
        "an earlier result at a smaller size (a preview) to continue: only the scales larger than it "
        "run, so the look it has is the look the result keeps",
        "image",
        metavar="IMAGE",
    )
    optimizer: str = option("lbfgs", "L-BFGS (default) or Adam", "choice", choices=OPTIMIZERS)
    seed: int = option(0, "random seed; a CPU run is reproducible bit for bit", "int")
    device: str = option(
        "auto",
        "where VGG runs: auto is CUDA where onnxruntime and torch can really use it, else cpu or openvino, "
        "whichever `nst estimate` measured faster here; cpu is fp32 on onnxruntime's CPU provider; openvino "
        "runs bf16 through OpenVINO on CPUs with AMX, with the full-size scale in fp32 on the CPU provider "
        "(f32 on OpenVINO without AMX); openvino-f32 and openvino-bf16 run every step on OpenVINO in that precision; "
        "openvino-gpu runs f32 on OpenVINO's Intel GPU device",
        "choice",
        choices=DEVICES,
    )
    weights: str = option(
        "vgg19", "VGG weights (see nst-export --help); vgg19 works offline", "choice", choices=WEIGHT_SOURCES
    )
    pooling: str = option("max", "VGG pooling (avg: smoother)", "choice", choices=POOLINGS)
    max_memory: int | None = option(
        None,
        "memory the whole run may use, e.g. 8G or 1500M (default: 3/4 of what is available); "
        "larger images are then computed in exact tiles, and a run that cannot fit is refused at once",
        metavar="SIZE",
    )
    tile_size: int | None = option(
        None, "force tiled evaluation with N×N-pixel tiles (rounded down to a multiple of 16)", "int", metavar="N"
    )
    # The engine's own knobs, which no front end offers:
    fused: bool = True  # use the fused loss-and-gradient graph when the objective is its built-in one
    scales: int | None = None  # coarse-to-fine scale count (None: from the preset; 1: the full size only)

    def __post_init__(self) -> None:
        """``strength`` is the style weight in user terms: where given, it sets ``style_weight``."""
        if self.strength is not None:
            if isinstance(self.strength, bool) or not isinstance(self.strength, int | float):
                raise NSTError(f"strength must be a number between 0 and 1, got {self.strength!r}")
            derived = strength_to_style_weight(float(self.strength))
            if self.style_weight not in (1.0, derived):
                raise NSTError("give either strength or style-weight, not both")
            object.__setattr__(self, "style_weight", derived)

    def validate(self, n_styles: int) -> Options:
        for f, spec in option_fields():
            if spec.kind == "choice":
                _choice(f.name.replace("_", "-"), getattr(self, f.name), spec.choices)
        if self.size is not None and (not isinstance(self.size, int) or self.size < MIN_SIZE):
            raise NSTError(f"size must be at least {MIN_SIZE} pixels, got {self.size}")
        for name in ("style_weight", "content_weight", "tv_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise NSTError(f"{name.replace('_', '-')} must be a non-negative number, got {value}")
        if not isinstance(self.style_scale, int | float) or not (
            math.isfinite(self.style_scale) and 0.05 <= self.style_scale <= 8
        ):
            raise NSTError(f"style-scale must be between 0.05 and 8, got {self.style_scale}")
        if self.steps is not None and (not self.steps or any(not isinstance(s, int) or s < 0 for s in self.steps)):
            raise NSTError(f"steps must be non-negative integers, got {list(self.steps)}")
        if self.scales is not None and (not isinstance(self.scales, int) or self.scales < 1):
            raise NSTError(f"scales must be a positive integer, got {self.scales!r}")
        if n_styles < 1:
            raise NSTError("at least one style image is needed")
        if self.continue_from is not None and self.init_image is not None:
            raise NSTError("give either an image to continue or an init image, not both")
        if self.style_blend is not None:
            blend = self.style_blend
            if len(blend) != n_styles:
                raise NSTError(f"style-blend has {len(blend)} weights for {n_styles} style image(s)")
            if any(not math.isfinite(b) or b < 0 for b in blend) or sum(blend) <= 0:
                raise NSTError(f"style-blend weights must be non-negative and not all zero, got {list(blend)}")
        if self.max_memory is not None and (not isinstance(self.max_memory, int) or self.max_memory < MIN_MEMORY):
            raise NSTError(f"max-memory must be at least {MIN_MEMORY >> 20}M, got {self.max_memory!r}")
        if not isinstance(self.look_size, int) or (self.look_size != 0 and self.look_size < MIN_SIZE):
            raise NSTError(f"look-size must be 0 or at least {MIN_SIZE} pixels, got {self.look_size}")
        if self.tile_size is not None and (not isinstance(self.tile_size, int) or self.tile_size < MIN_TILE):
            raise NSTError(f"tile-size must be an integer of at least {MIN_TILE}, got {self.tile_size!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise NSTError(f"seed must be an integer, got {self.seed!r}")
        return self

    def blend(self, n_styles: int) -> list[float]:
        weights = self.style_blend or (1.0,) * n_styles
        total = float(sum(weights))
        return [w / total for w in weights]


@dataclass(frozen=True)
class FrameOptions:
    """The knobs of an animation beyond a still's (``nst video``, the frame worker, ``stylize_frames``)."""

    # Measured on the benchmark (docs/benchmarks.md, "Temporal consistency").
    temporal_weight: float = option(
        1.0,
        "how strongly each frame keeps to the previous one (0: only start from it; higher: steadier)",
        "number",
    )
    frame_steps: int = option(20, "steps of each frame after a shot's first", "int")

    def validate(self) -> FrameOptions:
        weight = self.temporal_weight
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not weight >= 0:
            raise NSTError(f"temporal-weight must be a non-negative number, got {weight!r}")
        if not isinstance(self.frame_steps, int) or isinstance(self.frame_steps, bool) or self.frame_steps < 1:
            raise NSTError(f"frame-steps must be a positive integer, got {self.frame_steps!r}")
        return self


FRAME_STEPS = FrameOptions.frame_steps
DEFAULT_TEMPORAL_WEIGHT = FrameOptions.temporal_weight


def option_fields(table: type = Options, front: str | None = None) -> Iterator[tuple[Any, Option]]:
    """(field, its Option) for each offered field of ``table``, in order; only ``front``'s if given."""
    for f in fields(table):
        spec = f.metadata.get("option")
        if spec is not None and (front is None or front in spec.fronts):
            yield f, spec


def option_names(front: str, table: type = Options) -> tuple[str, ...]:
    """The keys ``front`` ("python", "cli" or "worker") accepts."""
    return tuple(f.name for f, _ in option_fields(table, front))


def _choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise NSTError(f"unknown {name} {value!r} (expected {', '.join(allowed)})")


def compute_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """The computation's size: longest side capped at ``size``, shortest side at least MIN_SIZE."""
    factor = 1.0 if size is None else min(1.0, size / max(height, width))
    return max(MIN_SIZE, round(height * factor)), max(MIN_SIZE, round(width * factor))


def make_options(**values: Any) -> Options:
    """Options from keyword values in user terms: ``strength`` (0–1) sets the style weight, ``steps``
    may be one number, ``max_memory`` a size such as "4G", ``size`` 0 the content's own size,
    ``init`` an image (path, PIL image or array) to start from. An unknown keyword is a TypeError,
    as for any Python call; ``style_weights`` is the old name of ``style_blend``."""
    if "style_weights" in values:
        warnings.warn("style_weights is now style_blend", DeprecationWarning, stacklevel=3)
        if values.get("style_blend") is not None:
            raise NSTError("give either style_weights or style_blend, not both")
        values["style_blend"] = values.pop("style_weights")
    known = {f.name for f in fields(Options)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"unexpected option {unknown[0]!r}")
    if values.get("size") == 0:
        values["size"] = None
    steps = values.get("steps")
    if steps is not None:
        values["steps"] = (steps,) if isinstance(steps, int) else tuple(steps)
    blend = values.get("style_blend")
    if blend is not None:
        values["style_blend"] = tuple(float(b) for b in blend)
    if values.get("max_memory") is not None:
        values["max_memory"] = parse_memory(values["max_memory"])
    init = values.get("init", "content")
    if not (isinstance(init, str) and init in INITS):
        values["init"], values["init_image"] = "content", init
    return Options(**values)


def keyword_parameters(table: type = Options) -> list[inspect.Parameter]:
    """``stylize()``'s option keywords, as its signature shows them."""
    return [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
        for f, _ in option_fields(table, "python")
    ]


def keyword_docs(table: type = Options) -> str:
    """The option keywords' help, for ``stylize()``'s docstring."""
    lines = []
    for f, spec in option_fields(table, "python"):
        choices = f" ({', '.join(spec.choices)})" if spec.choices else ""
        lines.append(f"    {f.name}={f.default!r}{choices}: {spec.help}")
    return "\n".join(lines)
