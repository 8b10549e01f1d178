"""Filters > Animation > Neural Style Transfer (frames)… in real GIMP 3 with the real frame worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .gimp3_harness import Gimp3
from .test_plugin import assert_sources_unchanged, pixels

pytestmark = pytest.mark.gimp

FAST = {"size": 64, "quality": "draft", "seed": 1, "frame-steps": 3}


def test_a_four_layer_animation_gets_four_stylized_frames_in_one_undo_step(
    gimp3: Gimp3, images: Path, tmp_path: Path
) -> None:
    spec = {
        "action": "frames",
        "content": str(images / "golden_gate.jpg"),
        "frames": 4,
        "size": [64, 48],
        "gui": "undo",
        "args": {**FAST, "style-file": str(images / "starry_night.jpg")},
    }
    result = gimp3.batch(spec, tmp_path).result
    assert "exception" not in result, result.get("exception")
    assert result["status"] == "success", result["message"]
    after = result["layers_after"]
    assert [i["name"] for i in after[1:]] == [i["name"] for i in result["layers_before"]]
    group = after[0]
    assert group["name"] == "Starry Night — style (frames)"
    # the group's children top first: frame 4 on top, frame 1 at the bottom, as GIMP plays them
    assert group["children"] == [f"Frame {n} — Starry Night (100ms) (replace)" for n in (4, 3, 2, 1)]
    frames = [pixels(f) for f in reversed(result["group_frames"])]
    assert all(f.shape == (48, 64, 4) for f in frames)
    sources = [pixels(i) for i in reversed(result["layers_before"])]
    for frame, source in zip(frames, sources, strict=True):
        assert np.abs(frame[..., :3].astype(int) - source[:48, :64, :3]).mean() > 5  # really stylized
    assert [i["name"] for i in result["layers_undone"]] == [i["name"] for i in result["layers_before"]]
    assert_sources_unchanged(result["layers_before"], result["layers_undone"])


def test_the_frames_procedure_is_in_the_animation_menu(gimp3: Gimp3, tmp_path: Path) -> None:
    result = gimp3.batch({"action": "registration", "proc": "python-fu-nst-style-transfer-frames"}, tmp_path).result
    assert result["registered"], result
    assert result["menu_paths"] == ["<Image>/Filters/Animation"]
    assert result["arguments"][-2:] == ["temporal-weight", "frame-steps"]
