"""``stylize()``: the one engine every front end drives.

It loads and checks the inputs, plans the coarse-to-fine scales, and at each scale optimises the
image (starting from the upsampled result of the scale before) against content and style
targets computed at that scale. It reports through ``progress`` callbacks and stops when
``cancel`` is set; the CLI, the worker and the GIMP plug-in only present what it reports.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from nst_export import DEFAULT_LAYERS
from nst_export.architecture import output_shape

from . import color
from .events import Event, Note, Progress, Status
from .features import VGG, get_vgg
from .images import ImageData, load_image, to_pil
from .losses import CONTENT_LAYER, STYLE_LAYERS, ContentLoss, StyleLoss, StyleObjective, TVLoss, gram
from .optim import LBFGS, Adam
from .options import DEFAULT_SIZE, Options, compute_size, make_options, plan_scales

ADAM_LR = 0.02
LBFGS_HISTORY = 100
LINE_SEARCH_STEPS = 5  # per scale, see _optimise_scale
BLOWUP_FACTOR = 4.0
STYLE_SIZE_TOLERANCE = 0.02
TV_SCALE = 1e6  # makes --tv-weight 1 a visible but gentle smoothing next to the default content/style balance

ProgressCallback = Callable[[Event], None]


@dataclass(frozen=True)
class StylizeResult:
    image: Image.Image
    loss: float  # the objective at the last step of the finest scale
    parts: dict[str, float]
    seconds: float
    device: str
    scales: list[tuple[int, int, int]]


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
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Image.Image:
    """Paint ``content`` in the style of ``styles``; returns a PIL image the size of ``content``.

    ``content`` and each style may be a path, a PIL image or a numpy array. ``style_weights`` blends
    several styles; ``strength`` (0–1) is the style weight in user terms and overrides
    ``style_weight``. ``size`` caps the longest side of the computation (None: the content's own
    size); the result is scaled back. ``progress`` receives Status, Note and Progress events;
    setting ``cancel`` raises ``Cancelled`` within about a second. Raises ``NSTError`` with a
    one-line message for bad input.
    """
    options = make_options(
        size=size, quality=quality, steps=steps, strength=strength, style_weight=style_weight,
        content_weight=content_weight, tv_weight=tv_weight, style_blend=style_weights, style_scale=style_scale,
        preserve_color=preserve_color, init=init, init_image=init_image, optimizer=optimizer, seed=seed,
        device=device, weights=weights, pooling=pooling,
    )  # fmt: skip
    return run(content, styles, options, progress=progress, cancel=cancel).image


def run(
    content: object,
    styles: object | Sequence[object],
    options: Options,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    graphs_dir: str | None = None,
) -> StylizeResult:
    """The engine behind ``stylize()``, returning the objective and timings as well."""
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

    emit(Status("loading the VGG graphs"))
    vgg = get_vgg(
        options.weights, options.pooling, DEFAULT_LAYERS, options.device, graphs_dir, log=lambda m: emit(Status(m))
    )
    job = _Job(vgg, options, content_img, style_imgs, init_img, emit, cancel)
    with vgg.cancellable(cancel):
        rgb, loss, parts = job.optimise()
    image = _finish(rgb, content_img, options)
    return StylizeResult(image, loss, parts, time.perf_counter() - started, vgg.device, job.scales)


def _to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(device, torch.float32)


def _to_array(image: torch.Tensor) -> np.ndarray:
    return image.detach()[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32)


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic with antialiasing, so downscaling does not alias and upscaling stays smooth."""
    if image.shape[2:] == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def _style_size(style: torch.Tensor, height: int, width: int, scale: float) -> tuple[int, int]:
    """The style's size at one scale: its own aspect ratio, with ``scale``² times the output's area.

    A style already within 2 % of that size is used as it is: resampling by a hair still low-pass
    filters every pixel (bicubic at 0.998× shifted the relu4_1 Gram by 11 %), while a Gram matrix,
    averaged over positions, does not care about a few rows more or less.
    """
    sh, sw = style.shape[2], style.shape[3]
    factor = scale * math.sqrt(height * width / (sh * sw))
    if abs(factor - 1.0) <= STYLE_SIZE_TOLERANCE:
        return sh, sw
    return max(16, round(sh * factor)), max(16, round(sw * factor))


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
        cancel: threading.Event | None,
    ):
        self.vgg = vgg
        self.options = options
        self.emit = emit
        self.cancel = cancel
        self.device = vgg.torch_device
        height, width = compute_size(content.height, content.width, options.size)
        self.scales = plan_scales(options, height, width)
        content_small = resize(_to_tensor(content.rgb, torch.device("cpu")), height, width)
        content_rgb = _to_array(content_small)
        style_rgbs = [s.rgb for s in styles]
        if options.preserve_color == "luminance":
            style_rgbs = [color.match_luminance(s, content_rgb) for s in style_rgbs]
            content_rgb = color.luminance_image(content_rgb)
        elif options.preserve_color == "histogram":
            style_rgbs = [color.match_histogram(s, content_rgb) for s in style_rgbs]
        self.content = _to_tensor(content_rgb, self.device)
        self.styles = [_to_tensor(s, self.device) for s in style_rgbs]
        self.blend = options.blend(len(styles))
        self.init = _to_tensor(init.rgb, self.device) if init is not None else None
        self.work_total = sum(h * w * s for h, w, s in self.scales) or 1
        self.work_done = 0
        self.opt_started: float | None = None
        self.last_loss = math.nan

    def optimise(self) -> tuple[np.ndarray, float, dict[str, float]]:
        x = objective = None
        for index, (height, width, steps) in enumerate(self.scales):
            self.vgg.check_cancel()
            x = self._start_image(x, height, width)
            objective = self._objective(height, width)
            x = self._optimise_scale(x, objective, index, steps)
        assert x is not None and objective is not None
        with torch.no_grad():  # the objective of the image actually returned, not of the last step's start
            values = objective(x, self.vgg.features(x, objective.layers) if objective.layers else {})
        parts = {k: float(v) for k, v in values.items()}
        return _to_array(x), parts["total"], parts

    def _start_image(self, previous: torch.Tensor | None, height: int, width: int) -> torch.Tensor:
        if previous is not None:
            return resize(previous, height, width)
        if self.init is not None:
            return resize(self.init, height, width)
        if self.options.init == "noise":
            gen = torch.Generator().manual_seed(self.options.seed)
            return torch.rand((1, 3, height, width), generator=gen).to(self.device)
        return resize(self.content, height, width)

    @torch.no_grad()
    def _objective(self, height: int, width: int) -> StyleObjective:
        opts = self.options
        content_loss = None
        if opts.content_weight > 0:
            target = self.vgg.features(resize(self.content, height, width), (CONTENT_LAYER,))[CONTENT_LAYER]
            content_loss = ContentLoss(target.clone(), opts.content_weight)
        grams: dict[str, torch.Tensor] = {}
        if opts.style_weight > 0:
            for style, share in zip(self.styles, self.blend, strict=True):
                if share == 0:
                    continue
                sized = resize(style, *_style_size(style, height, width, opts.style_scale))
                feats = self.vgg.features(sized, STYLE_LAYERS)
                for layer in STYLE_LAYERS:
                    g = gram(feats[layer]) * share
                    grams[layer] = grams[layer] + g if layer in grams else g
        styles = {layer: StyleLoss(g, opts.style_weight) for layer, g in grams.items()}
        tv = TVLoss(opts.tv_weight * TV_SCALE) if opts.tv_weight > 0 else None
        return StyleObjective(content_loss, styles, tv)

    def _optimiser(self) -> LBFGS | Adam:
        return Adam(ADAM_LR) if self.options.optimizer == "adam" else LBFGS(LBFGS_HISTORY, bounds=(0.0, 1.0))

    def _evaluator(self, objective: StyleObjective, height: int, width: int, parts: dict[str, float]):
        """x → (objective, d objective / d x): the fused graph when it applies, else vgg_features + autograd."""
        layers = objective.layers
        fused = self._fused_targets(objective, height, width)

        def evaluate(x: torch.Tensor) -> tuple[float, torch.Tensor]:
            self.vgg.check_cancel()
            if fused is not None:  # one onnxruntime run: the same loss and gradient, faster
                values, grad = self.vgg.loss_and_grad(x, fused)
                values["tv"] = 0.0
                if objective.tv is not None:
                    xt = x.detach().requires_grad_(True)
                    tv = objective.tv(xt)
                    tv.backward()
                    grad = grad + xt.grad
                    values["tv"] = float(tv.detach())
                    values["total"] += values["tv"]
            else:
                xt = x.detach().requires_grad_(True)
                tensors = objective(xt, self.vgg.features(xt, layers) if layers else {})
                tensors["total"].backward()
                values, grad = {k: float(v.detach()) for k, v in tensors.items()}, xt.grad
            parts.clear()
            parts.update(values)
            return values["total"], grad

        return evaluate

    def _optimise_scale(self, x: torch.Tensor, objective: StyleObjective, index: int, steps: int) -> torch.Tensor:
        """L-BFGS (or Adam) for ``steps`` steps, one function evaluation per step after a warm-up.

        Each scale starts from an upsampled, blurred image whose curvature the first L-BFGS pairs
        misjudge, so the first steps backtrack until the objective decreases; plain unit steps
        (one evaluation each, as in pastiche) take over after that. A step that still blows the
        objective up is undone and the optimiser restarted.
        """
        x = x.detach().clone()
        if steps == 0 or (not objective.layers and objective.tv is None):
            self._skip(index, steps, x)
            return x
        height, width = x.shape[2], x.shape[3]
        parts: dict[str, float] = {}
        evaluate = self._evaluator(objective, height, width, parts)
        if self.opt_started is None:
            self.opt_started = time.perf_counter()
        opt, warmup_left = self._optimiser(), LINE_SEARCH_STEPS
        loss, grad = evaluate(x)
        best_loss, best_x = math.inf, x.clone()
        for step in range(1, steps + 1):
            if not math.isfinite(loss) or loss > BLOWUP_FACTOR * best_loss:
                x.copy_(best_x)
                opt, warmup_left = self._optimiser(), LINE_SEARCH_STEPS
                loss, grad = evaluate(x)
            elif loss < best_loss:
                best_loss = loss
                best_x.copy_(x)
            self.last_loss = loss
            self.work_done += height * width
            self._report(index, step, steps, loss, height, width)
            if isinstance(opt, Adam):
                opt.step(x, grad)
                x.clamp_(0, 1)
            elif warmup_left > 0:
                warmup_left -= 1
                loss, grad = opt.step(x, loss, grad, evaluate)
                continue
            else:
                opt.step(x, loss, grad)
            if step < steps:  # the last update's result is scored once, by the caller
                loss, grad = evaluate(x)
        return x.clamp(0, 1)

    def _fused_targets(self, objective: StyleObjective, height: int, width: int) -> dict[str, torch.Tensor] | None:
        """The fused graph's inputs for this objective, or None when its built-in loss differs."""
        content_layer, style_layers = self.vgg.graphs.loss_layers
        if not self.options.fused or content_layer != CONTENT_LAYER or set(style_layers) != set(STYLE_LAYERS):
            return None
        zeros = torch.zeros((), device=self.device)
        targets: dict[str, torch.Tensor] = {}
        if objective.content is not None:
            targets["content_target"], content_weight = objective.content.target, objective.content.weight
        else:
            shape = output_shape(self.vgg.graphs.plan, CONTENT_LAYER, height, width)
            targets["content_target"], content_weight = torch.zeros(shape, device=self.device), 0.0
        weights = []
        for layer in style_layers:
            loss = objective.styles[layer] if layer in objective.styles else None  # noqa: SIM401 (ModuleDict)
            channels = output_shape(self.vgg.graphs.plan, layer, height, width)[1]
            targets[f"gram_{layer}"] = loss.target if loss is not None else torch.zeros((channels, channels))
            weights.append(loss.weight if loss is not None else 0.0)
        targets["content_weight"] = zeros + content_weight
        targets["style_weights"] = torch.tensor(weights, dtype=torch.float32, device=self.device)
        return targets

    def _skip(self, index: int, steps: int, x: torch.Tensor) -> None:
        """Count steps that will not run as done, so the progress still reaches the scale's end."""
        self.work_done += x.shape[2] * x.shape[3] * steps
        total = self.scales[index][2]
        self._report(index, total, total, self.last_loss, x.shape[2], x.shape[3])

    def _report(self, index: int, step: int, steps: int, loss: float, height: int, width: int) -> None:
        elapsed = time.perf_counter() - (self.opt_started or time.perf_counter())
        fraction = min(1.0, self.work_done / self.work_total)
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else math.nan
        self.emit(Progress(index + 1, len(self.scales), step, steps, loss, fraction, eta, elapsed, height, width))


def _finish(rgb: np.ndarray, content: ImageData, options: Options) -> Image.Image:
    """Back to the content's size, colour preservation applied, alpha passed through."""
    full = _to_array(resize(_to_tensor(rgb, torch.device("cpu")), content.height, content.width))
    if options.preserve_color == "luminance":
        full = color.recombine_luminance(full, content.rgb)
    return to_pil(full, content.alpha)
