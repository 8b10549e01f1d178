"""Full-resolution benchmarks (issue 11): memory, time, quality and the refusal, through the CLI.

Big test photos are made in a temporary folder (never committed): the 12-MP one is
golden_gate.jpg upscaled to 4000×3000, the 24-MP one a 2×2 mosaic of four shared photos
upscaled to 6000×4000. Every run goes through ``/usr/bin/time -v`` one after the other, with
``uptime`` noted before and after (the host is shared: timings are ratios within one run).

    python bench/full_resolution.py --out bench/results/full_resolution        # everything, hours on 2 cores
    python bench/full_resolution.py --steps normal512,draft12,score,crops      # a subset

Steps: ``normal512`` (the 512-px normal job on the 12-MP photo), ``draft12`` (12 MP at its own
size, --quality draft --max-memory 6G), ``refuse`` (24 MP under --max-memory 300M), ``draft24``
(24 MP, draft, --max-memory 8G), ``score`` (bench/objective.py at full resolution, tiled, for
the 12-MP result and the 512-px result upscaled), ``crops`` (100 % crops of both into docs/).

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


def timed(name: str, args: list[str], out_dir: Path) -> dict:
    """One CLI run under /usr/bin/time -v; its stderr goes to OUT/NAME.log."""
    log = out_dir / f"{name}.log"
    before = uptime()
    started = time.time()
    with open(log, "w") as f:
        done = subprocess.run(
            ["/usr/bin/time", "-v", str(REPO / ".venv" / "bin" / "nst"), *args], stderr=f, stdout=f, env=_env()
        )
    text = log.read_text()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    result = {
        "name": name,
        "command": "nst " + " ".join(args),
        "exit": done.returncode,
        "wall_s": _seconds(wall.group(1)) if wall else time.time() - started,
        "peak_rss_gib": int(rss.group(1)) / 2**20 if rss else None,
        "uptime_before": before,
        "uptime_after": uptime(),
        "last_line": [line for line in text.splitlines() if line.startswith("nst") or line.startswith("wrote")][-1:],
    }
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
    p.add_argument("--steps", default="normal512,draft12,refuse,draft24,score,crops")
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
        "draft12": work / "result_4000x3000_draft.png",
        "draft24": work / "result_6000x4000_draft.png",
        "refuse": work / "refused.png",
    }
    runs = {
        "normal512": [str(photos["12mp"]), style, "-o", str(results["normal512"])],
        "draft12": [str(photos["12mp"]), style, "-o", str(results["draft12"]), "--size", "0", "--quality", "draft",
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
        if step in runs:
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
        elif step == "crops":
            crops(results["draft12"], results["normal512"], REPO / "docs")
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if "normal512" in summary and "draft12" in summary:
        ratio = summary["draft12"]["wall_s"] / summary["normal512"]["wall_s"]
        print(f"12-MP draft / 512-px normal wall time: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
