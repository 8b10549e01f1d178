"""The hand-built VJP in torch against autograd, with random weights (fast; no ONNX involved)."""

from __future__ import annotations

import pytest
import torch

from nst_export.architecture import DEFAULT_LAYERS, full_plan, saved_tensors, truncated_plan
from nst_export.sources import CAFFE
from nst_export.torch_vgg import FeatureNet, GradientNet, max_pool_with_route
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
    """A constant image makes every pool window a tie: the saved route must decide, as in torch."""
    net = FeatureNet(random_weights("vgg16", seed=2), ("relu2_1",), "max")
    image = torch.full((1, 3, 24, 30), 0.5)
    saved, upstream, grad = torch_reference(net, image)
    grad_net = GradientNet(net)
    named = {k: torch.from_numpy(v) for k, v in gradient_feed(grad_net, saved, upstream).items()}
    assert relative_l2(grad_net(*(named[n] for n in grad_net.input_names)), grad) <= 1e-6


def test_saved_tensors_are_bool_masks_and_routes_on_the_pool_inputs_grid():
    net = FeatureNet(random_weights("vgg19"), ("relu1_1", "relu2_1"), "max")
    assert net.output_names == ["relu1_1", "relu2_1", "saved_route_pool1"]
    outputs = net(smooth_image(21, 22))
    assert outputs[2].dtype == torch.bool and outputs[2].shape == outputs[0].shape  # relu1_2's grid, odd rows too


def test_route_is_torchs_first_argmax_where_the_maximum_is_positive():
    """Ties (equal values in a window) go to the first in raster order, as torch's indices; a
    window whose maximum is 0 routes nothing; an odd last row or column is in no window."""
    x = torch.tensor([[3.0, 3.0, 0.0, 0.0, 5.0], [3.0, 1.0, 0.0, 0.0, 5.0], [1.0, 2.0, 2.0, 2.0, 9.0]]).view(1, 1, 3, 5)
    y, route = max_pool_with_route(x)
    _, indices = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    expected = torch.zeros(15, dtype=torch.bool)
    expected[indices.flatten()] = y.flatten() > 0
    assert route.dtype == torch.bool and torch.equal(route.flatten(), expected)
    assert route.flatten().nonzero().flatten().tolist() == [0]


def test_relus_before_max_pools_fold_into_the_route():
    """A ReLU right before a max pool has no mask unless it is a tap; average pooling, no routes."""
    plan = truncated_plan("vgg19", DEFAULT_LAYERS)
    saved = {s.name: s for s in saved_tensors(plan, DEFAULT_LAYERS, "max")}
    assert "saved_mask_relu1_2" not in saved and saved["saved_route_pool1"].layer == "relu1_2"
    assert "saved_mask_relu3_4" not in saved and saved["saved_route_pool3"].layer == "relu3_4"
    assert "saved_mask_relu3_2" in saved  # not before a pool
    assert {s.kind for s in saved.values()} == {"mask"}
    tapped = [s.name for s in saved_tensors(plan, (*DEFAULT_LAYERS, "relu2_2"), "max")]
    assert "saved_mask_relu2_2" not in tapped and "saved_route_pool2" in tapped  # the tap is its own mask
    averaged = [s.name for s in saved_tensors(plan, DEFAULT_LAYERS, "avg")]
    assert "saved_mask_relu1_2" in averaged and not any("pool" in n for n in averaged)
