"""What ``--device auto`` means (issue 23): the choice between MLAS and OpenVINO's bf16 schedule,
stored per machine, tested with fake timings and without OpenVINO."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_estimate import SPEED

from nst_runtime import NSTError
from nst_runtime.engine import timing
from nst_runtime.options import make_options
from nst_runtime.planning.schedule import PRESETS, plan_scales
from nst_runtime.vgg import devices, sessions

CPU_SPEED = dataclasses.replace(SPEED, key="cpu", detail=timing.Curve(((10_000, 0.01), (200_000, 0.18))))


def scaled_prices(ratio: float) -> dict[str, timing.Curve]:
    """MLAS's evaluation prices (full and detail) times ``ratio``."""

    def scaled(curve: timing.Curve) -> timing.Curve:
        return timing.Curve(tuple((p, t * ratio) for p, t in curve.points))

    return {"evaluation": scaled(CPU_SPEED.evaluation), "detail": scaled(CPU_SPEED.detail)}


def fast_speed(ratio: float, startup_s: float = 5.0) -> timing.Speed:
    """MLAS's prices with a lower precision whose evaluations take ``ratio`` of MLAS's time."""
    prices = scaled_prices(ratio)
    return dataclasses.replace(
        CPU_SPEED,
        device="openvino-bf16+cpu",
        key="openvino",
        startup_s=startup_s,
        fast=prices["evaluation"],
        detail=prices["detail"],
    )


@pytest.mark.parametrize(
    ("cpu", "openvino", "amx", "chosen"),
    [
        (100.0, 50.0, True, "openvino"),
        (100.0, 90.0, True, "openvino"),  # exactly the margin
        (100.0, 95.0, True, "cpu"),  # faster, but not clearly: not worth a second set of sessions
        (100.0, 120.0, True, "cpu"),
        (100.0, 50.0, False, "cpu"),  # never bf16 without AMX, whatever was measured
        (100.0, None, True, "cpu"),  # OpenVINO could not be measured (not installed)
        (100.0, float("nan"), True, "cpu"),
    ],
)
def test_auto_takes_openvino_only_where_it_was_measured_clearly_faster_with_amx(cpu, openvino, amx, chosen):
    assert devices.choose(cpu, openvino, amx) == chosen


@pytest.mark.parametrize(
    ("openvino", "amx", "gpu", "chosen"),
    [
        (50.0, True, 30.0, "openvino-gpu"),  # an Intel GPU measured fastest
        (30.0, True, 50.0, "openvino"),
        (None, False, 50.0, "openvino-gpu"),  # a GPU needs no AMX
        (50.0, False, 95.0, "cpu"),  # bf16 not without AMX, the GPU not clearly faster
        (None, True, float("nan"), "cpu"),
    ],
)
def test_auto_takes_an_intel_gpu_by_the_same_rule(openvino, amx, gpu, chosen):
    assert devices.choose(100.0, openvino, amx, gpu) == chosen


def _listed(*names: str) -> list:
    return [SimpleNamespace(ep_metadata={"ov_device": name}) for name in names]


def test_openvino_picks_its_gpu_device_where_listed_and_refuses_in_one_line_where_not():
    assert sessions.pick_openvino_device(_listed("CPU", "GPU.0"), "GPU").ep_metadata["ov_device"] == "GPU.0"
    assert sessions.pick_openvino_device(_listed("CPU", "GPU"), "CPU").ep_metadata["ov_device"] == "CPU"
    with pytest.raises(NSTError) as refused:
        sessions.pick_openvino_device(_listed("CPU", "NPU"), "GPU")
    assert str(refused.value) == "OpenVINO is not available on an Intel GPU: it found none here (its devices: CPU, NPU)"
    assert sessions.openvino_precision("openvino-gpu") == "f32"
    assert devices.precisions("openvino-gpu") == ("openvino-gpu", None)  # one precision, no MLAS split


def test_precisions_split_openvino_into_mlas_fp32_and_bf16_only_with_amx(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    monkeypatch.setattr(devices, "openvino_precision", lambda d: "bf16")
    assert devices.precisions("openvino") == ("cpu", "openvino-bf16")
    assert devices.precisions("cpu") == ("cpu", None)  # --device cpu stays fp32 MLAS
    assert devices.precisions("openvino-bf16") == ("openvino-bf16", None)
    assert devices.precisions("openvino-f32") == ("openvino-f32", None)
    monkeypatch.setattr(devices, "openvino_precision", lambda d: "f32")  # a CPU without AMX
    assert devices.precisions("openvino") == ("openvino", None)


def _store(path: Path, device: str, key: str | None = None) -> None:
    path.write_text(json.dumps({key or devices.machine_key(): {"device": device}}))


def test_auto_resolves_to_the_stored_choice_of_this_machine_only(monkeypatch, tmp_path):
    path = tmp_path / devices.CHOICE_FILE
    monkeypatch.setattr(devices, "cuda_usable", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    assert devices.resolve("auto", path) == "auto"  # nothing stored: MLAS (or CUDA), as before
    _store(path, "openvino")
    assert devices.resolve("auto", path) == "openvino"
    assert devices.resolve("cpu", path) == "cpu"
    _store(path, "openvino", key="another CPU | amx_bf16 | 2 cores")
    assert devices.resolve("auto", path) == "auto"
    _store(path, "cpu")
    assert devices.resolve("auto", path) == "auto"
    _store(path, "openvino")
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: False)  # a stale record can never bring bf16 without AMX
    assert devices.resolve("auto", path) == "auto"
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    monkeypatch.setattr(devices, "cuda_usable", lambda: True)
    assert devices.resolve("auto", path) == "auto"  # CUDA where usable, as before


def test_the_machine_key_names_the_cpu_its_bf16_flags_and_the_versions(monkeypatch):
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "amx_bf16", "sse4_2"}))
    key = devices.machine_key()
    assert devices.cpu_model() in key and "avx2,avx512f,amx_bf16 |" in key and "sse4_2" not in key
    assert "onnxruntime " in key and "openvino-ep " in key and "nst-graphs/" in key
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2"}))
    assert devices.machine_key() != key


@pytest.fixture
def calibrations(monkeypatch, tmp_path):
    """auto_device with fake calibrations: MLAS's prices and OpenVINO's at ``ratio`` of them."""
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("nst_runtime.vgg.sessions.cuda_usable", lambda: False)
    monkeypatch.setattr("nst_runtime.vgg.devices.cuda_usable", lambda: False)
    state = {"amx": True, "ratio": 0.4, "calibrated": [], "listed": {"CPU"}, "gpu_ratio": 0.3}
    available = lambda kind="CPU": kind in state["listed"]  # noqa: E731  OpenVINO's devices here
    monkeypatch.setattr("nst_runtime.vgg.sessions.openvino_available", available)
    monkeypatch.setattr(devices, "openvino_available", available)
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: state["amx"])

    def calibrate(options, *_args, **_kwargs):
        state["calibrated"].append(options.device)
        if options.device == "openvino-gpu":
            return dataclasses.replace(CPU_SPEED, **scaled_prices(state["gpu_ratio"]), device="openvino-gpu")
        return CPU_SPEED if options.device == "cpu" else fast_speed(state["ratio"])

    monkeypatch.setattr(timing, "calibrate", calibrate)
    return state


def test_auto_measures_both_paths_once_and_keeps_the_faster(calibrations):
    assert timing.auto_device(make_options()) == "openvino"
    assert calibrations["calibrated"] == ["cpu", "openvino"]
    record = devices.read_choices()[devices.machine_key()]
    assert record["device"] == "openvino" and record["seconds_512px"]["openvino"] < record["seconds_512px"]["cpu"]
    assert timing.auto_device(make_options()) == "openvino"  # stored: nothing measured again
    assert calibrations["calibrated"] == ["cpu", "openvino"]
    assert devices.resolve("auto") == "openvino"


def test_auto_measures_an_intel_gpu_where_openvino_lists_one_and_forgets_it_once_gone(calibrations):
    calibrations["listed"] = {"CPU", "GPU"}
    assert timing.auto_device(make_options()) == "openvino-gpu"
    assert calibrations["calibrated"] == ["cpu", "openvino", "openvino-gpu"]
    assert devices.resolve("auto") == "openvino-gpu"
    calibrations["listed"] = {"CPU"}  # the GPU gone (a driver removed): MLAS, until measured again
    assert devices.resolve("auto") == "auto"
    assert timing.auto_device(make_options()) == "cpu"


def test_auto_keeps_mlas_where_openvino_was_not_faster(calibrations):
    calibrations["ratio"] = 1.2
    assert timing.auto_device(make_options()) == "cpu"
    assert devices.resolve("auto") == "auto"  # that is, MLAS


def test_auto_never_measures_bf16_without_amx(calibrations):
    calibrations["amx"] = False
    assert timing.auto_device(make_options()) == "cpu"
    assert calibrations["calibrated"] == ["cpu"]


def test_the_estimate_prices_the_fast_steps_at_the_lower_precisions_speed():
    options = make_options(quality="draft")
    plan = plan_scales(options, 384, 512)
    top = plan[-1]
    assert all(s.exact_steps == 0 for s in plan[:-1])
    assert top.exact_steps == (PRESETS["draft"].exact_final_steps or top.steps)
    fp32 = timing.estimate(384, 512, options, 1, CPU_SPEED, load_now=None)
    half = timing.estimate(384, 512, options, 1, fast_speed(0.5, startup_s=CPU_SPEED.startup_s), load_now=None)
    assert half.seconds < fp32.seconds
    assert [s.fast_evaluations for s in half.scales[:-1]] == [s.evaluations for s in half.scales[:-1]]
    assert half.scales[-1].fast_evaluations < half.scales[-1].evaluations  # the top's fp32 steps
    assert all(s.fast_evaluations == 0 for s in fp32.scales)


def count_evaluations(monkeypatch, targets: str = "fp32") -> list[tuple[str, str, int]]:
    """Two MLAS VGGs stand for fp32 ("cpu") and the lower precision ("auto"); the list fills with
    (loss or forward, which graphs, the image's width) for every evaluation of a run."""
    from nst_runtime.engine import coarse_to_fine, runner
    from nst_runtime.vgg.features import VGG, get_vgg
    from nst_runtime.vgg.graphs import DETAIL_LAYERS

    monkeypatch.setattr(runner, "precisions", lambda device: ("cpu", "auto"))
    monkeypatch.setattr(coarse_to_fine, "FAST_TARGETS", targets)
    exact, fast, fast_detail = (
        get_vgg(device="cpu"),
        get_vgg(device="auto"),
        get_vgg(layers=DETAIL_LAYERS, device="auto"),
    )
    names = {id(exact): "exact", id(fast): "fast", id(fast_detail): "fast detail"}
    seen: list[tuple[str, str, int]] = []
    loss_and_grad, forward = VGG.loss_and_grad, VGG.forward

    def counted_loss_and_grad(self, image, targets, graph="fused"):
        seen.append(("loss", names.get(id(self), "other"), image.shape[3]))
        return loss_and_grad(self, image, targets, graph)

    def counted_forward(self, image):
        seen.append(("forward", names.get(id(self), "other"), image.shape[3]))
        return forward(self, image)

    monkeypatch.setattr(VGG, "loss_and_grad", counted_loss_and_grad)
    monkeypatch.setattr(VGG, "forward", counted_forward)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("targets", ["fp32", "own"])
def test_the_engine_runs_the_fast_steps_on_the_lower_precisions_graphs(monkeypatch, targets):
    """The scales below the top and every detail pass evaluate on the lower precision, the top's
    full pass on fp32; the targets come from fp32's graphs (the default) or from each precision's own."""
    from conftest import shared_image
    from nst_runtime.engine import runner

    seen = count_evaluations(monkeypatch, targets)
    options = make_options(size=128, quality="draft", device="openvino")
    result = runner.run(shared_image("golden_gate.jpg"), [shared_image("starry_night.jpg")], options)
    top = result.scales[-1]
    assert [s.width for s in result.scales] == [32, 64, 128] and top.exact_steps == top.steps
    loss_at = {(who, width) for kind, who, width in seen if kind == "loss"}
    assert loss_at == {("fast", 32), ("fast", 64), ("fast detail", 64), ("fast detail", 128), ("exact", 128)}
    targets_at = {(who, width) for kind, who, width in seen if kind == "forward"}
    if targets == "own":
        assert {("fast", 32), ("fast", 64), ("fast", 128), ("exact", 128)} <= targets_at  # the top: both precisions'
        assert ("exact", 64) not in targets_at
    else:
        assert {("exact", 32), ("exact", 64), ("exact", 128)} <= targets_at
        assert not {who for who, _ in targets_at} & {"fast", "fast detail"}
    exact_evaluations = sum(1 for kind, who, width in seen if kind == "loss" and who == "exact")
    assert top.steps <= exact_evaluations <= top.steps + 4
    assert result.device == "cpu"  # both MLAS here: "openvino-bf16+cpu" on OpenVINO


def test_look_scales_below_the_top_take_the_lower_precision():
    options = make_options(quality="draft", size=0)
    plan = plan_scales(options, 1536, 2048)
    looks = [s for s in plan if s.look is not None]
    assert [s.width for s in looks] == [1024, 2048]
    assert looks[0].fast_steps == looks[0].steps > 0
    assert looks[-1].fast_steps == 0  # the top's full pass in fp32, as a preview's top
    fp32 = timing.estimate(1536, 2048, options, 1, CPU_SPEED, load_now=None)
    half = timing.estimate(1536, 2048, options, 1, fast_speed(0.5, startup_s=CPU_SPEED.startup_s), load_now=None)
    assert half.scales[-2].seconds < fp32.scales[-2].seconds
    assert half.scales[-2].fast_evaluations == half.scales[-2].evaluations
    # where the memory plan tiles a scale, it runs in fp32 (OpenVINO's tiles were no faster and
    # held twice the budget), and the estimate plans the memory to price it so
    assert dataclasses.replace(looks[0], tiles=4).fast_steps == 0
    tight = dataclasses.replace(options, max_memory=6 * 2**30)  # as in bench/full_resolution.py
    tiled = timing.estimate(3000, 4000, tight, 1, fast_speed(0.5, startup_s=CPU_SPEED.startup_s), load_now=None)
    assert [s.width for s in tiled.scales[-3:]] == [1016, 2016, 4000]
    assert tiled.scales[-3].fast_evaluations == tiled.scales[-3].evaluations  # whole: bf16
    assert tiled.scales[-2].fast_evaluations == tiled.scales[-1].fast_evaluations == 0  # tiled: fp32


@pytest.mark.slow
def test_a_look_scale_below_the_top_evaluates_itself_and_its_look_in_the_lower_precision(monkeypatch):
    from PIL import Image

    from conftest import shared_image
    from nst_runtime.engine import runner

    seen = count_evaluations(monkeypatch)
    options = make_options(size=0, look_size=64, quality="draft", device="openvino")
    content = Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((256, 192))
    result = runner.run(content, [shared_image("starry_night.jpg")], options)
    assert [(s.width, s.look) for s in result.scales if s.look] == [(128, (48, 64)), (256, (48, 64))]
    loss_at = {(who, width) for kind, who, width in seen if kind == "loss"}
    assert {("fast", 128), ("fast", 64)} <= loss_at  # the look scale below the top, and its look
    assert {("exact", 256), ("exact", 64)} <= loss_at  # the top, and its look
    assert ("exact", 128) not in loss_at
