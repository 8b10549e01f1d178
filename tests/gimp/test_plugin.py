"""End-to-end tests of python-fu-nst-style-transfer in real GIMP 3 (headless) with the real worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .gimp3_harness import STUB_PYTHON, Gimp3, Running

pytestmark = pytest.mark.gimp

# The interrupt tests that signal the processes directly (GIMP's cancel as a SIGKILL of the plug-in,
# a SIGTERM to the worker) and the tiled run test the plug-in's and the worker's own handling, the
# same on every GIMP: they run on GIMP 3.0 only, to keep the 3.2 run lean. The interrupts that go
# through GIMP itself (the status bar's Cancel, the dialog's Stop and Apply now) run on both.
ONE_GIMP = pytest.mark.gimp_versions("3.0")

PROC_ARGS = [
    "style-layer",
    "style-file",
    "strength",
    "size",
    "quality",
    "preserve-colors",
    "seed",
    "device",
    "use-selection",
    # appended by the live-dialog issue: optional, after today's arguments
    "style-layer-2",
    "style-file-2",
    "style-2-weight",
    "style-layer-3",
    "style-file-3",
    "style-3-weight",
    # appended by the regions issue
    "outside-selection",
    "style-2-channel",
    "style-3-channel",
    # appended by the full-resolution issue
    "max-memory",
]
FAST = {"size": 64, "quality": "draft", "seed": 1}
RUNTIME_HINT = "runtime not found: run `nst install-gimp-plugin`"


def pixels(info: dict) -> np.ndarray:
    """A layer dump of the batch driver as an (h, w, 4) uint8 array."""
    raw = Path(info["pixels"]).read_bytes()
    return np.frombuffer(raw, np.uint8).reshape(info["height"], info["width"], 4)


def mean_rgb_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).mean())


def scene(images: Path, tmp_path: Path, painting: bool = False, **spec: object) -> dict:
    """The golden gate photo (and the painting as a second layer, below it)."""
    base = {"action": "stylize", "content": str(images / "golden_gate.jpg"), "export": str(tmp_path / "out.png")}
    if painting:
        base["painting"] = str(images / "starry_night.jpg")
    return {**base, **spec}


def assert_sources_unchanged(before: list[dict], after: list[dict]) -> None:
    """Every layer that was there before is still there, with the same pixels."""
    by_name = {info["name"]: info for info in after}
    for info in before:
        assert info["name"] in by_name, f"layer {info['name']!r} disappeared"
        assert np.array_equal(pixels(info), pixels(by_name[info["name"]])), f"layer {info['name']!r} changed"


def assert_untouched(result: dict) -> None:
    """The image is exactly as it was: the same layers with the same pixels."""
    assert [i["name"] for i in result["layers_after"]] == [i["name"] for i in result["layers_before"]]
    assert_sources_unchanged(result["layers_before"], result["layers_after"])


def test_registration(gimp3: Gimp3, tmp_path: Path) -> None:
    result = gimp3.batch({"action": "registration"}, tmp_path).result
    assert result["registered"], "python-fu-nst-style-transfer is not registered"
    assert result["menu_paths"] == ["<Image>/Filters/Artistic"]
    assert result["menu_label"] == "Neural Style Transfer…"
    assert result["image_types"] == "RGB*"
    assert result["sensitivity"] & result["sensitivity_drawable"]
    assert result["sensitivity"] & result["sensitivity_drawables"]
    assert result["arguments"] == ["run-mode", "image", "drawables", *PROC_ARGS]
    assert result["choices"] == {
        "quality": {"nicks": ["draft", "normal", "high"], "default": "normal"},
        "preserve-colors": {"nicks": ["none", "luminance", "histogram"], "default": "none"},
        "device": {"nicks": ["auto", "cpu", "cuda", "openvino", "openvino-gpu"], "default": "auto"},
        "outside-selection": {"nicks": ["same", "keep", "second"], "default": "same"},
    }


def test_style_layer(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    spec = scene(images, tmp_path, painting=True, args={**FAST, "style-layer": "painting"})
    run = gimp3.batch(spec, tmp_path)
    result = run.result
    assert result["status"] == "success", result["message"]
    before, after = result["layers_before"], result["layers_after"]
    assert [i["name"] for i in after] == ["Painting — style", "Background", "Painting"]
    new, photo = after[0], before[0]
    assert (new["width"], new["height"], new["offsets"]) == (photo["width"], photo["height"], photo["offsets"])
    assert not new["has_mask"]
    assert mean_rgb_diff(pixels(new), pixels(photo)) > 8, "the result looks like the photo"
    assert (pixels(new)[..., 3] == 255).all(), "the photo is opaque, so is the result"
    assert_sources_unchanged(before, after)
    assert result["exported"]
    with Image.open(spec["export"]) as png:
        exported = np.asarray(png.convert("RGBA"))
    assert exported.shape == pixels(photo).shape
    assert np.abs(exported.astype(int) - pixels(new).astype(int)).max() <= 1, "the export is not the result"
    print(f"style-layer run: {run.seconds:.1f} s")


def test_style_file(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    spec = scene(images, tmp_path, args={**FAST, "style-file": str(images / "starry_night.jpg")})
    result = gimp3.batch(spec, tmp_path).result
    assert result["status"] == "success", result["message"]
    after = result["layers_after"]
    assert [i["name"] for i in after] == ["Starry Night — style", "Background"]
    assert mean_rgb_diff(pixels(after[0]), pixels(result["layers_before"][0])) > 8
    assert_sources_unchanged(result["layers_before"], after)
    assert Path(spec["export"]).stat().st_size > 0


def test_selection_limits_the_result(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    x, y, w, h, feather = 300, 200, 320, 260, 12
    spec = scene(
        images,
        tmp_path,
        selection=[x, y, w, h],
        feather=feather,
        args={**FAST, "style-file": str(images / "starry_night.jpg")},
    )
    result = gimp3.batch(spec, tmp_path).result
    assert result["status"] == "success", result["message"]
    new, photo = result["layers_after"][0], result["layers_before"][0]
    assert new["name"] == "Starry Night — style" and new["has_mask"]
    with Image.open(spec["export"]) as png:
        exported = np.asarray(png.convert("RGBA")).astype(int)
    source = pixels(photo).astype(int)
    margin = feather + 2
    outside = np.ones(source.shape[:2], bool)
    outside[y - margin : y + h + margin, x - margin : x + w + margin] = False
    assert np.abs(exported - source)[outside].max() <= 1, "pixels outside the selection changed"
    inner = (slice(y + margin, y + h - margin), slice(x + margin, x + w - margin))
    assert mean_rgb_diff(exported[inner], source[inner]) > 8, "the selection shows no style"


def test_several_layers_keep_offsets_size_and_alpha(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    spec = scene(
        images,
        tmp_path,
        painting=True,
        painting_scale=[320, 200],
        painting_offsets=[40, 30],
        painting_hole=[40, 30, 100, 60],
        drawables=["photo", "painting"],
        args={**FAST, "style-file": str(images / "the_scream.jpg")},
    )
    result = gimp3.batch(spec, tmp_path).result
    assert result["status"] == "success", result["message"]
    names = [i["name"] for i in result["layers_after"]]
    # GIMP keeps layer names unique: the second result is "The Scream — style #1"
    assert names[1::2] == ["Background", "Painting"]
    assert names[0] == "The Scream — style" and names[2].startswith("The Scream — style")
    for new, src in (
        (result["layers_after"][0], result["layers_after"][1]),
        (result["layers_after"][2], result["layers_after"][3]),
    ):
        assert (new["width"], new["height"], new["offsets"]) == (src["width"], src["height"], src["offsets"])
    painting, styled = pixels(result["layers_after"][3]), pixels(result["layers_after"][2])
    assert (painting[:60, :100, 3] == 0).all(), "the test painting should have a hole"
    assert np.array_equal(styled[..., 3], painting[..., 3]), "the source's alpha was not kept"
    assert_sources_unchanged(result["layers_before"], result["layers_after"])


def test_bad_style_file_is_an_error(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a painting\n")
    result = gimp3.batch(scene(images, tmp_path, args={**FAST, "style-file": str(notes)}), tmp_path).result
    assert result["status"] == "execution-error"
    assert "not an image" in (result["message"] or ""), result["message"]
    assert str(notes) in result["message"]
    assert_untouched(result)


def test_no_style_is_a_calling_error(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    result = gimp3.batch(scene(images, tmp_path, args=FAST), tmp_path).result
    assert result["status"] == "calling-error"
    assert "style" in (result["message"] or "")
    assert_untouched(result)


@pytest.mark.parametrize("python", ["/nonexistent/bin/python", "/usr/bin/python3"], ids=["missing", "no-nst_runtime"])
def test_runtime_not_found(gimp3: Gimp3, images: Path, tmp_path: Path, python: str) -> None:
    """NST_PYTHON names no Python, or one without nst_runtime (GIMP's own)."""
    spec = scene(images, tmp_path, args={**FAST, "style-file": str(images / "starry_night.jpg")})
    result = gimp3.batch(spec, tmp_path, {"NST_PYTHON": python}).result
    assert result["status"] == "execution-error"
    assert (result["message"] or "").startswith(RUNTIME_HINT), result["message"]
    assert_untouched(result)


# ------------------------------------------------------------------ cancel


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def find_descendant(root: int, needle: str) -> int | None:
    """A process below root whose command line contains needle (the worker, the plug-in)."""
    tree, todo = _children(), [root]
    while todo:
        pid = todo.pop()
        for child in tree.get(pid, []):
            try:
                cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                return child
            todo.append(child)
    return None


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def long_run_args(images: Path) -> dict:
    """Normal quality at the photo's own size: a run that lasts long enough to cancel."""
    return {"size": 0, "quality": "normal", "style-file": str(images / "starry_night.jpg")}


ITERATING = "[nst-style-transfer] worker progress:"  # the plug-in logs the worker's first progress event


def start_long_run(gimp3: Gimp3, images: Path, tmp_path: Path) -> tuple[Running, int]:
    """Start a long run and wait until the worker iterates; return the run and the worker's pid."""
    run = gimp3.start(scene(images, tmp_path, args=long_run_args(images)), tmp_path, {"NST_STUB_STEP_S": "3"})
    if not run.wait_for_line(ITERATING, 300):
        run.proc.kill()
        pytest.fail("the worker never reported progress:\n" + "".join(run.lines)[-3000:])
    worker = find_descendant(run.proc.pid, gimp3.worker_needle)
    assert worker is not None, "no worker process below GIMP"
    return run, worker


@ONE_GIMP
def test_gimp_cancel_stops_the_worker(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """GIMP cancels a plug-in by killing it; the worker must stop within a second, the image stay as it was."""
    run, worker = start_long_run(gimp3, images, tmp_path)
    plugin = find_descendant(run.proc.pid, "nst-style-transfer.py")
    assert plugin is not None
    os.kill(plugin, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_for(lambda: not alive(worker), 5), "the worker outlived the plug-in"
    assert time.monotonic() - killed < 1.0, f"the worker took {time.monotonic() - killed:.2f} s to stop"
    result = run.finish().result
    assert result["status"] != "success"
    assert_untouched(result)


def handles_sigterm(pid: int) -> bool:
    """Whether the process has installed its own SIGTERM handler (its SigCgt mask has the bit)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@ONE_GIMP
def test_worker_cancel_leaves_the_image_alone(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """A worker stopped by SIGTERM reports "cancelled": the procedure returns CANCEL and adds nothing."""
    run, worker = start_long_run(gimp3, images, tmp_path)
    assert handles_sigterm(worker), "the worker iterates without a SIGTERM handler"
    os.kill(worker, signal.SIGTERM)
    assert wait_for(lambda: not alive(worker), 1.0), "the worker ignored SIGTERM for a second"
    result = run.finish().result
    assert result["status"] == "cancel", result
    assert_untouched(result)


# ------------------------------------------------------------------ the GUI (the live dialog: test_live_dialog.py)


def test_progress_cancel_button_in_the_gui(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """The full GIMP GUI: Cancel on the status bar's progress stops the worker within a second."""
    spec = scene(images, tmp_path, gui="cancel", args=long_run_args(images))
    result = gimp3.batch(spec, tmp_path, {"NST_STUB_STEP_S": "3"}).result
    clicked, gone, plugin_gone = map(float, (tmp_path / "cancel.txt").read_text().split())
    print(f"plug-in gone {plugin_gone - clicked:.3f} s, worker gone {gone - clicked:.3f} s after the click")
    # GIMP itself may take a moment to handle the click on a loaded machine; from the moment it
    # has ended the plug-in, the worker has one second
    assert plugin_gone - clicked < 5.0, f"GIMP took {plugin_gone - clicked:.2f} s to end the plug-in"
    assert gone - plugin_gone < 1.0, f"the worker took {gone - plugin_gone:.2f} s to stop after the plug-in"
    assert result["status"] == "cancel", result
    assert_untouched(result)


def test_one_ctrl_z_removes_all_results(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """Two layers stylized inside a selection: a single Ctrl+Z in the GUI leaves the image as it was."""
    spec = scene(
        images,
        tmp_path,
        painting=True,
        painting_scale=[320, 200],
        drawables=["photo", "painting"],
        selection=[100, 100, 400, 300],
        feather=8,
        gui="undo",
        args={**FAST, "style-layer": "painting"},
    )
    result = gimp3.batch(spec, tmp_path).result
    assert result["status"] == "success", result["message"]
    assert len(result["layers_after"]) == 4 and all(i["has_mask"] for i in result["layers_after"][0::2])
    assert [i["name"] for i in result["layers_undone"]] == [i["name"] for i in result["layers_before"]]
    assert_sources_unchanged(result["layers_before"], result["layers_undone"])


@ONE_GIMP
def test_a_layer_at_its_own_size_computed_in_exact_tiles(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """Size 0 with tiles forced small (NST_TILE_SIZE, the worker's default for a front end without
    the field): the new layer has the layer's own size and is painted."""

    def small_scene(work: Path) -> dict:
        work.mkdir(exist_ok=True)
        with Image.open(images / "golden_gate.jpg") as im:
            im.convert("RGB").resize((96, 64)).save(work / "small.png")
        spec = scene(images, work, args={**FAST, "size": 0, "style-file": str(images / "starry_night.jpg")})
        return {**spec, "content": str(work / "small.png")}

    result = gimp3.batch(small_scene(tmp_path), tmp_path, extra_env={"NST_TILE_SIZE": "64"}).result
    assert result["status"] == "success", result["message"]
    new, source = result["layers_after"][0], result["layers_before"][0]
    assert (new["width"], new["height"]) == (source["width"], source["height"]) == (96, 64)
    assert mean_rgb_diff(pixels(new), pixels(source)) > 8, "the result looks like the photo"
    assert_sources_unchanged(result["layers_before"], result["layers_after"])
    # the variable does reach the worker through GIMP and the plug-in: a bad one is its error
    bad = tmp_path / "bad"
    refused = gimp3.batch(small_scene(bad), bad, extra_env={"NST_TILE_SIZE": "big"}).result
    assert refused["status"] != "success" and "NST_TILE_SIZE" in refused["message"], refused
    assert_untouched(refused)


def test_the_memory_budget_argument_reaches_the_worker(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """Memory budget (MiB) is the request's max_memory; 0 leaves it to the worker (a safe share)."""
    import json

    sent = {}
    for budget in (1500, 0):
        work = tmp_path / str(budget)
        work.mkdir()
        requests = work / "requests.jsonl"
        spec = scene(images, work, args={**FAST, "style-file": str(images / "starry_night.jpg"), "max-memory": budget})
        env = {"NST_PYTHON": str(STUB_PYTHON), "NST_STUB_REQUEST": str(requests)}
        result = gimp3.batch(spec, work, env).result
        assert result["status"] == "success", result["message"]
        sent[budget] = json.loads(requests.read_text().splitlines()[0])["options"]
    assert sent[1500]["max_memory"] == "1500M"
    assert "max_memory" not in sent[0]
