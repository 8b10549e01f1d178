"""``nst batch`` as a user meets it: real processes, real weights, tiny photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import shared_image

QUICK = ["--size", "40", "--steps", "2", "-q"]


def nst_batch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nst_runtime", "batch", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name, source in (("bridge.png", "golden_gate.jpg"), ("cat.jpg", "chelsea.png"), ("cup.png", "coffee.png")):
        Image.open(shared_image(source)).convert("RGB").resize((48, 36)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def painting() -> Path:
    return shared_image("starry_night.jpg")


def summary(outdir: Path) -> dict:
    return json.loads((outdir / "nst-batch-summary.json").read_text())


def test_a_folder_and_a_bad_file_one_failure_named_the_rest_written(tmp_path, photos, painting):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    out = tmp_path / "out"
    proc = nst_batch(str(photos), str(bad), "--style", str(painting), "-o", str(out), *QUICK)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["bridge.png", "cat.jpg", "cup.png", "nst-batch-summary.json"]
    result = summary(out)
    assert result["counts"] == {"done": 3, "skipped": 0, "failed": 1, "cancelled": 0}
    failed = [j for j in result["jobs"] if j["status"] == "failed"]
    assert failed[0]["input"] == str(bad) and "not an image" in failed[0]["message"]
    assert f"failed: {bad}" in proc.stderr
    with Image.open(out / "cat.jpg") as im:
        assert im.format == "JPEG" and im.size == (48, 36)


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, photos, painting):
    out = tmp_path / "out"
    out.mkdir()
    (out / "bridge.png").write_bytes(b"keep me")
    proc = nst_batch(str(photos / "bridge.png"), "--style", str(painting), "-o", str(out), *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert (out / "bridge.png").read_bytes() == b"keep me"
    assert summary(out)["counts"]["skipped"] == 1
    proc = nst_batch(str(photos / "bridge.png"), "--style", str(painting), "-o", str(out), "--overwrite", *QUICK)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out / "bridge.png") as im:
        assert im.size == (48, 36)


def test_same_names_from_two_folders_do_not_collide_and_format_is_forced(tmp_path, photos, painting):
    other = tmp_path / "other"
    other.mkdir()
    Image.open(photos / "bridge.png").save(other / "bridge.png")
    out = tmp_path / "out"
    proc = nst_batch(
        str(photos / "bridge.png"), str(other / "bridge.png"), "--style", str(painting), "--style", str(painting),
        "--style-blend", "0.5,0.5", "-o", str(out), "--format", "webp", *QUICK,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["bridge-2.webp", "bridge.webp", "nst-batch-summary.json"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--format", "xyz"], "extension"),
        (["--style-weight", "-1"], "style-weight"),
    ],
)
def test_bad_settings_fail_the_batch_at_once_in_one_line(tmp_path, photos, painting, args, words):
    proc = nst_batch(str(photos), "--style", str(painting), "-o", str(tmp_path / "out"), *args, *QUICK)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("nst batch: error:") and words in last, proc.stderr


def test_a_missing_style_fails_before_any_photo(tmp_path, photos):
    proc = nst_batch(str(photos), "--style", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "out"), *QUICK)
    assert proc.returncode == 1 and "style file not found" in proc.stderr
    assert not any((tmp_path / "out").glob("*.png"))
