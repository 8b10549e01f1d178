"""How long a run will take here: the schedule's work priced with this machine's measured speed.

The price list (:class:`Speed`) is measured once per machine, device and runtime version: a few
objective evaluations through the engine's own evaluator at two sizes (seconds per evaluation,
and for the targets a scale computes first, each a :class:`Curve` through the two), the same for
the detail pass's evaluations (the graphs cut after relu3_1 that open a scale), what a step
costs beyond its evaluations (the optimiser's vector work per curvature pair), and the
start-up of a fresh process (imports and onnxruntime sessions, as a worker or ``nst`` pays it). It is
kept in the user cache folder (``NST_CACHE_DIR`` or platformdirs') and measured again when
the key changes. An estimate then walks ``plan_scales`` — the schedule the engine will run, so
new presets or early-stop tolerances need nothing here — and adds up the scales. On a CPU the
sum is scaled by how busy the machine is now against when it was measured (the load average:
a run's threads get about cpus / (load + cpus) of the machine).

Front ends: ``nst estimate CONTENT STYLE… [the options of nst]`` (nst_runtime.cli.estimate) and
the worker's estimate session (nst_runtime.worker.estimates, docs/worker-protocol.md), which the
GIMP dialog keeps open to price every change.
Nothing here imports torch unless it has to measure.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import Cancelled, NSTError
from ..planning.schedule import DETAIL_COST, LBFGS_HISTORY
from ..units import format_duration

MODEL_VERSION = 4  # bump when what is measured or how it is used changes: old caches are then remeasured
CALIBRATION_SIDES = (192, 512)  # longest sides of the two 4:3 measuring sizes (512: the default size)
TIMED_EVALUATIONS = 3  # per size, after one untimed first evaluation
FIRST = {"evaluation": "first", "fast": "fast_first", "detail": "detail_first"}  # the first one's extra, by curve
# Beyond its evaluations a step costs the optimiser's vector work in torch: L-BFGS's two-loop
# recursion does four image-sized operations (two dot products, two axpys) per curvature pair,
# and about a dozen more per step (the free-pixel mask, the slope, the line search's point, the
# new pair): priced here as FIXED_PAIRS_PER_STEP pairs. On a busy machine that is no small
# thing (each small torch operation waits for its threads); on an idle one it is milliseconds.
# The pairs L-BFGS really holds stay well below its history: failed line searches and refused
# curvature pairs reset it, and a history that refills up to EFFECTIVE_HISTORY matches real
# runs (docs/benchmarks.md §8).
TIMED_PAIRS = 20
FIXED_PAIRS_PER_STEP = 3.0
EFFECTIVE_HISTORY = 25
# Evaluations a scale spends beyond one per step: the first evaluation, and the projected
# L-BFGS's line search where a unit step is refused (docs/benchmarks.md §8).
EXTRA_EVALUATIONS_PER_SCALE = 3
# A scale whose full pass ends in fp32 after steps in a lower precision evaluates that phase's
# starting point again in fp32, and its line search meets the new precision once.
EXACT_PHASE_EVALUATIONS = 2
CACHE_NAME = "estimate-speed.json"
Evaluate = Callable[[Any], Any]
STARTUP_TIMEOUT_S = 600
REQUIRED_CURVES = ("evaluation", "first_evaluation", "targets", "pair")
CURVES = (*REQUIRED_CURVES, "detail", "detail_first_evaluation", "fast", "fast_first_evaluation")
# What a detail-pass evaluation costs against a full one when the speed was measured without it
# (the engine's work accounting uses the same figure).


@dataclass(frozen=True)
class Curve:
    """Seconds for a pixel count: straight lines through (0, 0) and the measured points, the last
    one extended beyond the largest point. Cost per pixel grows with size on a CPU (caches), so
    a line through two points may cross zero; pieces between measured points never do."""

    points: tuple[tuple[float, float], ...]  # (pixels, seconds), pixels increasing

    def __call__(self, pixels: float) -> float:
        knots = [(0.0, 0.0), *self.points]
        for (p0, t0), (p1, t1) in itertools.pairwise(knots):
            if pixels <= p1:
                return t0 + (t1 - t0) * (pixels - p0) / (p1 - p0)
        (p0, t0), (p1, t1) = knots[-2], knots[-1]
        slope = (t1 - t0) / (p1 - p0)
        return t1 + (slope if slope > 0 else t1 / p1) * (pixels - p1)

    @classmethod
    def measured(cls, pixels: list[float], seconds: list[float]) -> Curve:
        """Through the measurements; noise that makes a larger size cheaper keeps the smaller one's price."""
        points, most = [], 0.0
        for p, t in sorted(zip(pixels, seconds, strict=True)):
            most = max(most, t)
            points.append((float(p), most))
        return cls(tuple(points))


@dataclass(frozen=True)
class Speed:
    """This machine's prices: what one evaluation, a scale's targets and a start-up cost."""

    evaluation: Curve  # seconds per objective evaluation (forward, loss, gradient)
    first_evaluation: Curve  # extra seconds of the first evaluation at a new size (shape warm-up)
    targets: Curve  # a scale's content and style targets, for one style at the output's area
    startup_s: float  # a fresh process until the sessions are ready
    pair: Curve  # seconds of the optimiser's vector work per curvature pair and step
    device: str
    key: str
    measured_at: str
    load: float | None = None  # the 1-minute load average while measuring (a busy machine measures slow)
    history: int = LBFGS_HISTORY  # the engine's L-BFGS history when measured
    # the detail pass (L-BFGS on relu1_1–relu3_1 through graphs cut after relu3_1): seconds per
    # evaluation and the first one's extra at a new size; None: DETAIL_COST of the full prices
    detail: Curve | None = None
    detail_first_evaluation: Curve | None = None
    detail_sessions_s: float = 0.0  # opening the cut graphs' sessions, once per run that has a detail pass
    # where the device has a faster lower precision (``vgg.devices.precisions``): its full evaluation
    # and that one's first-evaluation extra (the detail curves are then that precision's too)
    fast: Curve | None = None
    fast_first_evaluation: Curve | None = None

    def detail_price(self, pixels: float) -> float:
        return self.detail(pixels) if self.detail is not None else DETAIL_COST * self.evaluation(pixels)

    def detail_first_price(self, pixels: float) -> float:
        if self.detail_first_evaluation is not None:
            return self.detail_first_evaluation(pixels)
        return DETAIL_COST * self.first_evaluation(pixels)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Speed:
        curves = {
            name: Curve(tuple(map(tuple, data[name]["points"])))
            for name in CURVES
            if name in REQUIRED_CURVES or data.get(name) is not None
        }
        rest = {k: v for k, v in data.items() if k not in curves}
        return cls(**curves, **rest)


@dataclass(frozen=True)
class ScaleEstimate:
    height: int
    width: int
    steps: int
    evaluations: int  # of the full objective
    seconds: float
    detail_steps: int = 0  # the detail pass that opens the scale (cheaper evaluations)
    detail_evaluations: int = 0
    fast_evaluations: int = 0  # of ``evaluations``, those in the device's lower precision


@dataclass(frozen=True)
class Estimate:
    """The time of one run: start-up plus each scale; ``may_stop_early`` when the schedule lets
    scales end before their step count (then ``seconds`` is the most it takes)."""

    seconds: float
    startup_s: float
    scales: list[ScaleEstimate]
    device: str
    may_stop_early: bool
    measured_at: str
    load: float | None = None  # the load average when the speed was measured
    load_now: float | None = None  # … and when this estimate was made
    load_factor: float = 1.0  # the measured prices times this

    def to_json(self) -> dict:
        from ..vgg.devices import device_label

        data = asdict(self)
        data["device_label"] = device_label(self.device)
        data["seconds"] = round(self.seconds, 2)
        data["duration"] = ("at most " if self.may_stop_early else "about ") + format_duration(self.seconds)
        return data

    def summary(self) -> str:
        """'about 4 min 50 s for 512×384 on cpu (3 scales: 128×96 ×100, …; start-up 4 s)'."""
        last = self.scales[-1] if self.scales else None
        size = f" for {last.width}×{last.height}" if last else ""
        scales = ", ".join(
            f"{s.width}×{s.height} ×{s.steps}" + (f" (+{s.detail_steps} detail)" if s.detail_steps else "")
            for s in self.scales
        )
        bound = "at most" if self.may_stop_early else "about"
        busy = ""
        if self.load_factor != 1.0:
            busy = f" at load {self.load:.1f}, now {self.load_now:.1f}: ×{self.load_factor:.2f}"
        return (
            f"{bound} {format_duration(self.seconds)}{size} on {self.device} "
            f"({len(self.scales)} scale{'s' if len(self.scales) != 1 else ''}: {scales}; "
            f"start-up {format_duration(self.startup_s)}; speed measured {self.measured_at}{busy})"
        )


# ------------------------------------------------------------------ the price list


def _version(*names: str) -> str:
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return "unknown"


def speed_key(options) -> str:
    """Machine, device and runtime: a calibration is valid only where all three match."""
    from nst_export.manifest import GRAPH_FORMAT

    parts = [
        f"model {MODEL_VERSION}",
        platform.node(),
        platform.machine(),
        f"{os.cpu_count()} cpus",
        f"device {options.device}",
        f"nst {_version('nst')}",
        f"onnxruntime {_version('onnxruntime-gpu', 'onnxruntime')}",
        f"torch {_version('torch')}",
        GRAPH_FORMAT,
        options.weights,
        options.pooling,
    ]
    return " | ".join(parts)


def cache_path() -> Path:
    from nst_export.paths import cache_root

    return cache_root() / CACHE_NAME


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_speed(options, path: Path | None = None) -> Speed | None:
    """The stored prices for this machine, device and runtime, or None."""
    record = _read_cache(path or cache_path()).get(speed_key(options))
    if not isinstance(record, dict):
        return None
    try:
        return Speed.from_json(record)
    except (TypeError, KeyError):
        return None


def store_speed(speed: Speed, path: Path | None = None) -> None:
    """Add this machine's prices to the cache file (atomically; other keys stay)."""
    path = path or cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read_cache(path)
    data[speed.key] = speed.to_json()
    from ..imaging.images import write_atomically  # here: the estimate session starts without numpy

    write_atomically((json.dumps(data, indent=1) + "\n").encode("utf-8"), path)


def _load_average() -> float | None:
    with contextlib.suppress(OSError, AttributeError):
        return round(os.getloadavg()[0], 2)
    return None


def measure_startup(options, graphs_dir: str | None = None) -> float:
    """Wall seconds of a fresh process that imports the engine and builds its sessions."""
    args = [
        sys.executable,
        "-P",
        "-m",
        "nst_runtime.engine.timing",
        "--startup-probe",
        options.weights,
        options.pooling,
    ]
    args += [options.device, graphs_dir or ""]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise NSTError(f"measuring the start-up failed: {tail}")
    return seconds


def _startup_probe(weights: str, pooling: str, device: str, graphs_dir: str) -> None:
    """What a worker does before its first evaluation: prewarm, import the engine, open the sessions."""
    from nst_export import DEFAULT_LAYERS

    from ..vgg import prewarm

    prewarm.start(weights, pooling, device, graphs_dir or None)
    from ..vgg.devices import precisions
    from ..vgg.features import get_vgg

    importlib.import_module(f"{__package__}.runner")  # the import is what is timed (runner imports this module)

    for on in precisions(device):
        if on is not None:
            get_vgg(weights, pooling, DEFAULT_LAYERS, on, graphs_dir or None)


def calibrate(
    options,
    graphs_dir: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
    cancel: threading.Event | None = None,
    path: Path | None = None,
) -> Speed:
    """Measure this machine's prices through the engine's evaluator and store them.

    Where the device has a faster lower precision (``vgg.devices.precisions``: ``openvino`` on an
    AMX CPU), both precisions' full evaluations are timed, taking turns, and the detail pass's in
    the lower one, as the engine runs them."""
    import numpy as np
    import torch

    from nst_export import DEFAULT_LAYERS

    from ..evaluation.choose import choose_evaluator
    from ..objective.builder import ObjectiveBuilder
    from ..vgg.devices import precisions
    from ..vgg.features import VGG, get_vgg
    from ..vgg.graphs import DETAIL_LAYERS, ensure_graphs
    from ..vgg.sessions import seconds_to_create

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")

    log(f"measuring this machine's speed on {options.device} (once, about a minute)")
    load = _load_average()
    exact, fast = precisions(options.device)
    vgg = get_vgg(options.weights, options.pooling, DEFAULT_LAYERS, exact, graphs_dir, log=log)
    fast_vgg = get_vgg(options.weights, options.pooling, DEFAULT_LAYERS, fast, graphs_dir) if fast else None
    detail_vgg, detail_sessions = None, 0.0
    if graphs_dir is None:  # the engine runs detail passes only on the graphs it exports itself
        detail_graphs = ensure_graphs(options.weights, options.pooling, DETAIL_LAYERS, log=log)
        # what the detail pass opens, keyed as VGG opens them: its feature session on the device
        # asked for, the fused one (made on first use) on the device that came out of it
        detail_on = fast or exact
        used = (fast_vgg or vgg).device
        opened = ((detail_graphs.feature_path, detail_on), (detail_graphs.fused_path, used))
        detail_sessions = sum(seconds_to_create(path, device) for path, device in opened)
        detail_vgg = VGG(detail_graphs, detail_on)  # on the sessions just measured, when none were open
    rng = np.random.default_rng(0)
    pixels, targets = [], []
    times: dict[str, list[float]] = {name: [] for name in ("evaluation", "first", "fast", "fast_first", "detail")}
    times["detail_first"] = []

    def timed(evaluators: dict[str, Evaluate], x) -> None:
        """Each evaluator's first evaluation's extra and the median of its next ones, taking turns."""
        first, steady = {}, {name: [] for name in evaluators}
        for name, evaluate in evaluators.items():
            started = time.perf_counter()
            evaluate(x)
            first[name] = time.perf_counter() - started
        for _ in range(TIMED_EVALUATIONS):
            for name, evaluate in evaluators.items():
                check()
                started = time.perf_counter()
                evaluate(x)
                steady[name].append(time.perf_counter() - started)
        for name in evaluators:
            median = statistics.median(steady[name])
            times[name].append(median)
            times[FIRST[name]].append(max(0.0, first[name] - median))

    for side in CALIBRATION_SIDES:
        height, width = side * 3 // 4, side
        content = torch.from_numpy(rng.random((1, 3, height, width), dtype=np.float32)).to(vgg.torch_device)
        style = torch.from_numpy(rng.random((1, 3, height, width), dtype=np.float32)).to(vgg.torch_device)
        builder = ObjectiveBuilder(vgg, options, content, [style], [1.0])
        check()
        started = time.perf_counter()
        objective = builder.at(height, width)
        targets.append(time.perf_counter() - started)
        x = content.clone()
        evaluators = {"evaluation": choose_evaluator(vgg, objective, options)}
        if fast_vgg is not None:
            evaluators["fast"] = choose_evaluator(fast_vgg, objective, options)
        if detail_vgg is not None:
            evaluators["detail"] = choose_evaluator(detail_vgg, objective.restricted(DETAIL_LAYERS), options)
        timed(evaluators, x)
        pixels.append(height * width)
    check()
    pair = Curve.measured(pixels, [measure_pair(p, vgg.torch_device) for p in pixels])
    check()
    startup = measure_startup(options, graphs_dir)

    def curve(name: str) -> Curve | None:
        return Curve.measured(pixels, times[name]) if times[name] else None

    speed = Speed(
        evaluation=Curve.measured(pixels, times["evaluation"]),
        first_evaluation=Curve.measured(pixels, times["first"]),
        targets=Curve.measured(pixels, targets),
        startup_s=round(startup, 3),
        pair=pair,
        device="+".join(dict.fromkeys(m.device for m in (fast_vgg, vgg) if m is not None)),
        key=speed_key(options),
        measured_at=time.strftime("%Y-%m-%d %H:%M"),
        load=load,
        history=LBFGS_HISTORY,
        detail=curve("detail"),
        detail_first_evaluation=curve("detail_first"),
        detail_sessions_s=round(detail_sessions, 3),
        fast=curve("fast"),
        fast_first_evaluation=curve("fast_first"),
    )
    store_speed(speed, path)
    return speed


def measure_pair(pixels: int, device) -> float:
    """Seconds of one L-BFGS curvature pair's work in a step (two dots, two axpys) on an image this large."""
    import torch

    gen = torch.Generator().manual_seed(2)
    s, y, q = (torch.rand(3 * pixels, generator=gen).to(device) for _ in range(3))
    started = time.perf_counter()
    for _ in range(TIMED_PAIRS):
        alpha = 1e-3 * float(s @ q)
        q.add_(y, alpha=-alpha)
        beta = 1e-3 * float(y @ q)
        q.add_(s, alpha=alpha - beta)
    return (time.perf_counter() - started) / TIMED_PAIRS


def mean_pairs(steps: int, history: int) -> float:
    """The curvature pairs L-BFGS holds on average over a scale of this many steps (none at first)."""
    if steps <= 0:
        return 0.0
    return sum(min(i, history) for i in range(steps)) / steps


def speed_for(
    options,
    graphs_dir: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
    cancel: threading.Event | None = None,
    recalibrate: bool = False,
) -> Speed:
    """The stored prices, or freshly measured ones. ``auto`` on a CPU prices the device this machine's
    choice names (``vgg.devices``), measuring MLAS against OpenVINO first where none is stored."""
    if options.device == "auto":
        options = replace(options, device=auto_device(options, graphs_dir, log, cancel, recalibrate))
        recalibrate = False  # auto_device measured the chosen device just now, where it measured anything
    if not recalibrate and (speed := load_speed(options)) is not None:
        return speed
    return calibrate(options, graphs_dir, log, cancel)


def auto_device(
    options,
    graphs_dir: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
    cancel: threading.Event | None = None,
    recalibrate: bool = False,
) -> str:
    """The device ``auto`` runs on here: "auto" where CUDA is usable (onnxruntime decides), else
    "cpu", "openvino" or "openvino-gpu" as the stored choice says; where none is stored (or
    ``recalibrate``), MLAS, OpenVINO's bf16 schedule and its Intel GPU (where listed) are measured
    now, priced on the default run (512 px, normal), and the fastest within ``AUTO_MARGIN`` of MLAS
    is stored (never bf16 without AMX: not measured there)."""
    from ..options import Options
    from ..vgg.devices import choose, cpu_has_amx, stored_choice
    from ..vgg.sessions import OPENVINO_GPU, cuda_usable, openvino_available

    if cuda_usable():
        return "auto"
    if not recalibrate and stored_choice() is not None:
        return _stored_auto()
    measured: dict[str, float] = {}
    amx = cpu_has_amx()
    candidates = ["cpu", *(["openvino"] if amx and openvino_available() else [])]
    candidates += [OPENVINO_GPU] if openvino_available("GPU") else []
    for device in candidates:
        speed = calibrate(replace(options, device=device), graphs_dir, log, cancel)
        reference = replace(Options(), device=device, weights=options.weights, pooling=options.pooling)
        # both at an idle machine's prices: the two were measured a minute apart on a shared one
        measured[device] = estimate(384, 512, reference, 1, speed, load_now=0.0, detail_pass=graphs_dir is None).seconds
    choice = choose(measured["cpu"], measured.get("openvino"), amx, measured.get(OPENVINO_GPU))
    store_choice(choice, measured)
    log(f"auto runs on {choice} here ({', '.join(f'{d} {t:.0f} s' for d, t in measured.items())} for 512 px)")
    return choice


def _stored_auto() -> str:
    """``auto`` on a machine without CUDA, as its stored choice says (MLAS where it says nothing)."""
    from ..vgg.devices import resolve

    return "cpu" if (chosen := resolve("auto")) == "auto" else chosen


def stored_speed(options) -> Speed | None:
    """The prices ``speed_for`` would use for ``options`` where they are stored; never measures
    (the engine's progress weighs its scales by them)."""
    from ..vgg.sessions import cuda_usable

    device = options.device
    if device == "auto" and not cuda_usable():
        device = _stored_auto()
    return load_speed(replace(options, device=device))


def store_choice(device: str, measured: dict[str, float], path: Path | None = None) -> None:
    """Store ``auto``'s choice for this machine (``vgg.devices.machine_key``), with what decided it."""
    from ..imaging.images import write_atomically
    from ..vgg.devices import choice_path, machine_key, read_choices

    path = path or choice_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = read_choices(path)
    data[machine_key()] = {
        "device": device,
        "seconds_512px": {d: round(t, 2) for d, t in measured.items()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
    }
    write_atomically((json.dumps(data, indent=1) + "\n").encode("utf-8"), path)


# ------------------------------------------------------------------ pricing a run


def load_factor(speed: Speed, load_now: float | None, cpus: int | None = None) -> float:
    """How much slower (or faster) the CPU is now than when it was measured, from the load average.

    A run's onnxruntime threads (one per core) get about cpus / (others + cpus) of the machine,
    so the time scales with (load + cpus); a GPU run (CUDA, OpenVINO's Intel GPU) does not share
    that way (OpenVINO's CPU device does).
    """
    cpus = cpus or os.cpu_count() or 1
    if speed.device in ("cuda", "openvino-gpu") or speed.load is None or load_now is None:
        return 1.0
    return (max(load_now, 0.0) + cpus) / (max(speed.load, 0.0) + cpus)


def optimiser_seconds(steps: int, pixels: float, speed: Speed) -> float:
    """The optimiser's own vector work over ``steps`` L-BFGS steps at this size (beyond its evaluations)."""
    pairs = mean_pairs(steps, min(speed.history, EFFECTIVE_HISTORY)) + FIXED_PAIRS_PER_STEP
    return steps * pairs * speed.pair(pixels)


def price_scales(scales, options, n_styles: int, speed: Speed, detail_pass: bool = True) -> list[ScaleEstimate]:
    """Each scale's time at the measured prices, unscaled by the load: the estimate's sum, and the
    weights by which the engine's progress counts its scales. A tiled scale is priced as a whole
    one (its 12-MP evaluations ran at ~1.05× the whole image's per-pixel time: docs/benchmarks.md
    §10.1), and a scale runs in the lower precision only where ``Scale.fast_steps`` says so."""
    shares = [b for b in options.blend(n_styles) if b > 0]
    # the targets: the content's features plus each style's at style_scale² times the area
    targets_factor = (1.0 + len(shares) * options.style_scale**2) / 2.0
    detail_pass = detail_pass and options.optimizer == "lbfgs"
    priced = []
    for scale in scales:
        pixels = scale.height * scale.width
        if scale.steps == 0:
            priced.append(ScaleEstimate(scale.height, scale.width, 0, 0, 0.0))
            continue
        evaluations = scale.steps + EXTRA_EVALUATIONS_PER_SCALE
        fast_steps = getattr(scale, "fast_steps", 0) if speed.fast is not None else 0
        fast_evaluations = fast_steps + EXTRA_EVALUATIONS_PER_SCALE if fast_steps else 0
        exact_evaluations = evaluations - fast_evaluations
        if fast_steps and scale.steps > fast_steps:
            exact_evaluations += EXACT_PHASE_EVALUATIONS
            evaluations += EXACT_PHASE_EVALUATIONS
        look = scale.look_pixels  # the look's own evaluation, each time
        seconds = (
            speed.targets(pixels) * targets_factor
            + (speed.first_evaluation(pixels) if exact_evaluations else 0.0)
            + exact_evaluations * (speed.evaluation(pixels) + (speed.evaluation(look) if look else 0.0))
            + optimiser_seconds(scale.steps, pixels, speed)
        )
        if fast_evaluations:
            first = speed.fast_first_evaluation or speed.first_evaluation
            fast_look = speed.fast(look) if look else 0.0  # type: ignore[misc]
            seconds += first(pixels) + fast_evaluations * (speed.fast(pixels) + fast_look)  # type: ignore[misc]
        detail_steps = getattr(scale, "detail_steps", 0) if detail_pass and n_styles else 0
        detail_evaluations = detail_steps + EXTRA_EVALUATIONS_PER_SCALE if detail_steps else 0
        if detail_steps:
            seconds += (
                speed.detail_first_price(pixels)
                + detail_evaluations * speed.detail_price(pixels)
                + optimiser_seconds(detail_steps, pixels, speed)
            )
        priced.append(
            ScaleEstimate(
                scale.height,
                scale.width,
                scale.steps,
                evaluations,
                seconds,
                detail_steps,
                detail_evaluations,
                fast_evaluations,
            )
        )
    return priced


def _memory_planned(scales: list, options, content: tuple[int, int], size: tuple[int, int]) -> list:
    """The scales as the run's memory plan tiles them on the CPU (the lower precisions are CPU
    devices here), with the content's copies reserved as the run reserves them (the paintings'
    sizes are not known here); as planned where the plan refuses the run."""
    from types import SimpleNamespace

    from ..planning import memory

    budget, _ = memory.resolve_budget(options.max_memory, "cpu")
    photo = SimpleNamespace(height=content[0], width=content[1], alpha=None)
    try:
        return memory.plan_memory(scales, options, budget, memory.reserved_bytes(photo, [], *size))
    except NSTError:
        return scales


def estimate(
    height: int,
    width: int,
    options,
    n_styles: int,
    speed: Speed,
    load_now: float | None = math.nan,
    detail_pass: bool = True,
) -> Estimate:
    """The time of a run on a height × width content: the engine's schedule at this machine's prices,
    scaled by how busy the machine is now against when it was measured (``load_now``: the 1-minute
    load average; by default read now, None: not scaled).

    A scale's detail steps (``Scale.detail_steps``: L-BFGS on the shallow style layers before the
    full objective) are priced at the detail graphs' measured speed; the engine skips them with
    Adam and with a graph folder of the user's own (``detail_pass=False``)."""
    from ..options import compute_size
    from ..planning.schedule import plan_scales

    h, w = compute_size(height, width, options.size)
    scales = plan_scales(options, h, w)
    if speed.fast is not None:  # a scale the memory plan tiles runs in fp32 (``Scale.fast_steps``)
        scales = _memory_planned(scales, options, (height, width), (h, w))
    priced = price_scales(scales, options, n_styles, speed, detail_pass)
    if load_now is not None and math.isnan(load_now):
        load_now = _load_average()
    factor = load_factor(speed, load_now)
    priced = [replace(s, seconds=s.seconds * factor) for s in priced]
    may_stop = any(getattr(s, "tolerance", 0.0) > 0 for s in scales)
    sessions = speed.detail_sessions_s if any(s.detail_steps for s in priced) else 0.0
    startup = (speed.startup_s + sessions) * factor
    total = startup + sum(s.seconds for s in priced)
    return Estimate(total, startup, priced, speed.device, may_stop, speed.measured_at, speed.load, load_now, factor)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--startup-probe":
        _startup_probe(*sys.argv[2:])
        sys.stdout.flush()
        os._exit(0)  # torch's teardown is not part of a start-up
    raise SystemExit("usage: python -m nst_runtime.engine.timing --startup-probe WEIGHTS POOLING DEVICE GRAPHS")
