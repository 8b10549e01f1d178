"""The memory planner: what a run would need, and how to make it fit a budget, before it runs.

Two parts of a run grow with the image:
- one *evaluation* (VGG forward, loss, gradient): the feature graph's outputs (taps, ReLU masks,
  pool routes), the upstream gradients and the graphs' working set. Tiling bounds it by a tile.
- the *image buffers* the engine and the optimizer hold between evaluations: copies of the image
  (the photo, the iterate, the best iterate, the gradient, the optimizer's vectors), the content
  target (relu4_2: 32 bytes a pixel) and L-BFGS's history, 2 vectors per pair (24 bytes a
  pixel). At 24 MP a copy is 288 MB: 100 pairs would be 58 GB, so the history is sized from the
  budget too (100 at the coarse scales, a few at the finest, as Galerne et al. do).

``plan_scales`` decides, per scale of the schedule, the L-BFGS history and the memory the
evaluation may use (``Scale.memory``); ``choose_evaluator`` then picks whole-image evaluation
where it fits that room and the largest tile that fits otherwise. Where even the smallest tile
and the shortest history do not fit, the run is refused before any compute, in one line that
names the size, the memory needed and the budget.

The per-pixel figures come from the graph plan; the constants that turn them into peaks were
measured (bench/memory_model.py, docs/benchmarks.md) on onnxruntime's CPU provider with the
arena of ``nst_runtime.sessions``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from nst_export.architecture import Layer, output_shape, saved_tensors, truncated_plan

from ..errors import NSTError
from ..options import compute_size
from ..units import GIB, MIB, format_bytes
from .schedule import LBFGS_HISTORY, plan_scales
from .tiles import ALIGN, halos, largest_tile, plan_tiles

DEFAULT_SHARE = 0.75  # of the memory available when a run starts, when no budget is given
#: The share of a budget the plan fills: at 12 MP the estimate of one term or another is a few
#: per cent low (a plan of the whole budget peaked above it: docs/benchmarks.md 7.5), and a
#: budget is a promise.
PLAN_SHARE = 0.9
BASE_BYTES = 750 * MIB  # the process at rest: Python, torch, onnxruntime, three sessions' weights
IMAGE_COPIES = 10  # float32 RGB copies of the computation-size image alive at the optimiser's peak
HISTORY_GOOD = 10  # below this many pairs, a smaller tile is preferred to a shorter history
HISTORY_MIN = 3
TILE_MIN = 128  # smaller tiles are mostly halo
TILE_GOOD = 512  # (512 + 160)² / 512² = 1.7× the pixels: below this a shorter history is preferred
TILE_MAX = 4096
TILED_PASSES = 1.5  # a forward is about half of forward + backward, and the tiles' forward runs twice
#: measured working set of the graphs, in "widest activations" (64 channels at full resolution)
WORKING_SET = {"fused": 7.5, "autograd": 6.5, "tiled": 7.0, "forward": 5.0}


def _meminfo() -> dict[str, int]:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    info = {}
    for line in lines:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            info[name] = int(fields[0]) * 1024
    return info


def available_memory(device: str = "cpu") -> int:
    """Bytes this run could use now: free GPU memory on CUDA, else the host's available memory."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    info = _meminfo()
    if "MemAvailable" in info:
        return info["MemAvailable"] + _own_rss()
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") + _own_rss()
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


def _own_rss() -> int:
    """What this process already holds (the budget covers the whole process)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def total_memory(device: str = "cpu") -> int | None:
    """The machine's memory (the GPU's on CUDA), or None where it cannot be told."""
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[1])
    return _meminfo().get("MemTotal")


def resolve_budget(max_memory: int | None, device: str = "cpu") -> tuple[int, str | None]:
    """The budget in bytes (the one given, or a safe share of what is available now) and a note
    for the user when the one given is more than the machine has (it is then capped to that)."""
    if max_memory is None:
        return int(DEFAULT_SHARE * available_memory(device)), None
    total = total_memory(device)
    if total is not None and max_memory > total:
        return (
            total,
            f"max-memory {format_bytes(max_memory)} is more than this machine's {format_bytes(total)}: using that",
        )
    return max_memory, None


@dataclass(frozen=True)
class MemoryModel:
    """Peak-memory estimates from per-pixel figures of the graph plan (bytes per image pixel)."""

    outputs: float  # the feature graph's outputs: taps, ReLU masks, pool routes
    taps: float  # the taps alone (the upstream gradients have their size)
    widest: float  # the largest activation, float32
    content: float  # the content target (relu4_2)
    halo: int  # the tiled evaluation's halo ("sum" stitching)

    @classmethod
    def for_plan(cls, plan: list[Layer], taps: tuple[str, ...], pooling: str = "max") -> MemoryModel:
        def per_pixel(name: str) -> float:  # positions per image pixel × channels
            _, channels, h, w = output_shape(plan, name, 1 << 12, 1 << 12)
            return channels * h * w / float(1 << 24)

        widest = max(4 * per_pixel(layer.name) for layer in plan)
        taps_bytes = sum(4 * per_pixel(layer.name) for layer in plan if layer.name in taps)
        # the saved tensors are bool: ReLU masks and max-pool routes, one byte a position
        outputs = sum(per_pixel(s.layer) for s in saved_tensors(plan, taps, pooling))
        content = 0.0
        if "relu4_2" in taps:
            _, channels, h, w = output_shape(plan, "relu4_2", 1 << 12, 1 << 12)
            content = 4 * channels * h * w / float(1 << 24)
        return cls(outputs + taps_bytes, taps_bytes, widest, content, halos(plan)["sum"])

    @classmethod
    def for_graphs(cls, graphs) -> MemoryModel:
        return cls.for_plan(graphs.plan, graphs.taps, graphs.manifest.get("pooling", "max"))

    @classmethod
    def for_options(cls, options) -> MemoryModel:
        from nst_export import DEFAULT_LAYERS
        from nst_export.sources import arch_of

        arch = arch_of(options.weights) or "vgg19"
        return cls.for_plan(truncated_plan(arch, DEFAULT_LAYERS), DEFAULT_LAYERS, options.pooling)

    def evaluation(self, strategy: str, height: int, width: int, tile: int | None = None) -> int:
        """Peak bytes above the resting process of one evaluation ("fused", "autograd", "tiled", "forward")."""
        pixels = height * width
        if strategy == "tiled":
            if tile is None:
                raise ValueError("a tiled estimate needs a tile size")
            th, tw = largest_tile(height, width, tile, self.halo)
            pixels = th * tw
        per_pixel = self.outputs + WORKING_SET[strategy] * self.widest
        if strategy in ("autograd", "tiled"):
            per_pixel += self.taps  # the upstream gradients, beside the taps
        return int(pixels * per_pixel)

    def buffers(self, height: int, width: int, history: int) -> int:
        """The image buffers the engine and L-BFGS hold at this scale (see the module docstring)."""
        return int(height * width * (IMAGE_COPIES * 12 + self.content + 24 * (history + 1)))

    def largest_tile(self, height: int, width: int, room: int) -> int | None:
        """The largest aligned tile whose evaluation fits ``room`` bytes, or None."""
        lo, hi = TILE_MIN // ALIGN, TILE_MAX // ALIGN
        if self.evaluation("tiled", height, width, lo * ALIGN) > room:
            return None
        while lo < hi:  # the estimate grows with the tile
            mid = (lo + hi + 1) // 2
            if self.evaluation("tiled", height, width, mid * ALIGN) <= room:
                lo = mid
            else:
                hi = mid - 1
        return lo * ALIGN


@dataclass(frozen=True)
class Fit:
    """One scale's decision: how long the history, how much the evaluation may use, tiled or not."""

    history: int
    room: int  # bytes the evaluation may use
    tile: int | None  # None: the whole image fits
    needed: int  # the estimated peak of the whole process


def fit_scale(
    estimator: MemoryModel,
    budget: int,
    height: int,
    width: int,
    *,
    reserved: int = 0,
    history: int = LBFGS_HISTORY,
    steps: int | None = None,
    tile_size: int | None = None,
    strategy: str = "fused",
) -> Fit:
    """The evaluation and the L-BFGS history of one scale within ``budget`` (``reserved``: what
    the run holds besides this scale's buffers, its inputs).

    L-BFGS keeps at most one pair per step, so a scale of ``steps`` steps never uses more than
    that many: the top scales of a large photo (a few steps each) lose nothing to a short
    history, and the memory goes to larger tiles (less halo) instead. In order of preference:
    the whole image with the useful history (at least ``HISTORY_GOOD`` pairs); tiles as large as
    fit with it, if at least ``TILE_GOOD``; tiles of ``TILE_GOOD`` with a shorter history, down
    to ``HISTORY_MIN``; smaller tiles with ``HISTORY_MIN`` pairs, down to ``TILE_MIN``. Raises
    NSTError (one line: the size, the memory needed, the budget) when nothing fits.
    """
    useful = max(1, min(history, history if steps is None else steps))
    floor = min(useful, HISTORY_MIN)
    fixed = BASE_BYTES + reserved
    asked, budget = budget, int(budget * PLAN_SHARE)

    def longest(evaluation: int) -> int:
        """The most pairs (up to the useful number) that fit beside an evaluation of this size."""
        left = budget - fixed - evaluation - estimator.buffers(height, width, -1)  # -1: no pairs at all
        return min(useful, int(left // (24 * height * width)) - 1)

    def fit(tile: int | None) -> Fit | None:
        evaluation = estimator.evaluation(strategy if tile is None else "tiled", height, width, tile)
        m = longest(evaluation)
        if m < (min(useful, HISTORY_GOOD) if tile is None else floor):
            return None
        buffers = fixed + estimator.buffers(height, width, m)
        return Fit(m, budget - buffers, tile, buffers + evaluation)

    def room(pairs: int) -> int:
        return budget - fixed - estimator.buffers(height, width, pairs)

    if tile_size is not None:
        candidates = [tile_size]
    else:
        best = estimator.largest_tile(height, width, room(useful))
        candidates = [
            None,
            best if best is not None and best >= TILE_GOOD else None,
            TILE_GOOD,
            estimator.largest_tile(height, width, room(floor)),
        ]
    for i, tile in enumerate(candidates):
        if tile is None and i > 0:
            continue
        chosen = fit(tile)
        if chosen is not None:
            return chosen
    needed = fixed + estimator.buffers(height, width, floor)
    needed += estimator.evaluation("tiled", height, width, tile_size or TILE_MIN)
    raise NSTError(
        f"{width}×{height} needs about {format_bytes(needed / PLAN_SHARE)} of memory, more than the budget of "
        f"{format_bytes(asked)}: give a larger --max-memory or a smaller --size"
    )


FINISH_BYTES = 64  # per pixel of the content, while the result is resized back and converted to 8 bits


def reserved_bytes(content, styles, height: int, width: int) -> int:
    """What a run holds for all its scales: the inputs as loaded and their working copies."""
    held = image_bytes(content.height, content.width, content.alpha is not None)
    if (height, width) != (content.height, content.width):
        held += image_bytes(height, width)  # the photo at the computation size
    held += image_bytes(height, width)  # ... as a tensor, colour handling applied
    return held + sum(2 * image_bytes(s.height, s.width) for s in styles)


def plan_memory(
    scales: list, options, budget: int, reserved: int = 0, content_size: tuple[int, int] | None = None
) -> list:
    """The schedule with each scale's history and evaluation room fitted to ``budget``.

    Raises NSTError, before anything runs, when a scale or the final resize to ``content_size``
    cannot fit.
    """
    estimator = MemoryModel.for_options(options)
    tile_size = aligned_tile(options.tile_size)
    fitted = []
    for scale in reversed(scales):  # the largest first: a refusal names the size the user asked for
        # above the look's size, each step also evaluates the look, whole, at its size (evaluation.look)
        look = estimator.evaluation("fused", *scale.look) if getattr(scale, "look", None) else 0
        fit = fit_scale(
            estimator,
            budget,
            scale.height,
            scale.width,
            reserved=reserved + look,
            history=scale.history,
            steps=scale.steps,
            tile_size=tile_size,
        )
        tile = tile_size or tile_for(estimator, scale.height, scale.width, fit.room, "fused")
        tiles = plan_tiles(scale.height, scale.width, tile, estimator.halo) if tile else []
        cost = TILED_PASSES * sum(t.pixels for t in tiles) / scale.pixels if tiles else 1.0
        fitted.insert(0, replace(scale, history=fit.history, memory=fit.room, cost=cost, tiles=len(tiles)))
    if content_size is not None:
        height, width = content_size
        needed = BASE_BYTES + reserved + height * width * FINISH_BYTES
        if needed > budget:
            raise NSTError(
                f"the {width}×{height} result needs about {format_bytes(needed)} of memory, more than the "
                f"budget of {format_bytes(budget)}: give a larger --max-memory"
            )
    return fitted


RELEASE_MARGIN = 3  # whole-image evaluations a room holds before the arena's chunks must go back


def needs_release(scales: list, estimator: MemoryModel) -> bool:
    """Whether the arena's free chunks must go back to the system between phases and scales.

    What the arena keeps is what earlier evaluations grew it to: at most the last scale's
    (a quarter of this one's), the detail pass's and this scale's own, under three of this
    scale's whole evaluations. Where every room holds that, releasing only makes the next
    evaluation fault its buffers in afresh, slower and no lower in peak memory
    (docs/benchmarks.md §8).
    """
    return any(
        s.memory is not None
        and (s.tiles or s.memory < RELEASE_MARGIN * estimator.evaluation("fused", s.height, s.width))
        for s in scales
    )


def describe(scales: list, budget: int) -> str | None:
    """One line for the user when the plan tiles a scale (None when everything runs whole)."""
    tiled = [s for i, s in enumerate(scales) if s.tiles and (s.steps or i == len(scales) - 1)]  # 0 steps: skipped
    if not tiled:
        return None
    parts = [f"{s.width}×{s.height} in {s.tiles} exact tiles (L-BFGS history {s.history})" for s in reversed(tiled)]
    return f"memory budget {format_bytes(budget)}: " + ", ".join(parts)


def aligned_tile(tile_size: int | None) -> int | None:
    """A requested tile size rounded down to the pool grids' alignment."""
    return None if tile_size is None else max(ALIGN, tile_size - tile_size % ALIGN)


def budget_device(device: str) -> str:
    """Whose memory the budget is: the GPU's where the run will use CUDA, else the host's (OpenVINO's
    CPU device included)."""
    if device == "cpu" or device.startswith("openvino"):
        return "cpu"
    from ..vgg.sessions import cuda_usable

    return "cuda" if cuda_usable() else "cpu"


def plan_run(
    options, content, styles, device: str = "cpu", above: int | None = None
) -> tuple[list, str | None, str | None]:
    """A run's schedule fitted to its budget: (scales, a note on the budget, the plan for the user);
    ``above``: only the scales larger than an image of that longest side being continued.

    Everything here is arithmetic on sizes, so a run that cannot fit is refused (NSTError)
    before any session is opened or any image-sized buffer allocated.
    """
    budget, note = resolve_budget(options.max_memory, device)
    height, width = compute_size(content.height, content.width, options.size)
    reserved = reserved_bytes(content, styles, height, width)
    scales = plan_memory(
        plan_scales(options, height, width, above), options, budget, reserved, (content.height, content.width)
    )
    return scales, note, describe(scales, budget)


def image_bytes(height: int, width: int, alpha: bool = False) -> int:
    """An input held as float32 RGB (and its 8-bit alpha)."""
    return height * width * (12 + (1 if alpha else 0))


def tile_for(estimator: MemoryModel, height: int, width: int, room: int | None, strategy: str) -> int | None:
    """None when the whole image's evaluation fits ``room`` (or there is no room limit), else the tile."""
    if room is None or estimator.evaluation(strategy, height, width) <= room:
        return None
    return estimator.largest_tile(height, width, room) or TILE_MIN
