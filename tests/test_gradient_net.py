"""The hand-built VJP in torch against autograd, with random weights (fast; no ONNX involved)."""

from __future__ import annotations

import pytest
import torch

from nst_export.architecture import DEFAULT_LAYERS, full_plan, saved_tensors, truncated_plan
from nst_export.sources import CAFFE
from nst_export.torch_vgg import FeatureNet, GradientNet
from nst_export.verify import gradient_feed, relative_l2, smooth_image, torch_reference
from nst_export.weights import VGGWeights


def random_weights(arch: str, seed: int = 0) -> VGGWeights:
    gen = torch.Generator().manual_seed(seed)
    convs = []
    for layer in full_plan(arch):
        if layer.kind == "conv":
            fan_in = layer.in_channels * 9
            w = torch.randn(layer.out_channels, layer.in_channels, 3, 3, generator=gen) * (2.0 / fan_in) ** 0.5
            convs.append((w, torch.randn(layer.out_channels, generator=gen) * 0.1))
    return VGGWeights(arch, convs, CAFFE, "random", "random test weights", "", "0" * 64)


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize(
    ("taps", "size"),
    [
        (("relu1_1", "relu2_1", "relu3_1"), (37, 53)),
        (("pool1", "relu2_2"), (16, 16)),
        (("relu1_2", "pool2", "relu3_1"), (33, 20)),
    ],
)
def test_vjp_equals_autograd(pooling, taps, size):
    net = FeatureNet(random_weights("vgg16"), taps, pooling)
    image = smooth_image(*size, seed=5)
    saved, upstream, grad = torch_reference(net, image)
    grad_net = GradientNet(net)
    named = {k: torch.from_numpy(v) for k, v in gradient_feed(grad_net, saved, upstream).items()}
    assert relative_l2(grad_net(*(named[n] for n in grad_net.input_names)), grad) <= 1e-5


def test_max_pool_ties_route_like_torch():
    """A constant image makes every pool window a tie: the saved indices must decide, as in torch."""
    net = FeatureNet(random_weights("vgg16", seed=2), ("relu2_1",), "max")
    image = torch.full((1, 3, 24, 30), 0.5)
    saved, upstream, grad = torch_reference(net, image)
    grad_net = GradientNet(net)
    named = {k: torch.from_numpy(v) for k, v in gradient_feed(grad_net, saved, upstream).items()}
    assert relative_l2(grad_net(*(named[n] for n in grad_net.input_names)), grad) <= 1e-6


def test_saved_tensors_are_masks_and_indices_under_separate_names():
    net = FeatureNet(random_weights("vgg19"), ("relu1_1", "relu2_1"), "max")
    assert net.output_names == ["relu1_1", "relu2_1", "saved_indices_pool1", "saved_mask_pool1"]
    outputs = net(smooth_image(20, 22))
    assert outputs[2].dtype == torch.int64 and outputs[3].dtype == torch.bool
    assert outputs[3].shape == outputs[2].shape  # relu1_2's mask lies on pool1's grid


def test_pooled_masks_only_where_the_scatter_keeps_a_full_size_input():
    """A ReLU right before a max pool keeps its mask on the pool's grid unless it is a tap or
    its block's first ReLU (the scatter's shape comes from that one); average pooling, no indices."""
    plan = truncated_plan("vgg19", DEFAULT_LAYERS)
    names = [s.name for s in saved_tensors(plan, DEFAULT_LAYERS, "max")]
    assert "saved_mask_relu1_2" not in names and "saved_mask_pool1" in names
    assert "saved_mask_relu3_4" not in names and "saved_mask_pool3" in names
    assert "saved_mask_relu3_2" in names  # not before a pool
    tapped = saved_tensors(plan, (*DEFAULT_LAYERS, "relu2_2"), "max")
    assert "saved_mask_pool2" not in [s.name for s in tapped]
    averaged = [s.name for s in saved_tensors(plan, DEFAULT_LAYERS, "avg")]
    assert "saved_mask_relu1_2" in averaged and not any("pool" in n for n in averaged)
