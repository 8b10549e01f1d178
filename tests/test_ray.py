"""``nst batch --ray`` on a real local Ray instance that this module starts and stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import shared_image

# Ray binds to the loopback address only, never to the machine's network interface.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

QUICK = ["--size", "40", "--steps", "2", "--seed", "7"]


@pytest.fixture(scope="module")
def cluster() -> str:
    """A two-CPU local instance; its address is what a user would pass to --ray."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    sources = ("golden_gate.jpg", "chelsea.png", "coffee.png", "astronaut.png")
    for i, source in enumerate(sources):
        Image.open(shared_image(source)).convert("RGB").resize((48, 36)).save(folder / f"p{i}.png")
    (folder / "p9-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    return folder


def nst_batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nst_runtime", "batch", *args], capture_output=True, text=True, timeout=600
    )


def test_ray_batch_equals_the_local_batch_and_a_bad_file_fails_alone(tmp_path, cluster, photos):
    style = str(shared_image("starry_night.jpg"))
    local = nst_batch(str(photos), "--style", style, "-o", str(tmp_path / "local"), "-q", *QUICK)
    on_ray = nst_batch(str(photos), "--style", style, "-o", str(tmp_path / "ray"), "--ray", cluster, *QUICK)
    assert local.returncode == 1 and on_ray.returncode == 1, on_ray.stderr
    assert "Traceback" not in on_ray.stderr
    for i in range(4):
        assert (tmp_path / "ray" / f"p{i}.png").read_bytes() == (tmp_path / "local" / f"p{i}.png").read_bytes()
    summary = json.loads((tmp_path / "ray" / "nst-batch-summary.json").read_text())
    assert summary["counts"] == {"done": 4, "skipped": 0, "failed": 1, "cancelled": 0}
    [failed] = [j for j in summary["jobs"] if j["status"] == "failed"]
    assert failed["input"].endswith("p9-broken.png") and "not an image" in failed["message"]
    assert "p9-broken.png" in on_ray.stderr.strip().splitlines()[-1]


def test_a_killed_worker_is_retried_and_the_batch_completes(tmp_path, cluster, photos):
    style = str(shared_image("starry_night.jpg"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nst_runtime", "batch", str(photos / "p0.png"), str(photos / "p1.png")]
    # Long enough (600 steps) that the driver sees "started" well before the task could finish:
    # with 40 steps a quiet CI machine finished p0 in 3.8 s, before the kill, and nothing was retried.
    cmd += ["--style", style, "-o", str(out), "--ray", cluster, "--size", "64", "--steps", "600"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    victim, lines = None, []
    while victim is None:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "".join(lines)
        lines.append(line)
        if "started p0.png on" in line:
            victim = int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
    os.kill(victim, signal.SIGKILL)
    rest = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, "".join(lines) + rest
    assert rest.count("started p0.png on") >= 1  # started again on another worker
    summary = json.loads((out / "nst-batch-summary.json").read_text())
    assert summary["counts"]["done"] == 2
    with Image.open(out / "p0.png") as im:
        assert im.size == (48, 36)


def test_an_unreachable_cluster_is_one_line(tmp_path, photos):
    proc = nst_batch(str(photos / "p0.png"), "--style", str(photos / "p1.png"), "-o", str(tmp_path / "o"),
                     "--ray", "127.0.0.1:1", *QUICK)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("nst batch: error: cannot reach the Ray cluster")


def test_plan_segments_splits_shots_with_warmup_inside_the_shot():
    from nst_runtime.jobs.cluster import plan_segments

    plan = [(s.first, s.start, s.end) for s in plan_segments(10, [0, 6], length=4, overlap=2)]
    assert plan == [(0, 0, 4), (2, 4, 6), (6, 6, 10)]


def test_a_video_with_two_shots_runs_as_segments_on_the_cluster(tmp_path, cluster):
    from fractions import Fraction

    import numpy as np

    from nst_runtime.imaging.frameio import open_clip, write_clip

    def pan(name: str, count: int) -> list[np.ndarray]:
        with Image.open(shared_image(name)) as im:
            big = np.asarray(im.convert("RGB").resize((48 + 2 * count, 36)))
        return [np.ascontiguousarray(big[:, 2 * t : 2 * t + 48]) for t in range(count)]

    write_clip(tmp_path / "in.mp4", pan("golden_gate.jpg", 3) + pan("coffee.png", 3), Fraction(6))
    proc = subprocess.run(
        [sys.executable, "-m", "nst_runtime", "video", str(tmp_path / "in.mp4"), str(shared_image("starry_night.jpg")),
         "-o", str(tmp_path / "out.mp4"), "--ray", cluster, "--segment", "2", "--overlap", "1",
         "--size", "48", "--steps", "2", "--frame-steps", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "6 frames, 2 shot(s), 4 task(s)" in proc.stderr
    clip = open_clip(tmp_path / "out.mp4")
    assert clip.count == 6 and clip.fps == 6
