"""Time to quality on the standard job: golden_gate × starry_night at 512 px, nst against pastiche.

Both tools run as users run them (their CLIs, start-up included, one after the other on the
same machine), and every final image is scored by the same independent evaluator
(bench/objective.py: pastiche's loss with pastiche's own torch VGG-19). nst runs with
``--content-weight 0.02``, which makes its objective exactly pastiche's, so the numbers compare
like with like. Also recorded: cold start (process start → first optimisation step).

    python bench/time_to_quality.py --out bench/results/time_to_quality-cpu
    python bench/time_to_quality.py --skip-pastiche --presets draft     # quick look
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

from nst_runtime.losses import PASTICHE_CONTENT_WEIGHT

PASTICHE_LINE = re.compile(r"^(\d+)\s+([\d.]+)\s+([\d.]+)")
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
        if r["tool"].startswith("pastiche"):  # the target: its objective in a tenth of its time
            ax.axhline(r["objective"], color="grey", linestyle="--", linewidth=0.8)
            ax.axvline(r["wall_seconds"] / 10, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time since process start (s, log)")
    ax.set_ylabel("pastiche objective at 512 px (log)")
    ax.set_title(
        "golden_gate × starry_night, 512 px, 2-core CPU\n"
        "★ final image (independent evaluator); dashed: pastiche's result, 1/10 of its time",
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
    for preset in args.presets.split(","):
        r = bench_nst(workdir, content, style, preset, args.size)
        print(
            f"{r['tool']}: {r['wall_seconds']:.1f} s, objective {r['objective']:.6g}, "
            f"cold start {r['cold_start_seconds']:.1f} s",
            flush=True,
        )
        results.append(r)
    if args.skip_pastiche and previous:
        for r in previous["results"]:
            if r["tool"].startswith("pastiche"):  # keep when and how that run was made
                r.setdefault("recorded", {k: previous["meta"][k] for k in ("date", "command")})
                results.append(r)
    elif not args.skip_pastiche:
        r = bench_pastiche(workdir, args.pastiche_steps, args.size, args.pastiche_every)
        print(f"{r['tool']}: {r['wall_seconds']:.1f} s, objective {r['objective']:.6g}", flush=True)
        results.append(r)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
    }
    (workdir / "result.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    if args.plot:
        plot(results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
