"""Regions: a different style in each part of the image (Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", §4), with guided Gram matrices.

Each style gets a mask m in the content's size (soft edges allowed). At every layer its Gram is
taken over the masked features, G = (F ⊙ m)(F ⊙ m)ᵀ / Σ m², and matched to the Gram of its own
painting (or of the part of it a style mask selects). Pixels no mask covers get the content
loss only and the result is the photo there.

How a mask reaches a layer (§4.1 discusses three ways: downsampling, "all neurons that see the
region", "neurons that see only the region"): the mask is resampled to the scale's size with
antialiased bilinear filtering, then averaged over 2 × 2 cells once per pooling, exactly as
VGG's pools tile the image (floor sizes, the same cell alignment). A position's weight is then
the share of its pooling cell the region covers: soft, area-preserving and aligned with the
feature it weighs. The receptive-field variants were not chosen because VGG-19's relu5_1 sees
about 200 px: at the coarse scales (128 px) an eroded ("inside") mask of anything smaller than
the image has nothing left at relu4_1/relu5_1, and a dilated ("all") one covers everything, so
either would drop or blur the deep statistics the regions are for. The same function resamples
the style masks for the targets and the content masks for the image being optimised.

Balance: a region's style weight is multiplied by the mean of m² on each layer's grid (its
area), so every position feels the same style pressure against the content as in a whole-image
run with that style: a region looks as strongly painted as the same part of today's run.
``style_weights`` then scale each region relative to the strongest (equal weights: each region
at the run's full strength). A mask of ones reproduces the unmasked objective exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import NSTError
from .images import ImageData, load_image
from .losses import gram

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as colour.py's YIQ


@dataclass
class Mask:
    """A region: float32 [H, W] weights in [0, 1], a name for messages, notes for the user."""

    values: np.ndarray
    name: str = "mask"
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not bool(self.values.any())

    @property
    def full(self) -> bool:
        return bool((self.values >= 1.0).all())


def load_mask(source: object, role: str = "mask") -> Mask:
    """A path, PIL image or array → a Mask. Greyscale 0–1 or 0–255 (uint8, uint16, float or bool);
    a colour image counts by its luminance, and transparency as 0."""
    if isinstance(source, Mask):
        return source
    name = str(source) if isinstance(source, str | os.PathLike) else role
    if isinstance(source, np.ndarray):
        return Mask(_array_values(source, role), name)
    if isinstance(source, str | os.PathLike | Image.Image | ImageData):
        image = load_image(source, role)
        values = image.rgb @ _LUMA
        if image.alpha is not None:
            values = values * (image.alpha.astype(np.float32) / 255.0)
        return Mask(np.clip(values, 0.0, 1.0).astype(np.float32), name, list(image.notes))
    raise NSTError(f"{role} must be a file path, a PIL image or a numpy array, not {type(source).__name__}")


def _array_values(arr: np.ndarray, role: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        channels = arr.shape[2]
        grey, alpha = (arr[..., :3], arr[..., 3]) if channels == 4 else (arr, None)
        if channels == 2:
            grey, alpha = arr[..., :1], arr[..., 1]
        values = _scaled(grey, role)
        values = values @ _LUMA if values.shape[2] == 3 else values[..., 0]
        if alpha is not None:
            values = values * _scaled(alpha, role)
    elif arr.ndim == 2:
        values = _scaled(arr, role)
    else:
        raise NSTError(f"{role} array must be H×W (greyscale) or H×W×1/2/3/4, got shape {arr.shape}")
    if values.shape[0] < 1 or values.shape[1] < 1:
        raise NSTError(f"{role} array has no pixels: shape {arr.shape}")
    return np.ascontiguousarray(np.clip(values, 0.0, 1.0), dtype=np.float32)


def _scaled(arr: np.ndarray, role: str) -> np.ndarray:
    """0–1 floats as they are, 0–255 (uint8 or floats above 1) and 0–65535 (uint16) to 0–1."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise NSTError(f"{role} array must hold numbers (0–1 or 0–255), not {arr.dtype}")
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise NSTError(f"{role} array contains NaN or infinity")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise NSTError(f"{role} values must lie in 0–1 or 0–255, got {low:g}…{high:g}")
    return (values / 255.0 if high > 1.0 else values).astype(np.float32)


def fit(mask: Mask, height: int, width: int, what: str) -> Mask:
    """The mask in ``height`` × ``width``; one of another size is resized, with a note."""
    h, w = mask.values.shape
    if (h, w) == (height, width):
        return mask
    note = f"{mask.name} is {w}×{h} but {what} is {width}×{height}: resized to fit"
    values = resample(torch.from_numpy(mask.values), height, width).numpy()
    return Mask(values, mask.name, [*mask.notes, note])


def resample(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[H, W] → [height, width]: antialiased bilinear (no aliasing when shrinking, no overshoot)."""
    if tuple(mask.shape) == (height, width):
        return mask
    out = F.interpolate(mask[None, None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].clamp(0.0, 1.0)


def on_layers(mask: torch.Tensor, shapes: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """A mask at the image's size → each layer's grid, by 2 × 2 averages as VGG pools (floor)."""
    out: dict[str, torch.Tensor] = {}
    levels = [mask[None, None]]
    for layer, shape in sorted(shapes.items(), key=lambda item: -item[1][0] * item[1][1]):
        while tuple(levels[-1].shape[2:]) != tuple(shape):
            current = levels[-1]
            if current.shape[2] < 2 or current.shape[3] < 2 or current.shape[2] < shape[0]:
                raise NSTError(f"cannot bring a {tuple(mask.shape)} mask to {layer}'s grid {tuple(shape)}")
            levels.append(F.avg_pool2d(current, 2))
        out[layer] = levels[-1][0, 0]
    return out


def layer_grams(features: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each layer's Gram matrix, guided by ``mask`` ([H, W] at the image's size) when given."""
    grids = on_layers(mask, {k: tuple(f.shape[2:]) for k, f in features.items()}) if mask is not None else {}
    return {layer: gram(f, grids.get(layer)) for layer, f in features.items()}


@dataclass(frozen=True)
class Regions:
    """Per style: its mask at the content's size (None: the whole image) and its style mask at the
    style image's size (None: the whole painting); each scale resamples them from these.
    ``regional`` is False when only style masks were given: the image is then styled everywhere,
    as without regions."""

    masks: tuple[torch.Tensor | None, ...]
    style_masks: tuple[torch.Tensor | None, ...]
    regional: bool
    coverage: np.ndarray | None = None  # [H, W] at the content's size where some pixel is left out


def prepare(
    masks: Sequence[object | None] | None,
    style_masks: Sequence[object | None] | None,
    content: ImageData,
    styles: Sequence[ImageData],
    emit_note,
    blend: Sequence[float] | None = None,
) -> Regions | None:
    """Load, check and size the run's masks; None when it has none (the run is as without regions).
    ``blend`` (the style weights): a style of weight 0 paints nowhere, whatever its mask."""
    if masks is None and style_masks is None:
        return None
    count = len(styles)
    fitted: list[Mask | None] = _loaded(masks, count, "masks", "mask")
    fitted = [fit(m, content.height, content.width, "the content") if m else None for m in fitted]
    style_fitted = _loaded(style_masks, count, "style_masks", "style mask")
    style_fitted = [
        fit(m, s.height, s.width, f"style {i + 1}") if m else None
        for i, (m, s) in enumerate(zip(style_fitted, styles, strict=True))
    ]
    for i, m in enumerate(style_fitted):
        if m is not None and m.empty:
            raise NSTError(f"style mask {i + 1} is empty (all zero): {m.name} selects nothing of its painting")
    for m in (*fitted, *style_fitted):
        for note in m.notes if m else ():
            emit_note(note)
    coverage = None
    if masks is not None:
        active = [share > 0 for share in region_shares(blend, count)]
        if all(m is not None and m.empty for m, on in zip(fitted, active, strict=True) if on):
            raise NSTError("every mask is empty (all zero): no style would be applied anywhere")
        for i, m in enumerate(fitted):
            if m is not None and m.empty:
                emit_note(f"{m.name} is empty (all zero): style {i + 1} does nothing")
        full = np.ones((content.height, content.width), np.float32)
        painted = [(m.values if m else full) for m, on in zip(fitted, active, strict=True) if on]
        coverage = np.clip(sum(painted), 0.0, 1.0).astype(np.float32)
        if coverage.min() >= 1.0 - 1e-6:
            coverage = None  # the masks cover every pixel: nothing to keep
    return Regions(_tensors(fitted), _tensors(style_fitted), masks is not None, coverage)


def _tensors(masks: list[Mask | None]) -> tuple[torch.Tensor | None, ...]:
    """What the objective needs: None where a mask selects everything (the plain Gram)."""
    return tuple(None if m is None or m.full else torch.from_numpy(m.values) for m in masks)


def _loaded(sources: Sequence[object | None] | None, count: int, what: str, role: str) -> list[Mask | None]:
    if sources is None:
        return [None] * count
    if isinstance(sources, str | os.PathLike | Image.Image | np.ndarray | Mask):
        sources = [sources]
    sources = list(sources)
    if len(sources) != count:
        entries = f"{len(sources)} entr{'y' if len(sources) == 1 else 'ies'}"
        raise NSTError(f"{what} has {entries} for {count} style image(s): give one per style")
    return [None if s is None else load_mask(s, f"{role} {i + 1}") for i, s in enumerate(sources)]


def region_shares(blend: Sequence[float] | None, count: int) -> list[float]:
    """Each region's share of the style weight: relative to the strongest, so equal weights give
    every region the full strength of a single-style run."""
    weights = [float(w) for w in blend] if blend is not None else [1.0] * count
    top = max(weights)
    return [w / top for w in weights]


def keep_photo(result: np.ndarray, photo: np.ndarray, coverage: np.ndarray | None) -> np.ndarray:
    """The photo where no region covers it, blended by the coverage across soft edges."""
    if coverage is None:
        return result
    if coverage.shape != result.shape[:2]:
        coverage = resample(torch.from_numpy(coverage), *result.shape[:2]).numpy()
    c = coverage[..., None]
    return (photo + c * (result - photo)).astype(np.float32)


def guided_style_losses(
    vgg, image: np.ndarray, mask: np.ndarray, painting: np.ndarray, style_scale: float = 1.0
) -> dict[str, float]:
    """How closely a region of a result follows a painting, per style layer: mean((G_m(image) −
    G(painting))²), the painting at the size a run of ``image``'s size uses. Arrays are float
    RGB [H, W, 3] in [0, 1] and a mask [H, W]: the measure of the tests and bench/regions.py."""
    from .losses import STYLE_LAYERS, gram
    from .objective import resize, style_size

    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(vgg.torch_device)
    p = torch.from_numpy(np.ascontiguousarray(painting.transpose(2, 0, 1)))[None].to(vgg.torch_device)
    with torch.no_grad():
        feats = vgg.features(x, STYLE_LAYERS)
        target = vgg.features(resize(p, *style_size(p, x.shape[2], x.shape[3], style_scale)), STYLE_LAYERS)
    shapes = {k: tuple(v.shape[2:]) for k, v in feats.items()}
    grid = on_layers(resample(torch.from_numpy(mask), x.shape[2], x.shape[3]).to(x.device), shapes)
    return {k: float((gram(feats[k], grid[k]) - gram(target[k])).pow(2).mean()) for k in STYLE_LAYERS}
