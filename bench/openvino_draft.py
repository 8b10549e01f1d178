"""The standard job (golden_gate × starry_night, 512 px, draft) on several devices, taking turns.

Each run is ``nst --quality draft`` at pastiche's working sizes and objective balance, as in
bench/time_to_quality.py; its final image is scored by pastiche's own objective (bench/objective.py),
so a bf16 run is judged in fp32 like the others. Runs alternate device by device for ``--rounds``.

    python bench/openvino_draft.py --devices cpu openvino --rounds 2 --out /tmp/ov-draft
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from objective import objective
from openvino_probe import cpu_flags
from time_to_quality import prepared_inputs

from nst_runtime.objective.losses import PASTICHE_CONTENT_WEIGHT

DONE = re.compile(r"in ([\d.]+) s on (\S+), (\d+) evaluations, loss ([\d.e+-]+)")
USAGE = re.compile(r"maxrss_kb (\d+) cpu_s ([\d.]+) ([\d.]+)")


def pastiche_argv(content: Path, style: Path, out: Path, size: int, quality: str = "draft") -> list[str]:
    """nst's arguments for the standard job (draft unless ``quality`` says) at pastiche's objective balance."""
    return [str(content), str(style), "-o", str(out), "--quality", quality, "--size", str(size),
            "--content-weight", f"{PASTICHE_CONTENT_WEIGHT:g}", "--seed", "0"]  # fmt: skip


def timed(cmd: list[str], out: Path, size: int) -> dict:
    """Run one nst command writing ``out`` (its log beside it; peak RSS and CPU time through
    /usr/bin/time where it exists): what its last line says, and ``out`` scored by pastiche's
    fp32 objective."""
    if Path("/usr/bin/time").exists():
        cmd = ["/usr/bin/time", "-f", "maxrss_kb %M cpu_s %U %S", *cmd]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NST_PROGRESS_EVERY": "0"})
    wall = time.perf_counter() - started
    out.with_suffix(".log").write_text(done.stderr + done.stdout)
    if done.returncode != 0:
        raise SystemExit(f"nst failed for {out.name}: {done.stderr.strip().splitlines()[-1:]}")
    m = DONE.search(done.stdout + done.stderr)
    usage = USAGE.search(done.stderr)
    return {
        "ran_on": m.group(2) if m else None,
        "wall_seconds": round(wall, 2),
        "nst_seconds": float(m.group(1)) if m else None,
        "evaluations": int(m.group(3)) if m else None,
        "objective_own": float(m.group(4)) if m else None,  # in the run's own precision
        "load_after": round(os.getloadavg()[0], 2),
        "peak_rss_gib": round(int(usage.group(1)) / 2**20, 2) if usage else None,
        "cpu_seconds": round(float(usage.group(2)) + float(usage.group(3)), 1) if usage else None,  # user + sys
        "image": str(out),
        **objective(out, size=size),
    }


def run(workdir: Path, content: Path, style: Path, device: str, index: int, size: int, quality: str) -> dict:
    out = workdir / f"nst-{device}-{index}.png"
    cmd = [sys.executable, "-m", "nst_runtime", *pastiche_argv(content, style, out, size, quality), "--device", device]
    return {"device": device, **timed(cmd, out, size)}


def job_arguments(doc: str, which: str, default: list[str], out: str) -> argparse.Namespace:
    """The command line of a bench that runs the standard job once per ``which`` (``--devices``,
    ``--variants``) for ``--rounds``; its ``--out`` folder made."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(which, nargs="+", default=default)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--out", type=Path, default=Path(out))
    p.add_argument("--quality", default="draft", choices=["draft", "normal", "high"])
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main() -> int:
    args = job_arguments(__doc__, "--devices", ["cpu", "openvino"], "bench/results/openvino-draft")
    content, style = prepared_inputs(args.out, args.size)
    runs = []
    for r in range(args.rounds):
        for device in args.devices if r % 2 == 0 else args.devices[::-1]:
            runs.append(run(args.out, content, style, device, r, args.size, args.quality))
            row = runs[-1]
            print(f"{device:<14} {row['wall_seconds']:7.1f} s  objective {row['objective']:.6g}", flush=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_flags": cpu_flags(),
        "command": "python bench/openvino_draft.py " + " ".join(sys.argv[1:]),
        "runs": runs,
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
