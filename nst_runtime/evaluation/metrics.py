"""How closely a result follows a painting, measured through VGG: the tests' and benchmarks' yardsticks."""

from __future__ import annotations

import numpy as np
import torch

from ..imaging.masks import on_layers, resample
from ..imaging.tensors import resize
from ..objective.builder import style_size
from ..objective.losses import STYLE_LAYERS, gram


def guided_style_losses(
    vgg, image: np.ndarray, mask: np.ndarray, painting: np.ndarray, style_scale: float = 1.0
) -> dict[str, float]:
    """How closely a region of a result follows a painting, per style layer: mean((G_m(image) −
    G(painting))²), the painting at the size a run of ``image``'s size uses. Arrays are float
    RGB [H, W, 3] in [0, 1] and a mask [H, W]: the measure of the tests and bench/regions.py."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(vgg.torch_device)
    p = torch.from_numpy(np.ascontiguousarray(painting.transpose(2, 0, 1)))[None].to(vgg.torch_device)
    with torch.no_grad():
        feats = vgg.features(x, STYLE_LAYERS)
        target = vgg.features(resize(p, *style_size(p, x.shape[2], x.shape[3], style_scale)), STYLE_LAYERS)
    shapes = {k: tuple(v.shape[2:]) for k, v in feats.items()}
    grid = on_layers(resample(torch.from_numpy(mask), x.shape[2], x.shape[3]).to(x.device), shapes)
    return {k: float((gram(feats[k], grid[k]) - gram(target[k])).pow(2).mean()) for k in STYLE_LAYERS}
