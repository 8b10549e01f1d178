"""Checks of freshly written graphs against torch, run by every export before anything is kept.

Comparisons, each with the tolerance the graphs promise:
- the feature graph's taps against the torch module (max |error| / max |reference| per tap);
- the gradient graph, fed torch's own saved tensors and upstream gradients, against torch
  autograd (relative L2). Feeding torch's saved tensors isolates the gradient graph from
  ReLU/max-pool near-ties that fp32 may break differently in two backends;
- the fused and guided graphs' loss and gradient against torch autograd on the same loss;
- every graph's integers bounded within int32 at every size it accepts (``int_range``):
  OpenVINO runs int64 as int32, and a product of sizes wrapped past 1024×512 pixels.
The numeric checks run small sizes on the CPU provider; ``verify_loss_graph`` also takes
another provider's session and a size past that overflow (tests/test_openvino.py).
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
LOSS_TOLERANCE = 1e-4  # a scalar summed over ~10⁶ terms in a different order: fp32 gives ~1e-5
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


def fused_feed(net: FeatureNet, image: torch.Tensor, seed: int = 7) -> tuple[dict[str, torch.Tensor], dict]:
    """Targets and weights for the fused graph, from other smooth images (so the loss is not zero)."""
    from .torch_loss import LossNet, gram_name

    loss_net = LossNet(net.taps)
    height, width = image.shape[2], image.shape[3]
    with torch.no_grad():
        target = net.features(smooth_image(height, width, seed=seed))
        style = net.features(smooth_image(height + 9, width - 5, seed=seed + 1))
    named: dict[str, torch.Tensor] = {}
    if loss_net.content_layer:
        named["content_target"] = target[loss_net.content_layer]
    for layer in loss_net.style_layers:
        flat = style[layer].flatten(2)[0]
        named[gram_name(layer)] = flat @ flat.T / flat.shape[1]
    named["content_weight"] = torch.tensor(0.5)
    named["style_weights"] = torch.tensor([10.0 / style[s].shape[1] ** 2 for s in loss_net.style_layers])
    return named, {"loss_net": loss_net}


def verify_fused(net: FeatureNet, fused_path: Path) -> dict:
    """The fused graph's loss and gradient against torch autograd on the same loss."""
    session = cpu_session(fused_path)
    worst_loss, worst_grad = verify_loss_graph(net, session, "fused", lambda image, _i: fused_feed(net, image))
    return {"fused_loss_relative_error": worst_loss, "fused_gradient_relative_l2": worst_grad}


def verify_int32(paths: dict[str, Path]) -> dict:
    """Raise ExportError unless every integer in each graph stays within int32 at any size."""
    from .int_range import MAX_DIM, check_file

    for role, path in paths.items():
        problems = check_file(path)
        if problems:
            raise ExportError(f"{role} graph has integers that may overflow int32 (OpenVINO): {'; '.join(problems)}")
    return {"int32_safe_up_to": MAX_DIM}


def guided_feed(net: FeatureNet, image: torch.Tensor, regions: int) -> tuple[dict[str, torch.Tensor], dict]:
    """The fused feed widened to ``regions`` soft, overlapping masks per style layer; with 3 or
    more, the last region is padding (all-zero mask, weight 0), which must add exactly nothing."""
    from .torch_loss import GuidedLossNet, gram_name, mask_input_name

    named, _ = fused_feed(net, image)
    loss_net = GuidedLossNet(net.taps)
    height, width = image.shape[2], image.shape[3]
    guides = smooth_image(height, width, seed=23)[0, :regions]  # [R ≤ 3, h, w], smooth, in [0, 1]
    weights = named["style_weights"]
    named["style_weights"] = torch.stack([weights * (1.0 + r) for r in range(regions)])
    with torch.no_grad():
        feats = net.features(image)
    for layer in loss_net.style_layers:
        shape = feats[layer].shape[2:]
        masks = F.interpolate(guides[None], size=shape, mode="area")[0]
        gram = named[gram_name(layer)]
        named[gram_name(layer)] = torch.stack([gram * (0.5 + r) for r in range(regions)])
        if regions >= 3:
            masks[-1] = 0.0
        named[mask_input_name(layer)] = masks.contiguous()
    if regions >= 3:
        named["style_weights"][-1] = 0.0
    return named, {"loss_net": loss_net}


def verify_guided(net: FeatureNet, guided_path: Path) -> dict:
    """The guided graph against torch autograd on the masked loss, with 2 regions at one size and
    2 + 1 padding at the other."""
    worst_loss, worst_grad = verify_loss_graph(
        net, cpu_session(guided_path), "guided", lambda image, i: guided_feed(net, image, 2 + i)
    )
    return {"guided_loss_relative_error": worst_loss, "guided_gradient_relative_l2": worst_grad}


def verify_loss_graph(
    net: FeatureNet,
    session: ort.InferenceSession,
    role: str,
    feed_for,
    sizes: tuple[tuple[int, int], ...] = CHECK_SIZES,
    tolerance: tuple[float, float] = (LOSS_TOLERANCE, GRADIENT_TOLERANCE),
) -> tuple[float, float]:
    """(worst loss error, worst gradient error) of a loss-and-gradient graph's ``session`` over
    ``sizes``; raise ExportError past ``tolerance`` (loss, gradient)."""
    worst_loss = worst_grad = 0.0
    for i, (height, width) in enumerate(sizes):
        image = smooth_image(height, width, seed=11)
        named, extra = feed_for(image, i)
        x = image.clone().requires_grad_(True)
        reference = extra["loss_net"].reference(net.features(x), named)
        (grad,) = torch.autograd.grad(reference, x)
        feed = {"image": image.numpy(), **{k: v.numpy() for k, v in named.items()}}
        loss, content, style, per_layer, onnx_grad = session.run(None, feed)
        loss_err = abs(float(loss) - float(reference.detach())) / abs(float(reference.detach()))
        parts_err = abs(float(content) + float(per_layer.sum()) - float(loss)) / abs(float(loss))
        loss_err = max(loss_err, parts_err, abs(float(per_layer.sum()) - float(style)) / max(abs(float(style)), 1e-30))
        grad_err = relative_l2(onnx_grad, grad)
        worst_loss, worst_grad = max(worst_loss, loss_err), max(worst_grad, grad_err)
        if not (loss_err <= tolerance[0] and grad_err <= tolerance[1]):
            raise ExportError(
                f"{role} graph differs from torch ({height}×{width}): loss {loss_err:.1e}, gradient {grad_err:.1e}"
            )
    return worst_loss, worst_grad
