"""Checks of freshly written graphs against torch, run by every export before anything is kept.

Two comparisons, each with the tolerance the graphs promise:
- the feature graph's taps against the torch module (max |error| / max |reference| per tap);
- the gradient graph, fed torch's own saved tensors and upstream gradients, against torch
  autograd (relative L2). Feeding torch's saved tensors isolates the gradient graph from
  ReLU/max-pool near-ties that fp32 may break differently in two backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from .errors import ExportError
from .torch_vgg import FeatureNet, GradientNet, grad_name

FEATURE_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-5
CHECK_SIZES = ((37, 53), (64, 48))  # one odd, one even; small so an export stays fast


def smooth_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Low-frequency noise in [0, 1]: no plateaus, so no exact ReLU or max-pool ties."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, height // 8), max(2, width // 8), generator=gen, dtype=torch.float64)
    image = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return image.clamp(0, 1).float()


def cpu_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_relative_error(actual: np.ndarray | torch.Tensor, reference: torch.Tensor) -> float:
    actual = torch.as_tensor(actual).double()
    reference = reference.detach().double()
    scale = float(reference.abs().max())
    return float((actual - reference).abs().max()) / (scale or 1.0)


def relative_l2(actual: np.ndarray | torch.Tensor, reference: torch.Tensor) -> float:
    actual = torch.as_tensor(actual).double()
    reference = reference.detach().double()
    return float((actual - reference).norm() / (reference.norm() or 1.0))


def torch_reference(net: FeatureNet, image: torch.Tensor, seed: int = 1):
    """(saved outputs of the torch module, upstream grads, autograd d/d image)."""
    with torch.no_grad():
        saved = dict(zip(net.output_names, net(image), strict=True))
    x = image.clone().requires_grad_(True)
    feats = net.features(x)
    gen = torch.Generator().manual_seed(seed)
    upstream = {t: torch.randn(feats[t].shape, generator=gen) for t in net.taps}
    (grad,) = torch.autograd.grad(sum((feats[t] * upstream[t]).sum() for t in net.taps), x)
    return saved, upstream, grad


def gradient_feed(grad_net: GradientNet, saved: dict, upstream: dict) -> dict[str, np.ndarray]:
    feed = {n: saved[n].numpy() for n in grad_net.saved_inputs}
    feed.update({grad_name(t): upstream[t].numpy() for t in grad_net.taps})
    return feed


def verify_graphs(net: FeatureNet, grad_net: GradientNet, feature_path: Path, gradient_path: Path) -> dict:
    """Raise ExportError unless both graphs match torch; return the errors measured."""
    features = cpu_session(feature_path)
    gradient = cpu_session(gradient_path)
    worst_feature = worst_gradient = 0.0
    for height, width in CHECK_SIZES:
        image = smooth_image(height, width)
        saved, upstream, grad = torch_reference(net, image)
        outputs = dict(zip(net.output_names, features.run(None, {"image": image.numpy()}), strict=True))
        for tap in net.taps:
            err = max_relative_error(outputs[tap], saved[tap])
            worst_feature = max(worst_feature, err)
            if not err <= FEATURE_TOLERANCE:
                raise ExportError(f"feature graph differs from torch at {tap} ({height}×{width}): {err:.2e}")
        (onnx_grad,) = gradient.run(None, gradient_feed(grad_net, saved, upstream))
        err = relative_l2(onnx_grad, grad)
        worst_gradient = max(worst_gradient, err)
        if not err <= GRADIENT_TOLERANCE:
            raise ExportError(f"gradient graph differs from torch autograd ({height}×{width}): {err:.2e}")
    return {
        "sizes": [list(s) for s in CHECK_SIZES],
        "feature_max_relative_error": worst_feature,
        "gradient_relative_l2": worst_gradient,
        "feature_tolerance": FEATURE_TOLERANCE,
        "gradient_tolerance": GRADIENT_TOLERANCE,
    }
