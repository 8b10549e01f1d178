"""The time estimate against real runs, on the path the GIMP dialog takes.

For each job: the estimate comes from the worker's estimate session (what the dialog shows
before Run), then the same job runs through the worker as the plug-in starts it (protocol 2,
the content inline as RGBA) and is timed from the process start to its "done" line (what the
user waits after pressing Run). The error is (estimate − real) / real; the target is ±30 %.
The speed is measured first (``--recalibrate``) so that both sides see the same machine state;
the load average is recorded before and after every run.

    python bench/estimate_error.py --out bench/results/estimate_error-cpu.json
    python bench/estimate_error.py --jobs default          # the dialog's defaults only

A job may change its quality preset for both sides (``PRESET_CHANGES``: e.g. detail steps, before
the presets have them): the worker then starts through a one-line wrapper that replaces the
preset in nst_runtime.schedule.PRESETS before it reads the request.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
WORKER = [sys.executable, "-P", "-u", "-m", "nst_runtime.worker"]
PATCHED_WORKER = (
    "import dataclasses, json, sys; from nst_runtime import schedule, worker; "
    "q, changes = sys.argv[1], json.loads(sys.argv[2]); "
    "schedule.PRESETS[q] = dataclasses.replace(schedule.PRESETS[q], **changes); worker.exit_with(worker.main)"
)
PHOTO, STARRY, SCREAM = "golden_gate.jpg", "starry_night.jpg", "the_scream.jpg"

# name: (content, styles, style_blend, options) — "default" is the dialog's defaults
JOBS: dict[str, tuple[str, list[str], list[float] | None, dict]] = {
    "default": (PHOTO, [STARRY], None, {"size": 512, "quality": "normal"}),
    "draft-512": (PHOTO, [STARRY], None, {"size": 512, "quality": "draft"}),
    "normal-256": ("shipwreck.jpg", [SCREAM], None, {"size": 256, "quality": "normal"}),
    "two-styles-384": (PHOTO, [STARRY, SCREAM], [1.0, 0.5], {"size": 384, "quality": "draft"}),
    "draft-detail-384": (PHOTO, [STARRY], None, {"size": 384, "quality": "draft"}),
}
PRESET_CHANGES: dict[str, dict] = {"draft-detail-384": {"detail_steps": 30}}


def worker_command(job: str, options: dict) -> list[str]:
    changes = PRESET_CHANGES.get(job)
    if not changes:
        return WORKER
    return [sys.executable, "-P", "-u", "-c", PATCHED_WORKER, options["quality"], json.dumps(changes)]


def load() -> float:
    return round(os.getloadavg()[0], 2)


def inline(path: Path) -> dict:
    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    return {"rgba": base64.b64encode(rgba.tobytes()).decode(), "width": rgba.width, "height": rgba.height}


def estimate(worker: list[str], content: Path, styles: int, blend: list[float] | None, options: dict) -> dict:
    with Image.open(content) as im:
        width, height = im.size
    query = {"id": 1, "width": width, "height": height, "styles": styles, "options": {**options}}
    if blend:
        query["options"]["style_blend"] = blend
    proc = subprocess.run(
        worker, input=json.dumps({"protocol": 2, "estimate": query}) + "\n", capture_output=True, text=True, check=True
    )
    return next(json.loads(line)["estimate"] for line in proc.stdout.splitlines() if '"estimate"' in line)


def real_run(worker: list[str], content: Path, styles: list[Path], blend: list[float] | None, options: dict) -> dict:
    request = {"protocol": 2, "content": inline(content), "styles": [{"path": str(s)} for s in styles]}
    request["options"] = options
    if blend:
        request["style_blend"] = blend
    started = time.perf_counter()
    proc = subprocess.Popen(worker, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    first_step = None
    scale_starts: list[float] = []  # when each scale's first step was reported
    detail_s: dict[int, list[float]] = {}  # per scale: its first and last detail step's times
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("event") == "progress":
            now = time.perf_counter() - started
            first_step = now if first_step is None else first_step
            if msg["scale"] > len(scale_starts):
                scale_starts.append(now)
            if msg.get("phase") == "detail":
                detail_s.setdefault(msg["scale"], [now, now])[1] = now
        if "done" in msg or "error" in msg:
            seconds = time.perf_counter() - started
            proc.stdin.close()
            proc.wait()
            if "error" in msg:
                raise SystemExit(f"the run failed: {msg['error']}")
            bounds = [*scale_starts, seconds]
            per_scale = [round(b - a, 2) for a, b in itertools.pairwise(bounds)]
            detail = {scale: round(last - first, 2) for scale, (first, last) in detail_s.items()}
            return {
                "seconds": round(seconds, 2),
                "first_step_s": round(first_step or 0, 2),
                "scales_s": per_scale,
                "detail_s": detail,  # from a scale's first detail step to its last
            }
    raise SystemExit("the worker ended without a result")


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor()
    wanted = ("avx2", "avx512f", "fma", "f16c")
    return " ".join(f for f in flags.split(":")[1].split() if f in wanted)


def measured_speed() -> dict:
    """The prices the estimates used, with a detail evaluation's cost against a full one per measured size."""
    from nst_runtime.engine import timing as est
    from nst_runtime.options import make_options

    speed = est.load_speed(make_options())
    if speed is None:
        return {}
    data = speed.to_json()
    if speed.detail is not None:
        data["detail_over_full"] = {
            f"{round(p)} px": round(t / speed.evaluation(p), 3) for p, t in speed.detail.points if speed.evaluation(p)
        }
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated: " + ", ".join(JOBS))
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    parser.add_argument("--keep-speed", action="store_true", help="use the cached speed instead of measuring it")
    args = parser.parse_args()
    if not args.keep_speed:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nst_runtime", "estimate", str(SHARED / PHOTO), str(SHARED / STARRY),
                        "--recalibrate", "-q"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"speed measured in {time.perf_counter() - t:.1f} s (load {load()})", flush=True)
    results = []
    for name in args.jobs.split(","):
        content, styles, blend, options = JOBS[name]
        load_before = load()
        worker = worker_command(name, options)
        guess = estimate(worker, SHARED / content, len(styles), blend, options)
        real = real_run(worker, SHARED / content, [SHARED / s for s in styles], blend, options)
        error = (guess["seconds"] - real["seconds"]) / real["seconds"]
        row = {
            "job": name,
            "content": content,
            "styles": styles,
            "options": options,
            "preset_changes": PRESET_CHANGES.get(name, {}),
            "estimate_s": guess["seconds"],
            "real_s": real["seconds"],
            "error": round(error, 3),
            "first_step_s": real["first_step_s"],
            "estimated_startup_s": guess["startup_s"],
            "scales": [(s["width"], s["height"], s["steps"], s.get("detail_steps", 0)) for s in guess["scales"]],
            "estimated_scales_s": [round(s["seconds"], 2) for s in guess["scales"]],
            "real_scales_s": real["scales_s"],  # from one scale's first step to the next one's (the last: to done)
            "real_detail_s": real["detail_s"],
            "load_before": load_before,
            "load_after": load(),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, flags {cpu_flags()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "speed": measured_speed(),
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
