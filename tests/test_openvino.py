"""OpenVINO's plugin provider (issue 23): the int32 check, the graphs on OpenVINO, the device.

Tests that run the provider skip, saying why, where onnxruntime-ep-openvino cannot be loaded.
"""

from __future__ import annotations

import shutil
import sys

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from conftest import photo_array
from nst_export import DEFAULT_LAYERS
from nst_export.int_range import int32_overflows
from nst_export.sources import locate_source
from nst_export.torch_vgg import FeatureNet
from nst_export.verify import fused_feed, guided_feed, verify_loss_graph
from nst_export.weights import load_weights
from nst_runtime import NSTError
from nst_runtime.evaluation.targets import Extractor
from nst_runtime.evaluation.tiled import TiledEvaluator
from nst_runtime.objective.builder import ObjectiveBuilder
from nst_runtime.options import make_options
from nst_runtime.vgg.features import VGG
from nst_runtime.vgg.graphs import GraphSet
from nst_runtime.vgg.sessions import OPENVINO, create_session, openvino_available, openvino_precision

#: 64² · 576 · 1024 = 2.4e9 > 2³¹: the format-6 fused graph's relu1_1 gradient was wrong here.
PAST_INT32 = (576, 1024)


def _size_product_graph(in_float: bool) -> onnx.ModelProto:
    """x / (h·w) with h·w an int64 product of x's sizes, or the same with each size cast first."""
    nodes = [
        helper.make_node("Shape", ["x"], ["h"], start=2, end=3),
        helper.make_node("Shape", ["x"], ["w"], start=3, end=4),
    ]
    if in_float:
        nodes += [
            helper.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["hf", "wf"], ["n"]),
        ]
    else:
        nodes += [helper.make_node("Mul", ["h", "w"], ["hw"]), helper.make_node("Cast", ["hw"], ["n"], to=1)]
    nodes.append(helper.make_node("Div", ["x", "n"], ["y"]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, "h", "w"])
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])


def test_the_int32_check_flags_an_integer_product_of_sizes_and_passes_it_in_float():
    assert int32_overflows(_size_product_graph(in_float=False)) == ["Mul hw: up to 4.29e+09"]
    assert int32_overflows(_size_product_graph(in_float=True)) == []


@pytest.fixture(scope="module")
def openvino(openvino_or_skip):
    return openvino_or_skip


@pytest.fixture(scope="module")
def torch_net():
    return FeatureNet(load_weights(locate_source("vgg19")), DEFAULT_LAYERS, "max")


def test_each_graph_is_one_openvino_partition(vgg19_export, openvino):
    for role, entry in vgg19_export.manifest["graphs"].items():
        session, device = create_session(vgg19_export.folder / entry["file"], "openvino-f32")
        assignment = session.get_provider_graph_assignment_info()
        assert device == "openvino-f32"
        assert [g.ep_name for g in assignment] == [OPENVINO], role


@pytest.mark.slow
def test_loss_graphs_on_openvino_f32_match_torch_autograd_past_the_int32_overflow(vgg19_export, torch_net, openvino):
    """Run where OpenVINO's int32 would wrap an integer C²·h·w, the fused and the guided graph
    still give torch's loss and gradient (format 6's relu1_1 gradient came out at −3×)."""
    folder = vgg19_export.folder
    fused, _ = create_session(folder / "fused.onnx", "openvino-f32")
    loss, grad = verify_loss_graph(
        torch_net, fused, "fused", lambda image, _i: fused_feed(torch_net, image), (PAST_INT32,), (1e-4, 1e-3)
    )
    assert loss <= 1e-4 and grad <= 1e-3
    guided, _ = create_session(folder / "guided.onnx", "openvino-f32")
    loss, grad = verify_loss_graph(
        torch_net, guided, "guided", lambda image, _i: guided_feed(torch_net, image, 3), (PAST_INT32,), (1e-4, 1e-3)
    )
    assert loss <= 1e-4 and grad <= 1e-3


def _parts_and_grad(vgg: VGG, image: torch.Tensor, targets: dict[str, torch.Tensor]):
    parts, grad = vgg.loss_and_grad(image, targets)
    return parts["total"], grad


def test_the_openvino_device_in_f32_gives_mlas_gradient_within_1e_3(vgg19_export, torch_net, openvino):
    graphs = GraphSet(vgg19_export.folder, vgg19_export.manifest)
    image = torch.from_numpy(photo_array("golden_gate.jpg", 384, 512))
    named, _ = fused_feed(torch_net, image)
    cpu_loss, cpu_grad = _parts_and_grad(VGG(graphs, "cpu"), image, named)
    ov = VGG(graphs, "openvino-f32")
    assert ov.device == "openvino-f32"
    ov_loss, ov_grad = _parts_and_grad(ov, image, named)
    assert abs(ov_loss - cpu_loss) / abs(cpu_loss) <= 1e-4
    assert float((ov_grad - cpu_grad).norm() / cpu_grad.norm()) <= 1e-3


@pytest.mark.slow
def test_the_openvino_device_in_f32_gives_mlas_gradient_through_tiles_at_2048x1536(vgg19_export, openvino):
    """Past the size where format 6's integers wrapped, through 512-px tiles (memory-light: one tile's
    buffers at a time), with the targets from MLAS as the engine computes them."""
    graphs = GraphSet(vgg19_export.folder, vgg19_export.manifest)
    cpu, ov = VGG(graphs, "cpu"), VGG(graphs, "openvino-f32")
    height, width, tile = 1536, 2048, 512
    content = torch.from_numpy(photo_array("golden_gate.jpg", height, width))
    style = torch.from_numpy(photo_array("starry_night.jpg", 384, 512))
    options = make_options(tile_size=tile)
    objective = ObjectiveBuilder(cpu, options, content, [style], [1.0], targets=Extractor(cpu, tile_size=tile))
    objective = objective.at(height, width)
    x = 0.5 * content + 0.5 * torch.from_numpy(photo_array("starry_night.jpg", height, width))
    cpu_parts, cpu_grad = TiledEvaluator(cpu, objective, tile)(x)
    ov_parts, ov_grad = TiledEvaluator(ov, objective, tile)(x)
    assert abs(ov_parts["total"] - cpu_parts["total"]) / cpu_parts["total"] <= 1e-4
    assert float((ov_grad - cpu_grad).norm() / cpu_grad.norm()) <= 1e-3


def test_openvino_refuses_in_one_line_where_its_plugin_is_missing(vgg19_export, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime_ep_openvino", None)  # import raises ImportError
    graph = tmp_path / "feature.onnx"  # a path no session was cached for
    shutil.copyfile(vgg19_export.folder / "feature.onnx", graph)
    with pytest.raises(NSTError) as refused:
        create_session(graph, "openvino")
    message = str(refused.value)
    assert "\n" not in message and "onnxruntime-ep-openvino" in message


def test_openvino_gpu_runs_on_an_intel_gpu_or_refuses_in_one_line(vgg19_export, openvino, tmp_path):
    """No Intel GPU here: the real plugin lists only its CPU, and --device openvino-gpu says so in
    one line; where OpenVINO lists a GPU the same call opens the session there."""
    graph = tmp_path / "feature.onnx"
    shutil.copyfile(vgg19_export.folder / "feature.onnx", graph)
    if openvino_available("GPU"):
        assert create_session(graph, "openvino-gpu")[1] == "openvino-gpu"
        return
    with pytest.raises(NSTError) as refused:
        create_session(graph, "openvino-gpu")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("OpenVINO is not available on an Intel GPU: it found none here")
    assert "CPU" in message  # what it did find


def test_plain_openvino_takes_bf16_only_where_the_cpu_has_amx():
    assert openvino_precision("openvino", amx=True) == "bf16"
    assert openvino_precision("openvino", amx=False) == "f32"
    assert openvino_precision("openvino-f32", amx=True) == "f32"
    assert openvino_precision("openvino-bf16", amx=False) == "bf16"
