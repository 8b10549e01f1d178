"""``stylize()``: the one engine every front end drives.

It loads and checks the inputs, plans the coarse-to-fine scales, and at each scale optimises the
image (starting from the upsampled result of the scale before) against content and style
targets computed at that scale. It reports through ``progress`` callbacks and stops when
``cancel`` is set; the CLI, the worker and the GIMP plug-in only present what it reports.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from nst_export import DEFAULT_LAYERS

from ..events import Note, Status
from ..imaging import color
from ..imaging.images import ImageData, load_image, to_pil
from ..imaging.tensors import resize, to_array, to_tensor
from ..objective import regions
from ..objective.terms import PixelTerm
from ..options import Options, keyword_docs, keyword_parameters, make_options
from ..planning import memory
from ..planning.schedule import Scale
from ..vgg.devices import precisions
from ..vgg.features import VGG, get_vgg
from ..vgg.graphs import DETAIL_LAYERS
from . import timing
from .coarse_to_fine import CoarseToFine, Controls, ProgressCallback


@dataclass(frozen=True)
class StylizeResult:
    image: Image.Image
    loss: float  # the objective of the returned image at the last scale it reached
    parts: dict[str, float]
    seconds: float
    device: str  # the device the run used; "openvino-bf16+cpu": bf16 on OpenVINO and fp32 on MLAS
    scales: list[Scale]
    finished_early: bool = False  # a front end asked for the best image so far
    evaluations: int = 0  # objective evaluations (forward + gradient) over all scales
    work: np.ndarray | None = None  # the optimised RGB at the last scale's size, before it was finished:
    # what a larger run continues (``continue_from``)


def stylize(
    content: object,
    styles: object | Sequence[object],
    *,
    masks: Sequence[object | None] | None = None,
    style_masks: Sequence[object | None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the style of ``styles``; returns a PIL image the size of ``content``.

    ``content`` and each style may be a path, a PIL image or a numpy array. ``masks`` (one per
    style, in the content's size; a path, PIL image or array, greyscale 0–1 or 0–255, soft edges
    allowed, None for the whole image) paint each style only in its region, with guided Gram
    matrices; where no mask reaches the result is the photo. ``style_masks`` (one per style, None
    for all of it) take a style's statistics from part of its painting. ``progress`` receives
    Status, Note and Progress events; setting ``cancel`` raises ``Cancelled`` within about a
    second. Raises ``NSTError`` with a one-line message for bad input.

    The options (the keywords of ``nst_runtime.options.Options``, the same as the ``nst`` flags
    and the worker's keys; ``size=None`` or 0 is the content's own size, ``max_memory`` takes
    "8G", "1500M" or bytes):
    """
    return run(
        content, styles, make_options(**options), masks=masks, style_masks=style_masks, progress=progress,
        cancel=cancel,
    ).image  # fmt: skip


stylize.__doc__ = f"{stylize.__doc__}\n{keyword_docs()}\n"
stylize.__signature__ = inspect.signature(stylize).replace(  # type: ignore[attr-defined]
    parameters=[p for p in inspect.signature(stylize).parameters.values() if p.kind != p.VAR_KEYWORD]
    + keyword_parameters()
)


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
    if options.continue_from is not None:  # the start image, and only the scales above its size run
        init_img = load_image(options.continue_from, "image to continue")
    for img in (content_img, *style_imgs, *([init_img] if init_img else [])):
        for note in img.notes:
            emit(Note(note))
    guides = regions.prepare(masks, style_masks, content_img, style_imgs, lambda m: emit(Note(m)), options.style_blend)

    device = memory.budget_device(options.device)
    above = max(init_img.height, init_img.width) if options.continue_from is not None and init_img else None
    scales = _planned(options, content_img, style_imgs, device, emit, above)  # a refusal comes before any work
    emit(Status("loading the VGG graphs"))
    exact, fast = precisions(options.device)

    def vgg_on(on: str, layers: tuple[str, ...] = DEFAULT_LAYERS, folder: str | None = graphs_dir) -> VGG:
        return get_vgg(options.weights, options.pooling, layers, on, folder, log=lambda m: emit(Status(m)))

    vgg = vgg_on(exact)
    if memory.budget_device(vgg.device) != device:  # CUDA looked usable but onnxruntime could not use it
        scales = _planned(options, content_img, style_imgs, memory.budget_device(vgg.device), emit, above)
    controls = Controls(finish, preview_interval)
    job = CoarseToFine(vgg, options, content_img, style_imgs, init_img, emit, controls, pixel_terms, scales, guides)
    detail = graphs_dir is None and options.optimizer == "lbfgs" and any(s.detail_steps for s in job.scales)
    if fast is not None and (detail or any(s.fast_steps for s in job.scales)):
        job.use_fast(vgg_on(fast), vgg_on(fast, DETAIL_LAYERS, None) if detail else None)
    elif detail:
        job.detail_vgg = vgg_on(exact, DETAIL_LAYERS, None)
    if (speed := timing.stored_speed(options)) is not None:  # the progress in time, not pixels
        job.weigh([s.seconds for s in timing.price_scales(job.scales, options, len(style_imgs), speed, detail)])
    models = [m for m in (vgg, job.fast_vgg, job.detail_vgg, job.fast_detail_vgg) if m is not None]
    with contextlib.ExitStack() as stack:
        for model in models:
            stack.enter_context(model.cancellable(cancel))
        rgb, loss, parts = job.optimise()
    image = _finish(rgb, content_img, options, guides)
    used = "+".join(dict.fromkeys(m.device for m in (job.fast_vgg, vgg) if m is not None))
    seconds = time.perf_counter() - started
    return StylizeResult(image, loss, parts, seconds, used, job.scales, controls.finishing, job.evaluations, rgb)


def _planned(
    options: Options,
    content: ImageData,
    styles: list[ImageData],
    device: str,
    emit: ProgressCallback,
    above: int | None = None,
) -> list[Scale]:
    """The schedule with each scale's history and evaluation room fitted to the memory budget
    (only the scales whose longest side exceeds ``above``, when continuing an image that size)."""
    scales, note, plan = memory.plan_run(options, content, styles, device, above)
    if note:
        emit(Note(note))
    if plan:
        emit(Status(plan))
    return scales


def _finish(rgb: np.ndarray, content: ImageData, options: Options, guides: regions.Regions | None) -> Image.Image:
    """Back to the content's size, colour preservation applied, the photo kept outside the
    regions, alpha passed through."""
    full = to_array(resize(to_tensor(rgb, torch.device("cpu")), content.height, content.width))
    if options.preserve_color == "luminance":
        full = color.recombine_luminance(full, content.rgb)
    full = regions.keep_photo(full, content.rgb, guides.coverage if guides is not None else None)
    return to_pil(full, content.alpha)
