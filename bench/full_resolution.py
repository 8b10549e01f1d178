"""Full-resolution benchmarks (issue 11): memory, time, quality and the refusal, through the CLI.

Big test photos are made in a temporary folder (never committed): the 12-MP one is
golden_gate.jpg upscaled to 4000×3000, the 24-MP one a 2×2 mosaic of four shared photos
upscaled to 6000×4000. Every run goes through ``/usr/bin/time -v`` one after the other, with
``uptime`` noted before and after (the host is shared: timings are ratios within one run),
after ``nst estimate`` for the same command; its log stamps each line with the time since the
start, so the running ETA's error from 10 % of the run on is read from it.

    python bench/full_resolution.py --out bench/results/full_resolution        # everything, hours on 2 cores
    python bench/full_resolution.py --steps normal512,draft12,score,crops      # a subset

Steps: ``speed`` (measure this machine's speed for the estimates), ``normal512`` and
``draft512`` (the 512-px jobs on the 12-MP photo), ``draft12`` and ``normal12`` (12 MP at its
own size, --max-memory 6G), ``look`` (bench/full_size_look.py: the 12-MP draft against the
512-px draft, its preview), ``refuse`` (24 MP under --max-memory 300M), ``draft24``
(24 MP, draft, --max-memory 8G), ``score`` (bench/objective.py at full resolution, tiled, for
the 12-MP result and the 512-px result upscaled), ``crops`` (100 % crops of the 12-MP draft
and of its preview, the 512-px draft as nst scales it back, into docs/).

``probe12`` and ``probe24`` are the short form of ``draft12`` and ``draft24`` for a contended
host: the coarse scales get 0 steps (skipped) and the full-size scale the draft's own steps, so
that scale is planned exactly as in the draft run (same tiles, same L-BFGS history, same memory
room: the planner sizes the history from the scale's steps) and the peak RSS is the draft
run's top-scale peak, after a handful of evaluations instead of a few hundred.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NST = str(REPO / ".venv" / "bin" / "nst")
SHARED = REPO.parent / "shared" / "images"
STYLE = SHARED / "starry_night.jpg"
MOSAIC = ("golden_gate.jpg", "rocket.jpg", "coffee.png", "chelsea.png")
CROP = (700, 1600, 960, 640)  # left, top, width, height in the 4000×3000 photo: the near tower meets the deck


def make_photos(folder: Path) -> dict[str, Path]:
    from PIL import Image

    photos = {"12mp": folder / "photo_4000x3000.jpg", "24mp": folder / "photo_6000x4000.jpg"}
    if not photos["12mp"].exists():
        with Image.open(SHARED / "golden_gate.jpg") as im:
            im.convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS).save(photos["12mp"], quality=95)
    if not photos["24mp"].exists():
        mosaic = Image.new("RGB", (6000, 4000))
        for i, name in enumerate(MOSAIC):
            with Image.open(SHARED / name) as im:
                im = im.convert("RGB")
                w, h = im.size
                side = min(w, h * 3 // 2)  # a 3:2 centre crop
                box = ((w - side) // 2, (h - side * 2 // 3) // 2, (w + side) // 2, (h + side * 2 // 3) // 2)
                tile = im.crop(box).resize((3000, 2000), Image.Resampling.LANCZOS)
            mosaic.paste(tile, ((i % 2) * 3000, (i // 2) * 2000))
        mosaic.save(photos["24mp"], quality=95)
    return photos


def top_scale_only(photo: Path, steps: int | None = None) -> str:
    """--steps for the draft schedule of ``photo`` with every coarse scale skipped (and the top
    scale's steps cut to ``steps`` when given: its history is then that short too)."""
    from PIL import Image

    from nst_runtime.options import make_options
    from nst_runtime.planning.schedule import plan_scales

    with Image.open(photo) as im:
        width, height = im.size
    scales = plan_scales(make_options(size=None, quality="draft"), height, width)
    return ",".join(["0"] * (len(scales) - 1) + [str(steps or scales[-1].steps)])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def estimated(args: list[str]) -> float | None:
    """What ``nst estimate`` says the run will take, in seconds (on the cached speed)."""
    done = subprocess.run([NST, "estimate", *args, "--json", "-q"], capture_output=True, text=True, env=_env())
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1])["seconds"] if done.returncode == 0 and lines else None


def eta_errors(stamped: list[tuple[float, str]], wall: float) -> list[dict]:
    """The running ETA against the time really left, for each progress line from 10 % of the run on."""
    rows = []
    for at, line in stamped:
        found = re.search(r"ETA (?:(\d+):)?(\d+):(\d+)$", line)
        if not found or at < 0.1 * wall or " 100% " in line:  # at 100 %: only the result's writing is left
            continue
        hours, minutes, seconds = (int(g or 0) for g in found.groups())
        eta, left = hours * 3600 + minutes * 60 + seconds, wall - at
        rows.append({"at_s": round(at, 1), "eta_s": eta, "left_s": round(left, 1), "error": round(eta / left - 1, 3)})
    return rows


def timed(name: str, args: list[str], out_dir: Path) -> dict:
    """One CLI run under /usr/bin/time -v, after its estimate; its stderr goes to OUT/NAME.log with
    each line's time since the start, from which the running ETA's error is read."""
    log = out_dir / f"{name}.log"
    guess = estimated(args)
    before = uptime()
    started = time.time()
    stamped: list[tuple[float, str]] = []
    with open(log, "w") as f:
        run = subprocess.Popen(
            ["/usr/bin/time", "-v", NST, *args],
            stderr=subprocess.STDOUT,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert run.stdout is not None
        for line in run.stdout:
            stamped.append((time.time() - started, line.rstrip()))
            f.write(f"[{stamped[-1][0]:8.1f}] {line}")
        run.wait()
    text = log.read_text()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    result = {
        "name": name,
        "command": "nst " + " ".join(args),
        "exit": run.returncode,
        "wall_s": _seconds(wall.group(1)) if wall else time.time() - started,
        "estimate_s": guess,
        "peak_rss_gib": int(rss.group(1)) / 2**20 if rss else None,
        "uptime_before": before,
        "uptime_after": uptime(),
        "last_line": [line for line in text.splitlines() if line.startswith("nst") or line.startswith("wrote")][-1:],
    }
    if guess:
        result["estimate_error"] = round(guess / result["wall_s"] - 1, 3)
    etas = eta_errors(stamped, result["wall_s"])
    if etas:
        result["eta_error_range"] = [min(r["error"] for r in etas), max(r["error"] for r in etas)]
        result["etas"] = etas
    print(json.dumps(result), flush=True)
    return result


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NST_PROGRESS_EVERY", "60")
    return env


def _seconds(text: str) -> float:
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def crops(full: Path, small: Path, docs: Path) -> None:
    from PIL import Image

    left, top, w, h = CROP
    for src, name in ((full, "fullres-crop-full.jpg"), (small, "fullres-crop-512.jpg")):
        with Image.open(src) as im:
            im.convert("RGB").crop((left, top, left + w, top + h)).save(docs / name, quality=90)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "full_resolution"))
    p.add_argument("--work", help="folder for the big photos and results (default: a temporary one)")
    p.add_argument("--steps", default="speed,normal512,draft512,draft12,look,normal12,refuse,draft24,score,crops")
    p.add_argument("--probe-steps", type=int, help="the probes' top-scale steps (default: the draft's)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="nst-fullres-"))
    work.mkdir(parents=True, exist_ok=True)
    photos = make_photos(work)
    steps = args.steps.split(",")
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    style = str(STYLE)
    results = {
        "normal512": work / "result_512_normal.png",
        "draft512": work / "result_512_draft.png",
        "draft12": work / "result_4000x3000_draft.png",
        "normal12": work / "result_4000x3000_normal.png",
        "draft24": work / "result_6000x4000_draft.png",
        "refuse": work / "refused.png",
    }
    runs = {
        "normal512": [str(photos["12mp"]), style, "-o", str(results["normal512"]), "--quality", "normal"],
        "draft512": [str(photos["12mp"]), style, "-o", str(results["draft512"]), "--quality", "draft"],
        "draft12": [str(photos["12mp"]), style, "-o", str(results["draft12"]), "--size", "0", "--quality", "draft",
                    "--max-memory", "6G"],
        "normal12": [str(photos["12mp"]), style, "-o", str(results["normal12"]), "--size", "0", "--quality", "normal",
                     "--max-memory", "6G"],
        "refuse": [str(photos["24mp"]), style, "-o", str(results["refuse"]), "--size", "0", "--quality", "draft",
                   "--max-memory", "300M"],
        "draft24": [str(photos["24mp"]), style, "-o", str(results["draft24"]), "--size", "0", "--quality", "draft",
                    "--max-memory", "8G"],
    }  # fmt: skip
    for key, photo, budget in (("probe12", "12mp", "6G"), ("probe24", "24mp", "8G")):
        results[key] = work / f"result_{key}.png"
        runs[key] = [str(photos[photo]), style, "-o", str(results[key]), "--size", "0", "--steps",
                     top_scale_only(photos[photo], args.probe_steps), "--max-memory", budget]  # fmt: skip
    for step in steps:
        if step == "speed":  # measure this machine's speed now, for the estimates that precede each run
            subprocess.run([NST, "estimate", str(photos["12mp"]), style, "--recalibrate", "-q"], check=True, env=_env())
            summary["speed"] = {"uptime": uptime()}
        elif step in runs:
            summary[step] = timed(step, runs[step], out)
            if step == "refuse":
                summary[step]["output_written"] = results["refuse"].exists()
        elif step == "score":
            scores = {}
            for key in ("draft12", "normal512"):
                cmd = [sys.executable, str(REPO / "bench" / "objective.py"), str(results[key]), "--content",
                       str(photos["12mp"]), "--style", style, "--size", "0", "--style-size", "own",
                       "--content-weight", "0.5"]  # fmt: skip
                line = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                scores[key] = json.loads(line)
                print(line, flush=True)
            summary["score"] = {"uptime": uptime(), **scores}
        elif step == "look":  # the issue-26 measure: the 12-MP draft against its own preview, the 512-px draft
            cmd = [sys.executable, str(REPO / "bench" / "full_size_look.py"), str(photos["12mp"]), style,
                   str(results["draft12"]), str(results["draft512"]), "--preview-size", "512"]  # fmt: skip
            line = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
            summary["look"] = json.loads(line) if line.startswith("{") else {"failed": line[-400:]}
            print(json.dumps(summary["look"]), flush=True)
        elif step == "crops":
            crops(results["draft12"], results["draft512"], REPO / "docs")  # the full size beside its preview
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    for key in ("draft12", "normal12"):
        if "normal512" in summary and key in summary:
            ratio = summary[key]["wall_s"] / summary["normal512"]["wall_s"]
            print(f"12-MP {key[:-2]} / 512-px normal wall time: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
