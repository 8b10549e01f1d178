"""``stylize_frames`` and ``nst video`` on tiny clips: order, shots, timing kept, Ctrl-C and --resume."""

from __future__ import annotations

import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_image
from nst_runtime.engine.animation import stylize_frames
from nst_runtime.imaging.frameio import open_clip, write_clip
from nst_runtime.options import make_options

QUICK = ["--size", "48", "--steps", "3", "--frame-steps", "2", "-q"]


def panning(count: int, width: int = 48, height: int = 36, step: int = 2, seed: str = "golden_gate.jpg"):
    """``count`` frames of a photo, the camera moving ``step`` px right per frame (uint8 RGB)."""
    from PIL import Image

    with Image.open(shared_image(seed)) as im:
        big = np.asarray(im.convert("RGB").resize((width + step * count, height)))
    return [np.ascontiguousarray(big[:, step * t : step * t + width]) for t in range(count)]


@pytest.fixture(scope="module")
def painting() -> Path:
    return shared_image("starry_night.jpg")


def test_frames_come_out_in_order_and_a_cut_starts_a_new_shot(painting):
    frames = panning(3) + panning(2, seed="coffee.png")
    options = make_options(size=48, steps=3)
    seen = []
    for done in stylize_frames(frames, [painting], options, frame_steps=2, progress=lambda e: seen.append(e.frame)):
        assert done.image.size == (48, 36)
        seen.append(("done", done.index))
        if done.index == 0:
            first = done
    assert [s for s in seen if isinstance(s, tuple)] == [("done", i) for i in range(5)]
    assert seen.index(("done", 0)) < seen.index(1)  # yielded as soon as it was done, not at the end
    starts = [d.shot_start for d in stylize_frames(frames, [painting], options, frame_steps=1)]
    assert starts == [True, False, False, True, False]
    assert first.parts["style"] > 0


def test_later_frames_are_held_by_the_temporal_term(painting):
    frames = panning(2)
    done = list(stylize_frames(frames, [painting], make_options(size=48, steps=3), frame_steps=2))
    assert "temporal" in done[1].parts and "temporal" not in done[0].parts
    assert done[1].consistency > 0.5


def nst_video(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nst_runtime", "video", *args], capture_output=True, text=True, timeout=timeout
    )


def test_a_gif_keeps_its_frame_durations(tmp_path, painting):
    write_clip(tmp_path / "in.gif", panning(3), Fraction(10), [100, 300, 200])
    proc = nst_video(str(tmp_path / "in.gif"), str(painting), "-o", str(tmp_path / "out.gif"), *QUICK)
    assert proc.returncode == 0, proc.stderr
    clip = open_clip(tmp_path / "out.gif")
    assert clip.count == 3 and clip.durations_ms == [100, 300, 200] and (clip.width, clip.height) == (48, 36)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.gif", "out.gif"]  # the work folder is gone


def test_ctrl_c_keeps_finished_frames_and_resume_gives_the_same_video(tmp_path, painting):
    source = tmp_path / "in.mp4"
    write_clip(source, panning(4), Fraction(12))
    whole = tmp_path / "whole"
    proc = nst_video(str(source), str(painting), "-o", str(whole), *QUICK)
    assert proc.returncode == 0, proc.stderr

    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "nst_runtime", "video", str(source), str(painting), "-o", str(out), *QUICK[:-1]]
    cmd[cmd.index("--frame-steps") + 1] = "2"
    run = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    line = ""
    while "frame 2 done" not in line:
        line = run.stderr.readline()
        assert line or run.poll() is None, "nst video ended before frame 2"
    run.send_signal(signal.SIGINT)
    rest = run.communicate(timeout=30)[1]
    assert run.returncode == 130, rest
    assert "--resume" in rest and "Traceback" not in rest
    work = tmp_path / "out.mp4.nst-work"
    assert not out.exists() and len(list(work.glob("frame_*.png"))) >= 2

    again = nst_video(str(source), str(painting), "-o", str(out), *QUICK)
    assert again.returncode == 1 and "add --resume" in again.stderr
    other = nst_video(str(source), str(painting), "-o", str(out), "--resume", *QUICK, "--seed", "3")
    assert other.returncode == 1 and "differs in: seed" in other.stderr

    resumed = nst_video(str(source), str(painting), "-o", str(out), "--resume", *QUICK)
    assert resumed.returncode == 0, resumed.stderr
    assert not work.exists()
    clip = open_clip(out)
    assert clip.fps == 12 and clip.count == 4
    # the resumed run continues from the very frame the uninterrupted one warped from
    whole_frames = sorted(whole.iterdir())
    folder_out = tmp_path / "resumed-frames"
    write_clip(folder_out, clip.frames(), clip.fps)
    for a, b in zip(sorted(folder_out.iterdir()), whole_frames, strict=True):
        from PIL import Image

        diff = np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int)).mean()
        assert diff < 6  # only the mp4's lossy coding differs


def test_bad_video_inputs_fail_in_one_line(tmp_path, painting):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    proc = nst_video(str(junk), str(painting), "-o", str(tmp_path / "out.mp4"), *QUICK)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("nst video: error: input is neither")
    proc = nst_video(str(junk), str(painting), "-o", str(tmp_path / "out.doc"), *QUICK)
    assert proc.returncode == 1 and "cannot write frames" in proc.stderr
