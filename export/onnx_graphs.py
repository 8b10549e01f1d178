"""torch → ONNX for the two graphs, with every spatial size dynamic.

The exporter traces once; anything shape-dependent must therefore stay symbolic (no Python
``if`` on sizes). Each resolution level gets its own pair of symbolic dims: torch.export cannot
express ``h // 2``, and nothing in the graphs needs it to.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import onnx
import torch

from .manifest import DEFAULT_OPSET, LOSS_OUTPUTS
from .torch_vgg import FeatureNet, GradientNet

TRACE_SIZE = (64, 96)  # not square, so height and width cannot be confused while tracing


def output_level(net: FeatureNet, name: str) -> int:
    """How many pools the output of layer ``name`` has been through (its resolution level)."""
    level = 0
    for layer in net.plan:
        level += layer.kind == "pool"
        if layer.name == name:
            return level
    raise KeyError(name)


def dynamic_dims(levels: int) -> list[tuple[torch.export.Dim, torch.export.Dim]]:
    """A dynamic (height, width) pair per resolution level, so one graph takes any image size."""
    return [
        (torch.export.Dim(f"height_{i}", min=1, max=1 << 16), torch.export.Dim(f"width_{i}", min=1, max=1 << 16))
        for i in range(levels)
    ]


@contextlib.contextmanager
def quiet_exporter():
    """The exporter narrates every pass on stdout and warns about torchvision; users need neither."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def _save(program, path: Path, input_names: list[str], output_names: list[str]) -> None:
    model = program.model_proto
    for value, name in zip(model.graph.input, input_names, strict=True):
        assert value.name == name, (value.name, name)
    for value, name in zip(model.graph.output, output_names, strict=True):
        assert value.name == name, (value.name, name)
    model.producer_name = "nst_export"
    onnx.save_model(model, str(path))


def export_feature_graph(net: FeatureNet, path: Path, opset: int = DEFAULT_OPSET) -> None:
    image = torch.rand(1, 3, *TRACE_SIZE)
    height = torch.export.Dim("height", min=16, max=1 << 16)
    width = torch.export.Dim("width", min=16, max=1 << 16)
    with quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            net.eval(),
            (image,),
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=["image"],
            output_names=net.output_names,
            dynamic_shapes={"image": {2: height, 3: width}},
        )
    _save(program, path, ["image"], net.output_names)


def export_gradient_graph(net: FeatureNet, grad_net: GradientNet, path: Path, opset: int = DEFAULT_OPSET) -> None:
    with torch.no_grad():
        outputs = dict(zip(net.output_names, net(torch.rand(1, 3, *TRACE_SIZE)), strict=True))
    inputs = [outputs[n] for n in grad_net.saved_inputs] + [torch.randn_like(outputs[t]) for t in net.taps]
    levels = dynamic_dims(1 + sum(1 for layer in net.plan if layer.kind == "pool"))
    dynamic = tuple(
        {2: levels[level][0], 3: levels[level][1]}
        for level in (output_level(net, grad_net.layer_of(name)) for name in grad_net.input_names)
    )
    with quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            grad_net.eval(),
            tuple(inputs),
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=grad_net.input_names,
            output_names=["grad_image"],
            dynamic_shapes=(dynamic,),
        )
    _save(program, path, grad_net.input_names, ["grad_image"])


def export_fused_graph(
    net: FeatureNet, feature_path: Path, gradient_path: Path, path: Path, opset: int = DEFAULT_OPSET
) -> list[str]:
    """feature → loss → gradient, composed into one graph; returns its input names.

    The loss graph is exported on its own (its inputs share symbolic dims with the taps, which
    torch.export can express) and wired to the other two by name with onnx.compose.
    """
    from .torch_loss import LossNet

    loss_net = LossNet(net.taps)
    outputs, examples, tap_spec = _loss_examples(net, loss_net.content_layer)
    for s in loss_net.style_layers:
        channels = outputs[s].shape[1]
        examples[f"gram_{s}"] = torch.randn(channels, channels)
    examples["style_weights"] = torch.ones(len(loss_net.style_layers))
    return _compose_with_loss(net, loss_net, examples, tap_spec, feature_path, gradient_path, path, opset)


def export_guided_graph(
    net: FeatureNet, feature_path: Path, gradient_path: Path, path: Path, opset: int = DEFAULT_OPSET
) -> list[str]:
    """The fused graph for masked (regional) style terms: ``GuidedLossNet`` between feature and
    gradient graph, with the number of regions R a dynamic dimension; returns its input names."""
    from .torch_loss import GuidedLossNet, gram_name, mask_input_name

    loss_net = GuidedLossNet(net.taps)
    regions = 2  # torch.export specialises a dimension traced at size 1
    outputs, examples, tap_spec = _loss_examples(net, loss_net.content_layer)
    for s in loss_net.style_layers:
        _, channels, height, width = outputs[s].shape
        examples[gram_name(s)] = torch.randn(regions, channels, channels)
        examples[mask_input_name(s)] = torch.rand(regions, height, width)
    examples["style_weights"] = torch.ones(regions, len(loss_net.style_layers))
    r_dim = torch.export.Dim("regions", min=1, max=256)
    masks = {mask_input_name(s): s for s in loss_net.style_layers}

    def spec(name: str) -> dict | None:
        if name in masks:
            height, width = tap_spec(masks[name]).values()
            return {0: r_dim, 1: height, 2: width}
        if name.startswith("gram_") or name == "style_weights":
            return {0: r_dim}
        return tap_spec(name)

    return _compose_with_loss(net, loss_net, examples, spec, feature_path, gradient_path, path, opset)


def _loss_examples(net: FeatureNet, content: str | None):
    """(traced outputs, example inputs for the taps, content target and weight, and each tap's
    symbolic spatial dims by input name) shared by the loss graphs."""
    with torch.no_grad():
        outputs = dict(zip(net.output_names, net(torch.rand(1, 3, *TRACE_SIZE)), strict=True))
    examples: dict[str, torch.Tensor] = {t: outputs[t] for t in net.taps}
    if content:
        examples["content_target"] = torch.randn_like(outputs[content])
    examples["content_weight"] = torch.tensor(1.0)
    levels = dynamic_dims(1 + sum(1 for layer in net.plan if layer.kind == "pool"))

    def tap_spec(name: str) -> dict | None:
        layer = content if name == "content_target" else name
        if layer not in net.taps:
            return None
        level = output_level(net, layer)
        return {2: levels[level][0], 3: levels[level][1]}

    return outputs, examples, tap_spec


def _compose_with_loss(
    net: FeatureNet,
    loss_net,
    examples: dict[str, torch.Tensor],
    spec: Callable[[str], dict | None],
    feature_path: Path,
    gradient_path: Path,
    path: Path,
    opset: int,
) -> list[str]:
    """Export ``loss_net`` and wire it between the feature and the gradient graph by name."""
    from onnx import compose

    with quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            loss_net.eval(), tuple(examples[n] for n in loss_net.input_names), dynamo=True, opset_version=opset,
            verbose=False, input_names=loss_net.input_names, output_names=loss_net.output_names,
            dynamic_shapes=(tuple(spec(n) for n in loss_net.input_names),),
        )  # fmt: skip
    feature = compose.add_prefix(onnx.load(str(feature_path)), "feature/", rename_inputs=False, rename_outputs=False)
    loss = compose.add_prefix(program.model_proto, "loss/", rename_inputs=False, rename_outputs=False)
    gradient = compose.add_prefix(onnx.load(str(gradient_path)), "gradient/", rename_inputs=False, rename_outputs=False)
    first = compose.merge_models(
        feature, loss, io_map=[(t, t) for t in net.taps], outputs=[*net.output_names, *loss_net.output_names]
    )
    fused = compose.merge_models(
        first, gradient, io_map=[(i.name, i.name) for i in gradient.graph.input],
        outputs=list(LOSS_OUTPUTS),
    )  # fmt: skip
    fused.producer_name = "nst_export"
    onnx.save_model(fused, str(path))
    return [i.name for i in fused.graph.input]
