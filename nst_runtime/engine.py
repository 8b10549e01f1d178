"""``stylize()``: the one engine every front end drives.

It loads and checks the inputs, plans the coarse-to-fine scales, and at each scale optimises the
image (starting from the upsampled result of the scale before) against content and style
targets computed at that scale. It reports through ``progress`` callbacks and stops when
``cancel`` is set; the CLI, the worker and the GIMP plug-in only present what it reports.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from nst_export import DEFAULT_LAYERS

from . import color, memory, regions
from .evaluate import Evaluator, FusedEvaluator, Remembering, choose_evaluator, restricted_total
from .events import Event, Note, Preview, Progress, Status
from .features import VGG, get_vgg
from .graphs import DETAIL_LAYERS
from .images import ImageData, load_image, to_pil
from .objective import Objective, ObjectiveBuilder, PixelTerm, resize
from .optim import Adam, ProjectedLBFGS, minimize
from .options import DEFAULT_SIZE, Options, compute_size, make_options
from .schedule import Scale, plan_scales
from .tiled import Extractor

ADAM_LR = 0.02
LBFGS_HISTORY = 100

DETAIL_COST = 0.35  # of a full evaluation, measured at 512×384

ProgressCallback = Callable[[Event], None]


@dataclass(frozen=True)
class StylizeResult:
    image: Image.Image
    loss: float  # the objective of the returned image at the last scale it reached
    parts: dict[str, float]
    seconds: float
    device: str
    scales: list[Scale]
    finished_early: bool = False  # a front end asked for the best image so far
    evaluations: int = 0  # objective evaluations (forward + gradient) over all scales


def stylize(
    content: object,
    styles: object | Sequence[object],
    *,
    style_weights: Sequence[float] | None = None,
    size: int | None = DEFAULT_SIZE,
    quality: str = "normal",
    steps: int | Sequence[int] | None = None,
    strength: float | None = None,
    style_weight: float = 1.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    style_scale: float = 1.0,
    preserve_color: str = "none",
    init: str = "content",
    init_image: object | None = None,
    optimizer: str = "lbfgs",
    seed: int = 0,
    device: str = "auto",
    weights: str = "vgg19",
    pooling: str = "max",
    max_memory: int | str | None = None,
    tile_size: int | None = None,
    masks: Sequence[object | None] | None = None,
    style_masks: Sequence[object | None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Image.Image:
    """Paint ``content`` in the style of ``styles``; returns a PIL image the size of ``content``.

    ``content`` and each style may be a path, a PIL image or a numpy array. ``style_weights`` blends
    several styles; ``strength`` (0–1) is the style weight in user terms and overrides
    ``style_weight``. ``size`` caps the longest side of the computation (None: the content's own
    size); the result is scaled back. ``max_memory`` ("8G", "1500M" or bytes; default: a safe
    share of the memory available) bounds the whole run: large images are then evaluated in
    exact tiles, and a run that cannot fit is refused before it starts; ``tile_size`` forces
    tiles of that size. ``masks`` (one per style, in the content's size; a path, PIL
    image or array, greyscale 0–1 or 0–255, soft edges allowed, None for the whole image) paint
    each style only in its region, with guided Gram matrices; where no mask reaches the result
    is the photo. ``style_masks`` (one per style, None for all of it) take a style's statistics
    from part of its painting. ``progress`` receives Status, Note and Progress events;
    setting ``cancel`` raises ``Cancelled`` within about a second. Raises ``NSTError`` with a
    one-line message for bad input.
    """
    options = make_options(
        size=size, quality=quality, steps=steps, strength=strength, style_weight=style_weight,
        content_weight=content_weight, tv_weight=tv_weight, style_blend=style_weights, style_scale=style_scale,
        preserve_color=preserve_color, init=init, init_image=init_image, optimizer=optimizer, seed=seed,
        device=device, weights=weights, pooling=pooling, max_memory=max_memory, tile_size=tile_size,
    )  # fmt: skip
    return run(content, styles, options, masks=masks, style_masks=style_masks, progress=progress, cancel=cancel).image


def run(
    content: object,
    styles: object | Sequence[object],
    options: Options,
    *,
    masks: Sequence[object | None] | None = None,
    style_masks: Sequence[object | None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    finish: threading.Event | None = None,
    preview_interval: float | None = None,
    pixel_terms: Sequence[PixelTerm] = (),
    graphs_dir: str | None = None,
) -> StylizeResult:
    """The engine behind ``stylize()``, returning the objective and timings as well.

    ``finish``, once set, ends the run within one evaluation with the best image so far, finished
    like any result. ``preview_interval`` (seconds) asks for ``Preview`` events at most that often.
    ``pixel_terms`` are extra differentiable losses on the image (a temporal term, …), added at
    every scale. ``masks`` and ``style_masks``: see ``stylize()`` and nst_runtime.regions.
    """
    started = time.perf_counter()
    emit = progress or (lambda _e: None)
    style_list = list(styles) if isinstance(styles, list | tuple) else [styles]
    options.validate(len(style_list))

    content_img = load_image(content, "content")
    style_imgs = [load_image(s, "style") for s in style_list]
    init_img = load_image(options.init_image, "init image") if options.init_image is not None else None
    for img in (content_img, *style_imgs, *([init_img] if init_img else [])):
        for note in img.notes:
            emit(Note(note))
    guides = regions.prepare(masks, style_masks, content_img, style_imgs, lambda m: emit(Note(m)), options.style_blend)

    device = memory.budget_device(options.device)
    scales = _planned(options, content_img, style_imgs, device, emit)  # a refusal comes before any work
    emit(Status("loading the VGG graphs"))
    vgg = get_vgg(
        options.weights, options.pooling, DEFAULT_LAYERS, options.device, graphs_dir, log=lambda m: emit(Status(m))
    )
    if vgg.device != device:  # CUDA looked usable but onnxruntime could not use it: the host's memory counts
        scales = _planned(options, content_img, style_imgs, vgg.device, emit)
    controls = _Controls(finish, preview_interval)
    job = _Job(vgg, options, content_img, style_imgs, init_img, emit, controls, pixel_terms, scales, guides)
    if graphs_dir is None and options.optimizer == "lbfgs" and any(s.detail_steps for s in job.scales):
        job.detail_vgg = get_vgg(
            options.weights, options.pooling, DETAIL_LAYERS, options.device, log=lambda m: emit(Status(m))
        )
    with contextlib.ExitStack() as stack:
        for model in (vgg, job.detail_vgg):
            if model is not None:
                stack.enter_context(model.cancellable(cancel))
        rgb, loss, parts = job.optimise()
    image = _finish(rgb, content_img, options, guides)
    return StylizeResult(
        image, loss, parts, time.perf_counter() - started, vgg.device, job.scales, controls.finishing, job.evaluations
    )


def _planned(
    options: Options, content: ImageData, styles: list[ImageData], device: str, emit: ProgressCallback
) -> list[Scale]:
    """The schedule with each scale's history and evaluation room fitted to the memory budget."""
    scales, note, plan = memory.plan_run(options, content, styles, device)
    if note:
        emit(Note(note))
    if plan:
        emit(Status(plan))
    return scales


def _to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(device, torch.float32)


def _to_array(image: torch.Tensor) -> np.ndarray:
    return image.detach()[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32)


class _Job:
    """One run's state: the prepared inputs, the scale plan and the progress bookkeeping."""

    def __init__(
        self,
        vgg: VGG,
        options: Options,
        content: ImageData,
        styles: list[ImageData],
        init: ImageData | None,
        emit: ProgressCallback,
        controls: _Controls,
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
        self.release = memory.needs_release(self.scales, memory.Estimator.for_graphs(vgg.graphs))
        if (height, width) == (content.height, content.width):
            self.content_rgb = content.rgb  # the photo at the computation size, before colour handling
        else:
            self.content_rgb = _to_array(resize(_to_tensor(content.rgb, torch.device("cpu")), height, width))
        content_rgb = self.content_rgb
        style_rgbs = [s.rgb for s in styles]
        if options.preserve_color == "luminance":
            style_rgbs = [color.match_luminance(s, content_rgb) for s in style_rgbs]
            content_rgb = color.luminance_image(content_rgb)
        elif options.preserve_color == "histogram":
            style_rgbs = [color.match_histogram(s, content_rgb) for s in style_rgbs]
        self.content = _to_tensor(content_rgb, self.device)
        self.builder = ObjectiveBuilder(
            vgg,
            options,
            self.content,
            [_to_tensor(s, self.device) for s in style_rgbs],
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
        self.init = _to_tensor(init.rgb, self.device) if init is not None else None
        self.work_total = sum(s.work * (s.steps + DETAIL_COST * s.detail_steps) for s in self.scales) or 1
        self.work_done = 0
        self.evaluations = 0
        self.detail_vgg: VGG | None = None  # the graphs cut after relu3_1, when the schedule has detail passes
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
            objective = self.builder.at(scale.height, scale.width)
            x, parts = self._optimise_scale(x, objective, index)
        assert x is not None
        return _to_array(x), parts.get("total", math.nan), parts

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

    def _counted(self, evaluator: Evaluator) -> Evaluator:
        def evaluate(x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
            self.evaluations += 1
            return evaluator(x)

        return evaluate

    def _optimise_scale(
        self, x: torch.Tensor, objective: Objective, index: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The scale's optimiser from ``x``; returns its best iterate and that iterate's parts."""
        scale = self.scales[index]
        x = x.detach().clone()
        if objective.empty:
            self._skip(index, scale.steps + DETAIL_COST * scale.detail_steps, x)
            return x, {}
        chosen = choose_evaluator(self.vgg, objective, self.options, scale)
        evaluate = Remembering(self._counted(chosen))
        if scale.steps == 0:
            parts: dict[str, float] = {}
            if index == len(self.scales) - 1:
                parts = evaluate(x)[0]  # nothing to optimise, but the result's objective is still reported
            self._skip(index, scale.steps, x)
            return x, parts
        if self.opt_started is None:
            self.opt_started = time.perf_counter()
        # The detail pass's last step through the full graph, whose per-layer parts say the shallow
        # objective too, where a tight memory plan does not forbid holding both graphs' buffers.
        reuse = isinstance(chosen, FusedEvaluator) and not self.release
        x, detail_done = self._detail_pass(x, objective, index, evaluate if reuse else None)
        done_before = self.work_done
        total = scale.detail_steps + scale.steps

        def on_step(step: int, loss: float, best: torch.Tensor) -> bool:
            self.last_loss = loss
            self.work_done = done_before + scale.work * step
            self._report(index, detail_done + step, total, loss, scale.height, scale.width)
            self._maybe_preview(best, index, detail_done + step, total)
            return not self.controls.finishing

        result = minimize(evaluate, x, self._optimiser(scale), scale.steps, tolerance=scale.tolerance, on_step=on_step)
        if result.steps < scale.steps:  # stopped early: the rest of the scale's work is done
            self._skip(index, scale.steps - result.steps, x, report=False)
        if result.gamma is not None:
            self.gamma, self.gamma_pixels = result.gamma, scale.pixels
        return result.x, result.parts

    def _detail_pass(
        self, x: torch.Tensor, objective: Objective, index: int, full: Remembering | None = None
    ) -> tuple[torch.Tensor, int]:
        """The scale's opening steps on the shallow style layers alone, through a graph cut after
        relu3_1 (about 0.35 of a full evaluation).

        An upsampled image lacks the fine detail the deep layers' statistics hinge on: blurring
        the painting itself by 2× raises its own relu4_1 style loss from 0 to ~3·10⁶. The full
        objective then spends most of a scale's steps re-growing that detail at full price; the
        shallow layers grow it for a third of the price, and the full objective starts ~10×
        lower (measured on the standard job: docs/benchmarks.md).
        """
        scale = self.scales[index]
        detail = objective.restricted(DETAIL_LAYERS)
        vgg = self.detail_vgg if scale.detail_steps and detail.styles else None
        if vgg is None:  # Adam, or a graph folder of the user's own (it holds only the full set)
            self.work_done += scale.work * DETAIL_COST * scale.detail_steps
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
            self.work_done = done_before + scale.work * DETAIL_COST * step
            self._report(index, step, total, math.nan, scale.height, scale.width, phase="detail")
            self._maybe_preview(best, index, step, total)
            return not self.controls.finishing

        result = minimize(evaluate, x, self._optimiser(scale), scale.detail_steps, on_step=on_step)
        self.work_done = done_before + scale.work * DETAIL_COST * scale.detail_steps
        if self.release:  # the detail tiles' free chunks go before the full objective's arrive
            vgg.release_memory()
        return result.x, result.steps

    def _maybe_preview(self, x: torch.Tensor, index: int, step: int, steps: int) -> None:
        interval = self.controls.preview_interval
        if interval is None or time.perf_counter() - self.last_preview < interval:
            return
        self.last_preview = time.perf_counter()
        rgb = _to_array(x)
        photo = resize_array(self.content_rgb, rgb.shape[0], rgb.shape[1])
        if self.options.preserve_color == "luminance":
            rgb = color.recombine_luminance(rgb, photo)
        rgb = regions.keep_photo(rgb, photo, self.coverage)
        self.emit(Preview(rgb, index + 1, len(self.scales), step, steps))

    def _skip(self, index: int, steps: float, x: torch.Tensor, report: bool = True) -> None:
        """Count steps that will not run as done, so the progress still reaches the scale's end."""
        self.work_done += self.scales[index].work * steps
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


@dataclass
class _Controls:
    """What a front end can do to a running job besides cancelling it."""

    finish: threading.Event | None = None
    preview_interval: float | None = None

    @property
    def finishing(self) -> bool:
        return self.finish is not None and self.finish.is_set()


def resize_array(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """An RGB array resized like the engine resizes tensors."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return _to_array(resize(_to_tensor(rgb, torch.device("cpu")), height, width))


def _finish(rgb: np.ndarray, content: ImageData, options: Options, guides: regions.Regions | None) -> Image.Image:
    """Back to the content's size, colour preservation applied, the photo kept outside the
    regions, alpha passed through."""
    full = _to_array(resize(_to_tensor(rgb, torch.device("cpu")), content.height, content.width))
    if options.preserve_color == "luminance":
        full = color.recombine_luminance(full, content.rgb)
    full = regions.keep_photo(full, content.rgb, guides.coverage if guides is not None else None)
    return to_pil(full, content.alpha)
