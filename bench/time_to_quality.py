"""Time to quality on the standard job: golden_gate × starry_night at 512 px, nst against pastiche.

Both tools run as users run them (their CLIs, start-up included, one after the other on the
same machine), and every final image is scored by the same independent evaluator
(bench/objective.py: pastiche's loss with pastiche's own torch VGG-19). nst runs with
``--content-weight 0.02``, which makes its objective exactly pastiche's, so the numbers compare
like with like. Also recorded: cold start (process start → first optimisation step).

    python bench/time_to_quality.py --out bench/results/time_to_quality-cpu
    python bench/time_to_quality.py --skip-pastiche --presets draft     # quick look
    python bench/time_to_quality.py --pastiche-pace 60                  # pastiche's recorded run, re-timed

A full pastiche run takes ~50 minutes. ``--pastiche-pace N`` keeps the recorded 1000-step run
(its objective and curve) and re-measures only its speed: pastiche runs N steps before and after
the nst runs, and the recorded wall time is scaled by the ratio of its seconds per step now to
its seconds per step then. Its per-step cost is constant over a run (2.94 s/step from step 0 to
1000 in the recorded one, 2.90–2.93 over every 200-step stretch), so the share of pastiche's time
stays a side-by-side measurement even on a machine of another speed or load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objective import SHARED, objective

from nst_runtime.objective.losses import PASTICHE_CONTENT_WEIGHT

PASTICHE_LINE = re.compile(r"^(\d+)\s+([\d.]+)\s+([\d.]+)")
TARGET_SHARE = 40  # issue 10: pastiche's 1000-step objective in a fortieth of its time
NST_LINE = re.compile(r"scale (\d+)/(\d+), step (\d+)/(\d+) \((\d+)×(\d+)\), loss ([\d.e+-]+)")


def _pastiche_loaded(path: Path, out: Path, **size) -> Path:
    """An image resized exactly as pastiche resizes it (bilinear, then uint8), saved for nst."""
    import numpy as np
    from pastiche.pastiche import VGG_MEAN, load_image

    x = load_image(str(path), **size)[0]
    for i, shift in enumerate(VGG_MEAN):
        x[i] += shift
    rgb = x[[2, 1, 0]].round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(rgb)).save(out)
    return out


def prepared_inputs(workdir: Path, size: int) -> tuple[Path, Path]:
    """Content and style at pastiche's working sizes, so both tools optimise the same targets.

    nst then computes at exactly these sizes (its style is area-matched to the content, which
    is what pastiche's default --style-size-pixels does), and no resampling difference enters.
    """
    content = _pastiche_loaded(SHARED / "golden_gate.jpg", workdir / f"golden_gate_{size}.png", size=size)
    with Image.open(content) as im:
        pixels = im.width * im.height
    style = _pastiche_loaded(SHARED / "starry_night.jpg", workdir / f"starry_night_for_{size}.png", pixels=pixels)
    return content, style


def run_timed(
    cmd: list[str], stream: str, pattern: re.Pattern, log: Path
) -> tuple[float, list[tuple[float, re.Match]]]:
    """Run ``cmd``; return its wall time and every matching output line with its arrival time."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # lines must arrive as printed: their times are the data
        stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
        stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        text=True,
    )
    lines = []
    with open(log, "w") as f:
        for line in getattr(proc, stream):
            f.write(line)
            m = pattern.search(line)
            if m:
                lines.append((time.perf_counter() - started, m))
    if proc.wait() != 0:
        raise SystemExit(f"{cmd[0]} failed, see {log}")
    return time.perf_counter() - started, lines


def bench_pastiche(workdir: Path, steps: int, size: int, every: int) -> dict:
    space = workdir / "pastiche-workspace"
    out = workdir / "pastiche.png"
    cmd = [sys.executable, "-m", "pastiche", "--device", "cpu", "--size", str(size), "--seed", "0",
           "--num-steps", str(steps), "--info-step", str(every), "--workspace", str(space),
           "--workspace-step", str(every), "-c", str(SHARED / "golden_gate.jpg"),
           "-s", str(SHARED / "starry_night.jpg"), "-o", str(out)]  # fmt: skip
    wall, lines = run_timed(cmd, "stdout", PASTICHE_LINE, workdir / "pastiche.log")
    width = len(str(steps))
    curve = []
    for t, m in lines:
        step = int(m.group(1))
        snapshot = space / f"{step:0{width}d}.png"
        curve.append({"seconds": t, "step": step, **objective(snapshot, size=size)})
    return {
        "tool": "pastiche 1.6.0",
        "command": " ".join(cmd[1:]),
        "wall_seconds": wall,
        "cold_start_seconds": lines[0][0] if lines else None,
        **objective(out, size=size),
        "curve": curve,
    }


def pastiche_pace(workdir: Path, steps: int, size: int) -> float:
    """pastiche's seconds per L-BFGS step now, between its 10th progress line and its last."""
    every = max(1, steps // 6)
    cmd = [sys.executable, "-m", "pastiche", "--device", "cpu", "--size", str(size), "--seed", "0",
           "--num-steps", str(steps), "--info-step", str(every), "-c", str(SHARED / "golden_gate.jpg"),
           "-s", str(SHARED / "starry_night.jpg"), "-o", str(workdir / "pastiche-pace.png")]  # fmt: skip
    _, lines = run_timed(cmd, "stdout", PASTICHE_LINE, workdir / "pastiche-pace.log")
    (t0, m0), (t1, m1) = lines[1], lines[-1]
    return (t1 - t0) / (int(m1.group(1)) - int(m0.group(1)))


def recorded_pace(run: dict) -> float:
    """Seconds per step of a recorded pastiche run, from its first to its last snapshot, as
    recorded (a re-timed run keeps its snapshots' recorded times beside the re-timed ones)."""
    first, last = run["curve"][0], run["curve"][-1]
    seconds = [point.get("recorded_seconds", point["seconds"]) for point in (first, last)]
    return (seconds[1] - seconds[0]) / (last["step"] - first["step"])


def bench_nst(workdir: Path, content: Path, style: Path, preset: str, size: int) -> dict:
    out = workdir / f"nst-{preset}.png"
    cmd = [
        sys.executable,
        "-m",
        "nst_runtime",
        str(content),
        str(style),
        "-o",
        str(out),
        "--quality",
        preset,
        "--size",
        str(size),
        "--content-weight",
        f"{PASTICHE_CONTENT_WEIGHT:g}",
        "--seed",
        "0",
    ]
    env_progress = {**os.environ, "NST_PROGRESS_EVERY": "0", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env_progress)
    curve, first_step = [], None
    with open(workdir / f"nst-{preset}.log", "w") as f:
        for line in proc.stderr:
            f.write(line)
            m = NST_LINE.search(line)
            if not m:
                continue
            now = time.perf_counter() - started
            first_step = first_step or now
            if m.group(1) == m.group(2):  # the final scale: its loss is the full-size objective
                curve.append({"seconds": now, "step": int(m.group(3)), "objective_ort": float(m.group(7))})
    if proc.wait() != 0:
        raise SystemExit(f"nst failed, see {workdir / f'nst-{preset}.log'}")
    wall = time.perf_counter() - started
    return {
        "tool": f"nst --quality {preset}",
        "command": " ".join(cmd[1:]),
        "wall_seconds": wall,
        "cold_start_seconds": first_step,
        **objective(out, size=size),
        "curve": curve,
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        xs = [p["seconds"] for p in r["curve"]]
        ys = [p.get("objective", p.get("objective_ort")) for p in r["curve"]]
        line = ax.plot(xs, ys, label=r["tool"], marker="." if len(xs) < 40 else None)[0]
        ax.scatter([r["wall_seconds"]], [r["objective"]], color=line.get_color(), marker="*", s=120, zorder=3)
        if r["tool"].startswith("pastiche"):  # the target: its objective in a fortieth of its time
            ax.axhline(r["objective"], color="grey", linestyle="--", linewidth=0.8)
            ax.axvline(r["wall_seconds"] / TARGET_SHARE, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time since process start (s, log)")
    ax.set_ylabel("pastiche objective at 512 px (log)")
    ax.set_title(
        "golden_gate × starry_night, 512 px, 2-core CPU\n"
        f"★ final image (independent evaluator); dashed: pastiche's result, 1/{TARGET_SHARE} of its time",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/results/time_to_quality-cpu", help="folder for images, logs, JSON")
    p.add_argument("--presets", default="draft,normal,high")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pastiche-steps", type=int, default=1000)
    p.add_argument("--pastiche-every", type=int, default=50, help="snapshot interval for the curve")
    p.add_argument("--skip-pastiche", action="store_true", help="reuse pastiche's recorded result.json entry")
    p.add_argument(
        "--pastiche-pace",
        type=int,
        default=0,
        metavar="STEPS",
        help="reuse pastiche's recorded run, its wall time scaled by its speed measured now over STEPS steps",
    )
    p.add_argument("--plot", default="docs/benchmark-time-to-quality.png")
    p.add_argument("--plot-only", action="store_true", help="redraw the plot from the recorded result.json")
    args = p.parse_args()
    workdir = Path(args.out)
    if args.plot_only:
        plot(json.loads((workdir / "result.json").read_text())["results"], Path(args.plot))
        return 0
    workdir.mkdir(parents=True, exist_ok=True)
    previous = json.loads((workdir / "result.json").read_text()) if (workdir / "result.json").exists() else None
    results = []
    content, style = prepared_inputs(workdir, args.size)
    paces = [pastiche_pace(workdir, args.pastiche_pace, args.size)] if args.pastiche_pace else []
    for preset in args.presets.split(","):
        r = bench_nst(workdir, content, style, preset, args.size)
        print(
            f"{r['tool']}: {r['wall_seconds']:.1f} s, objective {r['objective']:.6g}, "
            f"cold start {r['cold_start_seconds']:.1f} s",
            flush=True,
        )
        results.append(r)
    if args.pastiche_pace:
        paces.append(pastiche_pace(workdir, args.pastiche_pace, args.size))
    if (args.skip_pastiche or args.pastiche_pace) and previous:
        for r in previous["results"]:
            if r["tool"].startswith("pastiche"):  # keep when and how that run was made
                r.setdefault("recorded", {k: previous["meta"][k] for k in ("date", "command")})
                if paces:  # its times, as they would be on this machine now
                    factor = sum(paces) / len(paces) / recorded_pace(r)
                    r["pace"] = {"seconds_per_step_now": paces, "recorded_seconds_per_step": recorded_pace(r),
                                 "factor": factor}  # fmt: skip
                    r["wall_seconds"] = r.setdefault("recorded_wall_seconds", r["wall_seconds"]) * factor
                    for point in r["curve"]:
                        point.setdefault("recorded_seconds", point["seconds"])
                        point["seconds"] = point["recorded_seconds"] * factor
                results.append(r)
    elif not (args.skip_pastiche or args.pastiche_pace):
        r = bench_pastiche(workdir, args.pastiche_steps, args.size, args.pastiche_every)
        print(f"{r['tool']}: {r['wall_seconds']:.1f} s, objective {r['objective']:.6g}", flush=True)
        results.append(r)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
    }
    pastiche = next((r for r in results if r["tool"].startswith("pastiche")), None)
    for r in results:
        if pastiche and r is not pastiche:
            share = pastiche["wall_seconds"] / r["wall_seconds"]
            hit = next((p["seconds"] for p in r["curve"] if p["objective_ort"] <= pastiche["objective"]), None)
            r["share_of_pastiche"] = 1 / share
            ratio = r["objective"] / pastiche["objective"]
            first = hit and round(hit, 1)
            print(
                f"{r['tool']}: 1/{share:.1f} of pastiche's time, objective {ratio:.2f}× pastiche's "
                f"(reached at {first} s)",
            )
    (workdir / "result.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    if args.plot:
        plot(results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
