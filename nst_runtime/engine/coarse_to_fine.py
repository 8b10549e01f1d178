"""The coarse-to-fine optimisation of one run: at each scale of the plan, the targets, the detail
pass on the shallow layers, the full objective, and the progress and previews on the way."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..evaluation.base import Evaluator, Remembering, restricted_total
from ..evaluation.choose import choose_evaluator
from ..evaluation.look import LookEvaluator
from ..evaluation.targets import Extractor
from ..evaluation.whole import FusedEvaluator
from ..events import Event, Preview, Progress
from ..imaging import color
from ..imaging.images import ImageData
from ..imaging.tensors import resize, resize_array, to_array, to_tensor
from ..objective import regions
from ..objective.builder import ObjectiveBuilder
from ..objective.terms import Objective, PixelTerm
from ..options import Options, compute_size
from ..planning import memory
from ..planning.schedule import DETAIL_COST, Scale, plan_scales
from ..vgg.features import VGG
from ..vgg.graphs import DETAIL_LAYERS
from .optim import Adam, Minimized, ProjectedLBFGS, minimize

ADAM_LR = 0.02
#: The targets of the lower precision's steps: "fp32" (MLAS's) or "own" (computed by its graphs).
#: On the standard draft job fp32 targets ended 2.4 % lower and 13 % sooner (docs/benchmarks.md 9.2).
FAST_TARGETS = "fp32"

ProgressCallback = Callable[[Event], None]


class CoarseToFine:
    """One run's state: the prepared inputs, the scale plan and the progress bookkeeping."""

    def __init__(
        self,
        vgg: VGG,
        options: Options,
        content: ImageData,
        styles: list[ImageData],
        init: ImageData | None,
        emit: ProgressCallback,
        controls: Controls,
        pixel_terms: Sequence[PixelTerm],
        scales: list[Scale] | None = None,
        guides: regions.Regions | None = None,
    ):
        self.vgg = vgg
        self.options = options
        self.emit = emit
        self.controls = controls
        self.device = vgg.torch_device
        self.content_image = content
        height, width = compute_size(content.height, content.width, options.size)
        self.scales = scales if scales is not None else plan_scales(options, height, width)
        self.release = memory.needs_release(self.scales, memory.MemoryModel.for_graphs(vgg.graphs))
        if (height, width) == (content.height, content.width):
            self.content_rgb = content.rgb  # the photo at the computation size, before colour handling
        else:
            self.content_rgb = to_array(resize(to_tensor(content.rgb, torch.device("cpu")), height, width))
        content_rgb = self.content_rgb
        style_rgbs = [s.rgb for s in styles]
        if options.preserve_color == "luminance":
            style_rgbs = [color.match_luminance(s, content_rgb) for s in style_rgbs]
            content_rgb = color.luminance_image(content_rgb)
        elif options.preserve_color == "histogram":
            style_rgbs = [color.match_histogram(s, content_rgb) for s in style_rgbs]
        self.content = to_tensor(content_rgb, self.device)
        self.builder = ObjectiveBuilder(
            vgg,
            options,
            self.content,
            [to_tensor(s, self.device) for s in style_rgbs],
            options.blend(len(styles)),
            tuple(pixel_terms),
            Extractor(
                vgg,
                (min((s.memory or 0 for s in self.scales), default=0) or None) if self.release else None,
                options.tile_size,
            ),
            guides,
        )
        self.coverage = guides.coverage if guides is not None else None
        self.init = to_tensor(init.rgb, self.device) if init is not None else None
        self.step_work = [s.work for s in self.scales]  # what a step of each scale counts in the progress
        self.work_total = self._total_work()
        self.work_done = 0.0
        self.evaluations = 0
        self.detail_vgg: VGG | None = None  # the graphs cut after relu3_1, when the schedule has detail passes
        # The same graphs in a faster, lower precision (OpenVINO's bf16), where the device has one:
        # the detail passes and each scale's ``fast_steps`` run on them, everything else on ``vgg``.
        self.fast_vgg: VGG | None = None
        self.fast_detail_vgg: VGG | None = None
        self.fast_builder = self.builder  # the targets of the lower precision's steps (``use_fast``)
        self.opt_started: float | None = None
        self.last_loss = math.nan
        self.last_preview = -math.inf
        self.gamma: float | None = None  # L-BFGS's curvature scale at the end of the last scale
        self.gamma_pixels = 0

    def optimise(self) -> tuple[np.ndarray, float, dict[str, float]]:
        x: torch.Tensor | None = None
        parts: dict[str, float] = {}
        for index, scale in enumerate(self.scales):
            self.vgg.check_cancel()
            if self.controls.finishing and x is not None:
                break
            x = self._start_image(x, scale.height, scale.width)
            if scale.steps == 0 and index < len(self.scales) - 1:  # explicit 0 steps: no targets needed either
                self._skip(index, 0, x)
                continue
            x, parts = self._optimise_scale(x, index)
        assert x is not None
        return to_array(x), parts.get("total", math.nan), parts

    def _start_image(self, previous: torch.Tensor | None, height: int, width: int) -> torch.Tensor:
        if previous is not None:
            return resize(previous, height, width)
        if self.init is not None:
            return resize(self.init, height, width)
        if self.options.init == "noise":
            gen = torch.Generator().manual_seed(self.options.seed)
            return torch.rand((1, 3, height, width), generator=gen).to(self.device)
        return resize(self.content, height, width)

    def _optimiser(self, scale: Scale) -> ProjectedLBFGS | Adam:
        if self.options.optimizer == "adam":
            return Adam(ADAM_LR)
        gamma = None
        if self.gamma is not None and self.gamma_pixels:
            # The objective is a mean over positions, so its curvature per pixel falls with the
            # pixel count: the coarser scale's H₀ = γ I, scaled by the ratio, starts this one.
            gamma = self.gamma * scale.pixels / self.gamma_pixels
        return ProjectedLBFGS(scale.history, bounds=(0.0, 1.0), gamma=gamma)

    def _evaluator(self, objective: Objective, scale: Scale, fast: bool = False) -> Evaluator:
        """How the scale's objective is evaluated (in the lower precision where ``fast``); above
        the look's size, plus the look: the preview's objective on the image resized to the
        preview's size (nst_runtime.evaluation.look), in the same precision."""
        vgg, builder = (self.fast_vgg, self.fast_builder) if fast else (self.vgg, self.builder)
        assert vgg is not None
        chosen = choose_evaluator(vgg, objective, self.options, scale)
        if scale.look is None:
            return chosen
        look_objective = dataclasses.replace(builder.at(*scale.look), pixel=())  # pixel terms: counted once
        look_scale = dataclasses.replace(scale, height=scale.look[0], width=scale.look[1], look=None)
        return LookEvaluator(chosen, choose_evaluator(vgg, look_objective, self.options, look_scale), scale.look)

    def _total_work(self) -> float:
        return sum(w * _counted_steps(s) for w, s in zip(self.step_work, self.scales, strict=True)) or 1.0

    def weigh(self, seconds: Sequence[float]) -> None:
        """Count the progress in these prices of the scales (``engine.timing.price_scales``) instead
        of pixels: a scale's share is then its time, its fixed costs and its lower precision's
        faster steps included, and the ETA, the time so far scaled by the share left, holds across
        scales of different speeds. Within a scale its steps count alike (a detail step
        ``DETAIL_COST`` of a full one)."""
        counts = [_counted_steps(s) for s in self.scales]
        if len(seconds) != len(self.scales) or any(t <= 0 for t, n in zip(seconds, counts, strict=True) if n > 0):
            return  # prices for another plan, or none for a scale that runs: pixels, as before
        self.step_work = [t / n if n > 0 else 0.0 for t, n in zip(seconds, counts, strict=True)]
        self.work_total = self._total_work()

    def _counted(self, evaluator: Evaluator) -> Evaluator:
        def evaluate(x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
            self.evaluations += 1
            return evaluator(x)

        return evaluate

    def use_fast(self, vgg: VGG, detail_vgg: VGG | None) -> None:
        """Run the detail passes and each scale's ``fast_steps`` on these graphs in a lower precision,
        against targets computed by them (``FAST_TARGETS``)."""
        self.fast_vgg, self.fast_detail_vgg = vgg, detail_vgg
        if FAST_TARGETS == "own":
            extractor = self.builder.targets
            assert isinstance(extractor, Extractor)
            targets = Extractor(vgg, extractor.room, self.options.tile_size)
            self.fast_builder = dataclasses.replace(self.builder, vgg=vgg, targets=targets, _style_grams={})
        else:
            self.fast_builder = self.builder

    def _objectives(self, index: int) -> tuple[Objective | None, Objective | None]:
        """The scale's objective in fp32 and in the lower precision, each where a step of it runs there."""
        scale = self.scales[index]
        if self.fast_vgg is None:
            return self.builder.at(scale.height, scale.width), None
        fast_steps = scale.fast_steps
        exact = scale.steps > fast_steps or scale.steps == 0
        fast = fast_steps > 0 or (scale.detail_steps > 0 and self.fast_detail_vgg is not None)
        return (
            self.builder.at(scale.height, scale.width) if exact else None,
            self.fast_builder.at(scale.height, scale.width) if fast else None,
        )

    def _optimise_scale(self, x: torch.Tensor, index: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The scale's optimiser from ``x``; returns its best iterate and that iterate's parts."""
        scale = self.scales[index]
        x = x.detach().clone()
        objective, fast_objective = self._objectives(index)
        some = objective if objective is not None else fast_objective
        assert some is not None
        if some.empty:
            self._skip(index, scale.steps + DETAIL_COST * scale.detail_steps, x)
            return x, {}
        if scale.steps == 0:
            parts: dict[str, float] = {}
            if index == len(self.scales) - 1:  # nothing to optimise, but the result's objective is still reported
                parts = self._counted(self._evaluator(objective, scale))(x)[0]
            self._skip(index, scale.steps, x)
            return x, parts
        if self.opt_started is None:
            self.opt_started = time.perf_counter()
        # The full pass in phases: its fast steps in the lower precision, then the rest in fp32.
        phases = []
        fast_steps = scale.fast_steps if self.fast_vgg is not None else 0
        if fast_steps:
            fast = self._evaluator(fast_objective, scale, fast=True)
            phases.append((Remembering(self._counted(fast)), fast, fast_steps))
        if scale.steps > fast_steps:
            chosen = self._evaluator(objective, scale)
            phases.append((Remembering(self._counted(chosen)), chosen, scale.steps - fast_steps))
        # The detail pass's last step through the full graph, whose per-layer parts say the shallow
        # objective too, where a tight memory plan does not forbid holding both graphs' buffers and
        # where that graph runs in the detail pass's precision (another one's values would mislead
        # its line search).
        detail_objective = fast_objective if self.fast_detail_vgg is not None and fast_objective is not None else some
        opening, opening_evaluator, _ = phases[0]
        same_precision = (self.fast_detail_vgg is None) == (not fast_steps)
        reuse = isinstance(opening_evaluator, FusedEvaluator) and not self.release and same_precision
        x, detail_done = self._detail_pass(x, detail_objective, index, opening if reuse else None)
        optimiser = self._optimiser(scale)  # one optimiser across the phases: its curvature pairs carry over
        result, done = None, detail_done
        for phase_evaluate, _, steps in phases:
            if steps:
                result = self._phase(index, phase_evaluate, x, optimiser, steps, done)
                x, done = result.x, done + steps
                if result.reason == "stopped":
                    break
        assert result is not None
        if result.gamma is not None:
            self.gamma, self.gamma_pixels = result.gamma, scale.pixels
        return result.x, result.parts

    def _phase(
        self, index: int, evaluate: Evaluator, x: torch.Tensor, optimiser: ProjectedLBFGS | Adam, steps: int, done: int
    ) -> Minimized:
        """``steps`` steps of the scale's full objective, after ``done`` of its steps (detail ones included)."""
        scale = self.scales[index]
        done_before = self.work_done
        total = scale.detail_steps + scale.steps

        def on_step(step: int, loss: float, best: torch.Tensor) -> bool:
            self.last_loss = loss
            self.work_done = done_before + self.step_work[index] * step
            self._report(index, done + step, total, loss, scale.height, scale.width)
            self._maybe_preview(best, index, done + step, total)
            return not self.controls.finishing

        result = minimize(evaluate, x, optimiser, steps, tolerance=scale.tolerance, on_step=on_step)
        if result.steps < steps:  # stopped early: the rest of the phase's work is done
            self._skip(index, steps - result.steps, x, report=False)
        return result

    def _detail_pass(
        self, x: torch.Tensor, objective: Objective, index: int, full: Remembering | None = None
    ) -> tuple[torch.Tensor, int]:
        """The scale's opening steps on the shallow style layers alone, through a graph cut after
        relu3_1 (about 0.35 of a full evaluation).

        An upsampled image lacks the fine detail the deep layers' statistics hinge on (blurring
        the painting itself raises its own relu4_1 style loss far above 0). The full objective
        then spends most of a scale's steps re-growing that detail at full price; the shallow
        layers grow it for a third of the price, and the full objective starts much lower
        (docs/benchmarks.md §8).
        """
        scale = self.scales[index]
        detail = objective.restricted(DETAIL_LAYERS)
        vgg = (self.fast_detail_vgg or self.detail_vgg) if scale.detail_steps and detail.styles else None
        if vgg is None:  # Adam, or a graph folder of the user's own (it holds only the full set)
            self.work_done += self.step_work[index] * DETAIL_COST * scale.detail_steps
            return x, 0
        # The scale's memory room holds the detail graphs too: tiled (exactly) where the whole
        # image's shallow evaluation does not fit it, like the full objective's.
        shallow = self._counted(choose_evaluator(vgg, detail, self.options, scale))
        done_before = self.work_done
        total = scale.detail_steps + scale.steps
        progress = {"steps": 0, "calls": 0}

        def evaluate(point: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
            """The last step's trials through the full objective (``full``, which keeps the one the
            full pass starts from), the rest through the shallow graphs. That last step's gradient
            is the full objective's: it only ever makes a curvature pair that nothing uses after."""
            progress["calls"] += 1
            if full is not None and progress["calls"] > 1 and progress["steps"] >= scale.detail_steps - 1:
                parts, grad = full.keep(point)
                value = restricted_total(parts, detail)
                if value is not None:
                    return {"total": value}, grad
            return shallow(point)

        def on_step(step: int, loss: float, best: torch.Tensor) -> bool:
            progress["steps"] = step
            self.work_done = done_before + self.step_work[index] * DETAIL_COST * step
            self._report(index, step, total, math.nan, scale.height, scale.width, phase="detail")
            self._maybe_preview(best, index, step, total)
            return not self.controls.finishing

        result = minimize(evaluate, x, self._optimiser(scale), scale.detail_steps, on_step=on_step)
        self.work_done = done_before + self.step_work[index] * DETAIL_COST * scale.detail_steps
        if self.release:  # the detail tiles' free chunks go before the full objective's arrive
            vgg.release_memory()
        return result.x, result.steps

    def _maybe_preview(self, x: torch.Tensor, index: int, step: int, steps: int) -> None:
        interval = self.controls.preview_interval
        if interval is None or time.perf_counter() - self.last_preview < interval:
            return
        self.last_preview = time.perf_counter()
        rgb = to_array(x)
        photo = resize_array(self.content_rgb, rgb.shape[0], rgb.shape[1])
        if self.options.preserve_color == "luminance":
            rgb = color.recombine_luminance(rgb, photo)
        rgb = regions.keep_photo(rgb, photo, self.coverage)
        self.emit(Preview(rgb, index + 1, len(self.scales), step, steps))

    def _skip(self, index: int, steps: float, x: torch.Tensor, report: bool = True) -> None:
        """Count steps that will not run as done, so the progress still reaches the scale's end."""
        self.work_done += self.step_work[index] * steps
        if report:
            total = self.scales[index].steps
            self._report(index, total, total, self.last_loss, x.shape[2], x.shape[3])

    def _report(
        self, index: int, step: int, steps: int, loss: float, height: int, width: int, phase: str = "optimise"
    ) -> None:
        elapsed = time.perf_counter() - (self.opt_started or time.perf_counter())
        fraction = min(1.0, self.work_done / self.work_total)
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else math.nan
        self.emit(
            Progress(index + 1, len(self.scales), step, steps, loss, fraction, eta, elapsed, height, width, phase)
        )


def _counted_steps(scale: Scale) -> float:
    """A scale's steps as the progress counts them: a detail step ``DETAIL_COST`` of a full one."""
    return scale.steps + DETAIL_COST * scale.detail_steps


@dataclass
class Controls:
    """What a front end can do to a running job besides cancelling it."""

    finish: threading.Event | None = None
    preview_interval: float | None = None

    @property
    def finishing(self) -> bool:
        return self.finish is not None and self.finish.is_set()
