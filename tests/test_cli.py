"""``nst`` and the worker as users and the plug-in meet them: real processes, real weights."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_image
from nst_runtime.errors import NSTError

QUICK = ["--size", "48", "--steps", "2"]


def nst(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nst_runtime", *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode not in (0, None)
    message = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert message.startswith("nst: error:"), proc.stderr
    for word in words:
        assert word in message, message


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "photo.png"
    Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((80, 60)).save(path)
    return path


@pytest.fixture(scope="module")
def painting() -> Path:
    return shared_image("starry_night.jpg")


def test_writes_the_result_in_the_format_of_its_extension(tmp_path, photo, painting):
    out = tmp_path / "result.jpg"
    proc = nst(str(photo), str(painting), "-o", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (80, 60)
    assert [p.name for p in tmp_path.iterdir()] == ["result.jpg"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.jpg", ["content file not found"]),
        (lambda d: _write(d / "empty.png", b""), ["content file is empty"]),
        (lambda d: _write(d / "notes.png", b"just some text\n"), ["content file is not an image"]),
        (lambda d: _write(d / "cut.jpg", shared_image("golden_gate.jpg").read_bytes()[:3000]), ["truncated"]),
    ],
)
def test_bad_content_files(tmp_path, painting, make, words):
    out = tmp_path / "out" / "r.png"
    out.parent.mkdir()
    proc = nst(str(make(tmp_path)), str(painting), "-o", str(out))
    assert_one_line_error(proc, *words)
    assert not any(out.parent.iterdir())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--style-weight", "-1"], ["style-weight"]),
        (["--size", "16"], ["size must be at least 32"]),
        (["--style-blend", "0.5,0.3,0.2"], ["style-blend has 3 weights for 1"]),
        (["--device", "tpu"], ["device"]),
        (["--quality", "best"], ["quality"]),
    ],
)
def test_nonsense_options(tmp_path, photo, painting, options, words):
    proc = nst(str(photo), str(painting), "-o", str(tmp_path / "r.png"), *options)
    assert_one_line_error(proc, *words)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("role", ["content", "style", "init"])
def test_refuses_to_overwrite_an_input_file_unless_asked(tmp_path, photo, painting, role):
    content, style = tmp_path / "photo.png", tmp_path / "style.png"
    content.write_bytes(photo.read_bytes())
    Image.open(painting).convert("RGB").resize((64, 40)).save(style)
    init = tmp_path / "init.png"
    init.write_bytes(content.read_bytes())
    target = {"content": content, "style": style, "init": init}[role]
    before = target.read_bytes()
    args = [str(content), str(style), "--init", str(init), *QUICK]
    proc = nst(*args, "-o", str(target))
    assert_one_line_error(proc, "overwrite", role, str(target))
    assert target.read_bytes() == before
    proc = nst(*args, "-o", str(tmp_path / "." / target.name), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() != before


def test_missing_output_dir_fails_before_compute(tmp_path, photo, painting):
    started = time.perf_counter()
    proc = nst(str(photo), str(painting), "-o", str(tmp_path / "no" / "such" / "r.png"))
    assert_one_line_error(proc, "output directory does not exist")
    assert "step" not in proc.stderr
    assert time.perf_counter() - started < 60


def test_ctrl_c_stops_within_a_second_and_writes_nothing(tmp_path, photo, painting):
    out = tmp_path / "r.png"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nst_runtime",
            str(photo),
            str(painting),
            "-o",
            str(out),
            "--size",
            "256",
            "--steps",
            "1000",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = ""
    while "step" not in line:  # wait until it is optimising
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "nst ended before optimising"
    proc.send_signal(signal.SIGINT)
    started = time.perf_counter()
    rest = proc.communicate(timeout=10)[1]
    assert time.perf_counter() - started < 1.5
    assert proc.returncode == 130
    assert "cancelled" in rest and "Traceback" not in rest
    assert not list(tmp_path.iterdir())


def worker(request: dict | str, timeout: float = 300) -> tuple[int, list[dict]]:
    text = request if isinstance(request, str) else json.dumps(request)
    proc = subprocess.run(
        [sys.executable, "-m", "nst_runtime.worker"], input=text, capture_output=True, text=True, timeout=timeout
    )
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_worker_round_trips_raw_rgba_and_keeps_alpha(painting):
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    code, lines = worker(
        {
            "content": {"rgba": base64.b64encode(rgba.tobytes()).decode(), "width": 40, "height": 30},
            "styles": [{"path": str(painting)}],
            "options": {"size": 40, "steps": 2, "quality": "draft", "strength": 0.5},
        }
    )
    assert code == 0, lines[-1]
    progress = [e for e in lines if e.get("event") == "progress"]
    assert progress and progress[-1]["fraction"] == 1.0 and "scale 1/1" in progress[-1]["message"]
    done = lines[-1]["done"]
    result = np.frombuffer(base64.b64decode(done["rgba"]), np.uint8).reshape(30, 40, 4)
    assert (done["width"], done["height"]) == (40, 30)
    assert np.array_equal(result[..., 3], rgba[..., 3])


def test_worker_hands_pixels_over_in_raw_files_and_takes_a_memory_budget(tmp_path, painting):
    """The plug-in's file hand-off (no base64 at photo sizes), with max_memory and a forced tile."""
    rgba = np.random.default_rng(8).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    layer, result = tmp_path / "layer.rgba", tmp_path / "result.rgba"
    layer.write_bytes(rgba.tobytes())
    code, lines = worker(
        {
            "content": {"rgba_path": str(layer), "width": 40, "height": 30},
            "styles": [{"path": str(painting)}],
            "options": {"size": 0, "steps": 1, "max_memory": "4G", "tile_size": 64},
            "output": {"rgba_path": str(result)},
        }
    )
    assert code == 0, lines[-1]
    done = lines[-1]["done"]
    assert (done["width"], done["height"], done["rgba_path"]) == (40, 30, str(result))
    out = np.frombuffer(result.read_bytes(), np.uint8).reshape(30, 40, 4)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    code, lines = worker({"content": {"rgba_path": str(layer), "width": 41, "height": 30}, "styles": [{"path": "x"}]})
    assert code == 1 and "expected 41×30×4" in lines[-1]["error"]
    code, lines = worker(
        {"content": {"rgba_path": str(layer), "width": 40, "height": 30}, "styles": [{"path": str(painting)}],
         "options": {"max_memory": "lots"}}
    )  # fmt: skip
    assert code == 1 and "max-memory" in lines[-1]["error"]


def test_worker_takes_budget_and_tile_defaults_from_the_environment(monkeypatch, photo, painting):
    from nst_runtime.worker.stylize import parse_request

    request = json.dumps({"content": {"path": str(photo)}, "styles": [{"path": str(painting)}]})
    monkeypatch.setenv("NST_MAX_MEMORY", "3G")
    monkeypatch.setenv("NST_TILE_SIZE", "128")
    options = parse_request(request)[2]
    assert (options.max_memory, options.tile_size) == (3 << 30, 128)
    own = json.dumps(
        {"content": {"path": str(photo)}, "styles": [{"path": str(painting)}], "options": {"tile_size": 256}}
    )
    assert parse_request(own)[2].tile_size == 256
    monkeypatch.setenv("NST_TILE_SIZE", "big")
    with pytest.raises(NSTError, match="NST_TILE_SIZE"):
        parse_request(request)


def test_worker_reports_a_bad_style_file_in_one_line(tmp_path, photo):
    bad = _write(tmp_path / "style.png", b"%PDF-1.4 not an image")
    code, lines = worker({"content": {"path": str(photo)}, "styles": [{"path": str(bad)}]})
    assert code == 1
    assert lines == [{"error": f"style file is not an image: {bad}"}]


def test_worker_rejects_malformed_requests():
    code, lines = worker("{not json")
    assert code == 1 and lines[-1]["error"].startswith("request is not valid JSON")


def test_worker_stops_within_a_second_on_sigterm(photo, painting):
    request = {
        "content": {"path": str(photo)},
        "styles": [{"path": str(painting)}],
        "options": {"size": 256, "steps": 1000},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "nst_runtime.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    while '"progress"' not in proc.stdout.readline():
        assert proc.poll() is None, "worker ended before optimising"
    os.kill(proc.pid, signal.SIGTERM)
    started = time.perf_counter()
    rest = proc.stdout.read()
    proc.wait(10)
    assert time.perf_counter() - started < 1.5
    assert proc.returncode == 130
    assert json.loads(rest.strip().splitlines()[-1]) == {"error": "cancelled"}


def test_an_eta_of_hours_shows_its_hours():
    from nst_runtime.units import format_clock

    assert (format_clock(68), format_clock(3754.4), format_clock(float("nan"))) == ("01:08", "1:02:34", "?")


# --- regions: --masks and the worker's "masks" -----------------------------------------------------


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> tuple[Path, Path]:
    """A left and a right mask for the 80×60 photo; the right one at half size (resized, with a note)."""
    folder = tmp_path_factory.mktemp("masks")
    left = np.zeros((60, 80), np.uint8)
    left[:, :40] = 255
    Image.fromarray(left, "L").save(folder / "left.png")
    Image.fromarray(255 - left, "L").resize((40, 30), Image.Resampling.NEAREST).save(folder / "right.png")
    return folder / "left.png", folder / "right.png"


def test_masks_give_each_style_its_region(tmp_path, photo, painting, halves):
    other = shared_image("the_scream.jpg")
    out = tmp_path / "regions.png"
    masks = f"{halves[0]},{halves[1]}"
    proc = nst(str(photo), str(painting), str(other), "--masks", masks, "-o", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert f"note: {halves[1]} is 40×30 but the content is 80×60: resized to fit" in proc.stderr
    with Image.open(out) as im:
        assert im.size == (80, 60)


def test_one_mask_keeps_the_photo_outside(tmp_path, photo, painting, halves):
    out = tmp_path / "inside.png"
    proc = nst(str(photo), str(painting), "--masks", str(halves[0]), "-o", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    result, original = (np.asarray(Image.open(p).convert("RGB"), np.int16) for p in (out, photo))
    assert np.abs(result[:, 40:] - original[:, 40:]).max() <= 2
    assert np.abs(result[:, :40] - original[:, :40]).mean() > 2


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: _write(d / "sky.png", b"a text file"), ["mask file is not an image", "sky.png"]),
        (lambda d: d / "gone.png", ["mask file not found", "gone.png"]),
        (lambda d: _saved(d / "black.png", np.zeros((60, 80), np.uint8)), ["mask is empty", "black.png"]),
    ],
)
def test_bad_mask_files(tmp_path, photo, painting, make, words):
    out = tmp_path / "out" / "r.png"
    out.parent.mkdir()
    proc = nst(str(photo), str(painting), "--masks", str(make(tmp_path)), "-o", str(out))
    assert_one_line_error(proc, *words)
    assert not any(out.parent.iterdir())


def test_a_mask_count_that_does_not_match_the_styles(tmp_path, photo, painting, halves):
    proc = nst(str(photo), str(painting), "--masks", f"{halves[0]},{halves[1]}", "-o", str(tmp_path / "r.png"))
    assert_one_line_error(proc, "--masks names 2 file(s) for 1 style image(s)")


def _saved(path: Path, grey: np.ndarray) -> Path:
    Image.fromarray(grey, "L").save(path)
    return path


def test_worker_takes_masks_as_images(photo, painting, halves):
    other = shared_image("the_scream.jpg")
    mask = np.zeros((30, 40, 4), np.uint8)
    mask[:, :20] = 255
    mask[..., 3] = 255
    rgba = {"rgba": base64.b64encode(mask.tobytes()).decode(), "width": 40, "height": 30}
    request = {
        "content": {"path": str(photo)},
        "styles": [{"path": str(painting)}, {"path": str(other)}],
        "masks": [rgba, {"path": str(halves[1])}],
        "options": {"size": 40, "steps": 2},
    }
    code, lines = worker(request)
    assert code == 0, lines[-1]
    assert lines[-1]["done"]["width"] == 80
    code, lines = worker({**request, "masks": [rgba]})
    assert code == 1 and lines == [{"error": "'masks' has 1 entries for 2 style image(s): give one per style"}]
