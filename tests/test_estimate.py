"""`nst estimate` and the worker's estimate session: the schedule priced with measured speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_image
from nst_runtime.engine import timing as est
from nst_runtime.options import make_options
from nst_runtime.planning.schedule import Scale, plan_scales
from nst_runtime.vgg.devices import CHOICE_FILE

SPEED = est.Speed(
    evaluation=est.Curve(((10_000, 0.03), (200_000, 0.5))),
    first_evaluation=est.Curve(((10_000, 0.1), (200_000, 0.12))),
    targets=est.Curve(((10_000, 0.02), (200_000, 0.3))),
    startup_s=3.0,
    pair=est.Curve(((10_000, 1e-4), (200_000, 1e-3))),
    device="cpu",
    key="test",
    measured_at="2026-12-01 12:00",
)


def test_the_estimate_prices_the_engines_schedule() -> None:
    options = make_options(quality="normal")
    result = est.estimate(384, 512, options, 1, SPEED)
    plan = plan_scales(options, 384, 512)
    assert [(s.height, s.width, s.steps) for s in result.scales] == [(s.height, s.width, s.steps) for s in plan]
    expected = SPEED.startup_s
    for s in plan:
        p = s.height * s.width
        expected += SPEED.targets(p) + SPEED.first_evaluation(p)
        expected += (s.steps + est.EXTRA_EVALUATIONS_PER_SCALE) * SPEED.evaluation(p)
        pairs = est.mean_pairs(s.steps, est.EFFECTIVE_HISTORY) + est.FIXED_PAIRS_PER_STEP
        expected += s.steps * pairs * SPEED.pair(p)
        if s.detail_steps:  # the detail pass opening the scale
            expected += SPEED.detail_first_price(p) + est.optimiser_seconds(s.detail_steps, p, SPEED)
            expected += (s.detail_steps + est.EXTRA_EVALUATIONS_PER_SCALE) * SPEED.detail_price(p)
    if any(s.detail_steps for s in plan):
        expected += SPEED.detail_sessions_s
    assert result.seconds == pytest.approx(expected)
    assert result.may_stop_early == any(s.tolerance > 0 for s in plan)


def test_detail_steps_are_priced_at_the_detail_graphs_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    import nst_runtime.planning.schedule as schedule_module

    plain = [Scale(96, 128, 50), Scale(192, 256, 40)]
    detailed = [Scale(96, 128, 50), Scale(192, 256, 40, detail_steps=20)]
    detail = est.Curve(((10_000, 0.01), (200_000, 0.2)))
    speed = est.Speed(**{**SPEED.__dict__, "detail": detail, "detail_sessions_s": 0.5})
    options = make_options()
    times = {}
    for name, plan in (("plain", plain), ("detailed", detailed)):
        monkeypatch.setattr(schedule_module, "plan_scales", lambda o, h, w, plan=plan: plan)
        times[name] = est.estimate(192, 256, options, 1, speed, load_now=None)
    p = 192 * 256
    extra = speed.detail_first_price(p) + (20 + est.EXTRA_EVALUATIONS_PER_SCALE) * detail(p)
    extra += est.optimiser_seconds(20, p, speed) + speed.detail_sessions_s
    assert times["detailed"].seconds == pytest.approx(times["plain"].seconds + extra)
    last = times["detailed"].scales[-1]
    assert last.detail_steps == 20 and last.detail_evaluations == 20 + est.EXTRA_EVALUATIONS_PER_SCALE
    assert "(+20 detail)" in times["detailed"].summary()
    adam = est.estimate(192, 256, make_options(optimizer="adam"), 1, speed, load_now=None)
    own_graphs = est.estimate(192, 256, options, 1, speed, load_now=None, detail_pass=False)
    assert own_graphs.seconds == pytest.approx(times["plain"].seconds), "the engine skips detail passes then"
    assert adam.scales[-1].detail_steps == 0
    unmeasured = est.estimate(192, 256, options, 1, SPEED, load_now=None)  # no detail prices: a share of the full
    assert unmeasured.seconds - times["plain"].seconds == pytest.approx(
        SPEED.detail_first_price(p)
        + (20 + est.EXTRA_EVALUATIONS_PER_SCALE) * est.DETAIL_COST * SPEED.evaluation(p)
        + est.optimiser_seconds(20, p, SPEED)
    )


def test_the_estimate_follows_the_presets_detail_steps() -> None:
    options = make_options(quality="normal")
    plan = plan_scales(options, 384, 512)
    result = est.estimate(384, 512, options, 1, SPEED, load_now=None)
    assert [s.detail_steps for s in result.scales] == [s.detail_steps for s in plan]


def test_lbfgs_holds_more_pairs_the_longer_a_scale_runs() -> None:
    assert est.mean_pairs(0, 100) == 0 and est.mean_pairs(1, 100) == 0
    assert est.mean_pairs(100, 100) == pytest.approx(49.5)
    assert est.mean_pairs(300, 100) == pytest.approx((sum(range(100)) + 200 * 100) / 300)


def test_more_work_costs_more_time() -> None:
    times = {q: est.estimate(384, 512, make_options(quality=q), 1, SPEED).seconds for q in ("draft", "normal", "high")}
    assert times["draft"] < times["normal"] < times["high"]
    small = est.estimate(384, 512, make_options(size=256), 1, SPEED).seconds
    own = est.estimate(384, 512, make_options(size=None), 1, SPEED).seconds
    assert small < own == pytest.approx(est.estimate(384, 512, make_options(size=512), 1, SPEED).seconds)
    two = est.estimate(384, 512, make_options(style_blend=(1.0, 0.5)), 2, SPEED).seconds
    assert two > est.estimate(384, 512, make_options(), 1, SPEED).seconds
    explicit = est.estimate(384, 512, make_options(steps=(10, 0)), 1, SPEED)
    assert [s.steps for s in explicit.scales] == [10, 0] and explicit.scales[1].seconds == 0


def test_a_schedule_that_may_stop_early_is_an_upper_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import nst_runtime.planning.schedule as schedule_module

    monkeypatch.setattr(schedule_module, "plan_scales", lambda o, h, w: [Scale(h, w, 50, tolerance=1e-3)])
    result = est.estimate(100, 100, make_options(), 1, SPEED)
    assert result.may_stop_early and result.summary().startswith("at most")


def test_a_busier_machine_takes_longer_than_when_it_was_measured() -> None:
    measured_busy = est.Speed(**{**SPEED.__dict__, "load": 6.0})
    assert est.load_factor(measured_busy, 14.0, cpus=2) == pytest.approx(16 / 8)
    assert est.load_factor(measured_busy, 0.0, cpus=2) == pytest.approx(2 / 8)
    assert est.load_factor(measured_busy, None, cpus=2) == 1.0
    assert est.load_factor(est.Speed(**{**SPEED.__dict__, "load": 6.0, "device": "cuda"}), 14.0) == 1.0
    idle = est.estimate(384, 512, make_options(), 1, measured_busy, load_now=0.0)
    busy = est.estimate(384, 512, make_options(), 1, measured_busy, load_now=14.0)
    assert (
        busy.seconds == pytest.approx(8 * idle.seconds, rel=1e-6)
        if os.cpu_count() == 2
        else busy.seconds > idle.seconds
    )
    assert "now 14.0" in busy.summary()


def test_prices_run_through_the_measured_points_and_never_fall() -> None:
    curve = est.Curve.measured([100, 400], [1.0, 7.0])  # superlinear: a line through both would cross zero
    assert curve(0) == 0 and curve(50) == pytest.approx(0.5) and curve(100) == pytest.approx(1.0)
    assert curve(400) == pytest.approx(7.0) and curve(800) == pytest.approx(15.0), "the last piece goes on"
    noisy = est.Curve.measured([100, 400], [2.0, 1.0])  # the larger size measured cheaper: noise
    assert noisy(400) == pytest.approx(2.0) and noisy(800) == pytest.approx(4.0)
    assert all(curve(p) < curve(p + 10) for p in range(0, 1000, 50))


def test_the_cache_is_keyed_by_machine_device_and_runtime(tmp_path: Path) -> None:
    path = tmp_path / "speed.json"
    options = make_options()
    speed = est.Speed(**{**SPEED.__dict__, "key": est.speed_key(options)})
    est.store_speed(speed, path)
    assert est.load_speed(options, path) == speed
    assert est.load_speed(make_options(device="cpu"), path) is None, "another device is another key"
    key = est.speed_key(options)
    assert "nst " in key and "onnxruntime " in key and "device auto" in key and f"model {est.MODEL_VERSION}" in key
    path.write_text("{broken")
    assert est.load_speed(options, path) is None


def test_durations_read_well() -> None:
    assert [est.format_duration(s) for s in (4.2, 59.6, 61, 290, 725, 4000)] == [
        "4 s",
        "1 min",
        "1 min 1 s",
        "4 min 50 s",
        "12 min",
        "1 h 6 min",
    ]


def nst_estimate(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NST_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "nst_runtime", "estimate", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def seeded_cache(tmp_path: Path) -> Path:
    """A cache folder holding this machine's prices (made up) and auto's choice, so nothing is measured."""
    for options in (make_options(), make_options(device="cpu")):  # auto is CUDA's where usable, else the choice's
        est.store_speed(est.Speed(**{**SPEED.__dict__, "key": est.speed_key(options)}), tmp_path / est.CACHE_NAME)
    est.store_choice("cpu", {}, tmp_path / CHOICE_FILE)
    return tmp_path


def test_nst_estimate_takes_the_options_of_nst(seeded_cache: Path) -> None:
    photo, painting = str(shared_image("golden_gate.jpg")), str(shared_image("starry_night.jpg"))
    proc = nst_estimate(photo, painting, "-o", "ignored.png", "--quality", "draft", cache=seeded_cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("about ") and "on cpu" in proc.stdout and "512×" in proc.stdout
    proc = nst_estimate(photo, painting, "--json", "--size", "256", "--steps", "7", cache=seeded_cache)
    data = json.loads(proc.stdout)
    assert data["seconds"] > data["startup_s"] == 3.0
    assert {s["steps"] for s in data["scales"]} == {7} and max(data["scales"][-1]["width"], 0) == 256
    assert not (seeded_cache / "graphs").exists(), "a cached estimate needs no graphs"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["/nonexistent/photo.jpg", "STYLE"], "content file not found"),
        (["PHOTO", "/nonexistent/style.jpg"], "style file not found"),
        (["PHOTO", "STYLE", "--size", "3"], "size must be at least"),
        (["PHOTO", "STYLE", "--quality", "best"], "invalid choice"),
    ],
)
def test_nst_estimate_errors_are_one_line(seeded_cache: Path, args: list[str], words: str) -> None:
    names = {"PHOTO": str(shared_image("golden_gate.jpg")), "STYLE": str(shared_image("starry_night.jpg"))}
    proc = nst_estimate(*[names.get(a, a) for a in args], cache=seeded_cache)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_calibration_measures_this_machine_through_the_engines_evaluator(tmp_path: Path) -> None:
    path = tmp_path / "speed.json"
    messages: list[str] = []
    speed = est.calibrate(make_options(), log=messages.append, path=path)
    assert messages and "measuring" in messages[0]
    big, small = 512 * 384, 128 * 96
    assert 0 < speed.evaluation(small) < speed.evaluation(big) < 120
    assert speed.targets(big) > 0 and 0 < speed.startup_s < 300 and 0 < speed.pair(big) < 10
    assert speed.device == "cpu"
    assert speed.detail is not None and 0 < speed.detail(big) < speed.evaluation(big), "cut after relu3_1"
    assert speed.detail_sessions_s > 0
    assert est.load_speed(make_options(), path) == speed


def test_the_worker_answers_estimate_queries_until_stdin_closes() -> None:
    first = {"id": 1, "width": 512, "height": 384, "styles": 1, "options": {"quality": "draft"}}
    blend = {"quality": "high", "style_blend": [1, 1]}
    lines = [
        json.dumps({"protocol": 2, "estimate": first}),
        json.dumps({"estimate": {**first, "id": 2, "options": blend, "styles": 2}}),
        json.dumps({"estimate": {**first, "id": 3, "options": {"size": 5}}}),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "nst_runtime.worker"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    answers = [r["estimate"] for r in replies if "estimate" in r]
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert 0 < answers[0]["seconds"] < answers[1]["seconds"]
    assert "size must be at least" in answers[2]["error"]
    assert replies[-1] == {"done": {"estimates": 3}}
