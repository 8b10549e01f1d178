"""Frame sequences in and out: videos, animated images and folders keep their frames and their timing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_runtime.errors import NSTError
from nst_runtime.imaging.frameio import check_clip_output, open_clip, write_clip


def moving_frames(count: int = 6, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """A bright square sliding right over a gradient: each frame different, easy to compress."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(count):
        rgb = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 60)], axis=2).astype(np.uint8)
        rgb[12:28, 4 + 6 * t : 20 + 6 * t] = (250, 250, 40)
        frames.append(rgb)
    return frames


@pytest.mark.parametrize(("name", "tolerance"), [("clip.mp4", 12), ("clip.webm", 12), ("clip.mkv", 12)])
def test_videos_round_trip_with_their_frame_rate(tmp_path, name, tolerance):
    frames = moving_frames()
    path = tmp_path / name
    write_clip(path, frames, Fraction(12))
    clip = open_clip(path)
    back = list(clip.frames())
    assert clip.kind == "video" and clip.fps == 12 and (clip.width, clip.height) == (64, 48)
    assert len(back) == len(frames)
    assert all(np.abs(a.astype(int) - b).mean() < tolerance for a, b in zip(back, frames, strict=True))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_an_ntsc_rate_is_kept_exactly(tmp_path):
    path = tmp_path / "ntsc.mp4"
    write_clip(path, moving_frames(3), Fraction(30000, 1001))
    assert open_clip(path).fps == Fraction(30000, 1001)


def test_odd_sizes_are_padded_for_video_and_said_so(tmp_path):
    frames = [f[:47, :63] for f in moving_frames(2)]
    notes = write_clip(tmp_path / "odd.mp4", frames, Fraction(10))
    assert any("padded" in n for n in notes)


@pytest.mark.parametrize("name", ["anim.gif", "anim.webp"])
def test_animations_keep_per_frame_durations(tmp_path, name):
    frames = moving_frames(4)
    durations = [100, 200, 100, 400]
    write_clip(tmp_path / name, frames, Fraction(10), durations)
    clip = open_clip(tmp_path / name)
    assert clip.kind == "animation" and clip.count == 4 and clip.durations_ms == durations
    back = list(clip.frames())
    assert len(back) == 4 and back[0].shape == (48, 64, 3)
    assert np.abs(back[2].astype(int) - frames[2]).mean() < 20  # GIF's palette, WebP's lossy coding


def test_a_folder_is_read_in_numeric_order(tmp_path):
    frames = moving_frames(11)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"shot{i}.png")  # shot10 sorts after shot9, not after shot1
    (tmp_path / "notes.txt").write_text("not a frame")
    clip = open_clip(tmp_path, fps=8)
    assert clip.kind == "folder" and clip.count == 11 and clip.fps == 8
    assert all(np.array_equal(a, b) for a, b in zip(clip.frames(), frames, strict=True))


def test_a_folder_output_gets_numbered_frames(tmp_path):
    out = tmp_path / "out"
    write_clip(out, moving_frames(3), Fraction(24))
    assert sorted(p.name for p in out.iterdir()) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]


def test_frames_of_different_sizes_in_a_folder_are_refused(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "1.png")
    Image.new("RGB", (40, 32)).save(tmp_path / "2.png")
    with pytest.raises(NSTError, match="40×32"):
        list(open_clip(tmp_path).frames())


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: _write(d / "empty.mp4", b""), "empty"),
        (lambda d: _write(d / "junk.mp4", b"\x00\x01 this is not a video" * 50), "readable video"),
        (lambda d: d, "no images"),
    ],
)
def test_bad_inputs_fail_in_one_line(tmp_path, make, words):
    with pytest.raises(NSTError, match=words):
        clip = open_clip(make(tmp_path))
        list(clip.frames())


def test_unknown_output_extensions_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(NSTError, match="cannot write frames"):
        check_clip_output(tmp_path / "out.xyz")
    with pytest.raises(NSTError, match="does not exist"):
        check_clip_output(tmp_path / "no" / "out.mp4")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
