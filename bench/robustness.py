"""The robustness matrix at full draft steps: every shared photo × painting, both optimisers.

The CI test (tests/test_robustness.py) runs the same checks with few steps; this runs the
schedule users get, and any extra photos and paintings (held-out pairs) given on the command
line, and records per pair: the start and final objective, the lowest loss reported, the
evaluations and steps, and the wall time.

    python bench/robustness.py --json bench/results/robustness-cpu.json [--photos a.jpg,b.jpg] [--paintings c.jpg]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_robustness import PAINTINGS, PHOTOS, objective_of  # noqa: E402

from conftest import SHARED_IMAGES  # noqa: E402
from nst_runtime.engine.runner import run  # noqa: E402
from nst_runtime.options import compute_size, make_options  # noqa: E402


def check(photo: Path, painting: Path, size: int, optimizer: str, quality: str) -> dict:
    content = Image.open(photo).convert("RGB")
    style = Image.open(painting).convert("RGB")
    height, width = compute_size(content.height, content.width, size)
    content = content.resize((width, height), Image.Resampling.BICUBIC)
    options = make_options(size=size, quality=quality, optimizer=optimizer, seed=1)
    reported: list[tuple[int, float]] = []

    def progress(event) -> None:
        if event.kind == "progress":
            reported.append((event.scale, event.loss))  # detail-pass steps report NaN: no full objective

    started = time.perf_counter()
    result = run(content, [style], options, progress=progress)
    seconds = time.perf_counter() - started
    last = max(s for s, _ in reported)
    final = objective_of(result.image, content, style, options)
    start = objective_of(content, content, style, options)
    lowest = min(loss for s, loss in reported if s == last and loss == loss)
    return {
        "photo": photo.name, "painting": painting.name, "size": size, "optimizer": optimizer,
        "start": start, "final": final, "lowest_reported": lowest, "final_over_start": final / start,
        "final_over_lowest": final / lowest, "steps": len(reported), "evaluations": result.evaluations,
        "seconds": seconds,
        "ok": final <= 0.5 * start and final <= 1.01 * lowest and result.evaluations - 10 <= 2 * (len(reported) - 5),
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", help="comma-separated photo files (default: the shared photos)")
    p.add_argument("--paintings", help="comma-separated painting files (default: the shared paintings)")
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--optimizers", default="lbfgs,adam")
    p.add_argument("--quality", default="draft")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    photos = [Path(s) for s in args.photos.split(",")] if args.photos else [SHARED_IMAGES / n for n in PHOTOS]
    paintings = [SHARED_IMAGES / n for n in PAINTINGS]
    if args.paintings:
        paintings = [Path(s) for s in args.paintings.split(",")]
    rows = []
    for photo, painting, size, optimizer in itertools.product(
        photos, paintings, [int(s) for s in args.sizes.split(",")], args.optimizers.split(",")
    ):
        row = check(photo, painting, size, optimizer, args.quality)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    failed = [r for r in rows if not r["ok"]]
    print(f"{len(rows) - len(failed)}/{len(rows)} runs pass", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
