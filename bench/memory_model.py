"""Measured peak memory of one evaluation, against the planner's estimate (nst_runtime/planning/memory.py).

Each (mode, size) runs in a fresh process: the graphs' sessions are created and warmed on a
small image, the peak-RSS counter is reset (``/proc/self/clear_refs``), then one evaluation runs
and the rise of the peak above the resting RSS before it (less the image and the content target,
which the planner counts as image buffers) is reported beside the estimate.

    python bench/memory_model.py --cases fused:1024x768,autograd:1024x768,tiled:2048x1536:512,forward:2048x1536
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def measure(mode: str, width: int, height: int, tile: int | None) -> dict:
    import torch

    from nst_runtime.evaluation.targets import Extractor
    from nst_runtime.evaluation.tiled import TiledEvaluator
    from nst_runtime.evaluation.whole import AutogradEvaluator, FusedEvaluator, fused_inputs
    from nst_runtime.imaging.tensors import resize
    from nst_runtime.objective.builder import ObjectiveBuilder
    from nst_runtime.options import make_options
    from nst_runtime.planning import memory
    from nst_runtime.vgg.features import get_vgg

    vgg = get_vgg()
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, max(2, height // 64), max(2, width // 64), generator=gen)
    style = resize(coarse, 256, 320)
    small = ObjectiveBuilder(vgg, make_options(), resize(coarse, 64, 64), [style], [1.0]).at(64, 64)
    FusedEvaluator(vgg, small, fused_inputs(vgg, small))(resize(coarse, 64, 64))  # every session created and warm
    AutogradEvaluator(vgg, small)(resize(coarse, 64, 64))
    Path("/proc/self/clear_refs").write_text("5")
    resting = _rss("VmRSS")
    x = resize(coarse, height, width)
    targets = Extractor(vgg, tile_size=tile)  # the targets as the engine makes them for this evaluation
    objective = ObjectiveBuilder(vgg, make_options(), x, [style], [1.0], targets=targets).at(height, width)
    held = x.numel() * 4 + objective.content.target.numel() * 4  # the image and the content target
    if mode == "fused":
        evaluate = FusedEvaluator(vgg, objective, fused_inputs(vgg, objective))
    elif mode == "autograd":
        evaluate = AutogradEvaluator(vgg, objective)
    elif mode == "tiled":
        evaluate = TiledEvaluator(vgg, objective, tile)
    else:

        def evaluate(image):
            return targets.features(image, ("relu4_2",))

    evaluate(x)
    peak = _rss("VmHWM")
    if mode != "forward":
        held += x.numel() * 4  # the gradient it returns: an image buffer too
    estimator = memory.MemoryModel.for_graphs(vgg.graphs)
    strategy = {"fused": "fused", "autograd": "autograd", "tiled": "tiled", "forward": "forward"}[mode]
    estimate = estimator.evaluation(strategy, height, width, tile)
    return {
        "mode": mode,
        "size": f"{width}x{height}",
        "tile": tile,
        "resting_mib": resting / 2**20,
        "rise_mib": (peak - resting - held) / 2**20,
        "estimate_mib": estimate / 2**20,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="fused:512x384,fused:1024x768,autograd:1024x768,tiled:2048x1536:512")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--json", help="append the results (JSON lines) to this file")
    args = p.parse_args()
    if args.one:
        mode, size, *rest = args.one.split(":")
        width, height = (int(v) for v in size.split("x"))
        print(json.dumps(measure(mode, width, height, int(rest[0]) if rest else None)))
        return 0
    for case in args.cases.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", case], capture_output=True, text=True)
        error = json.dumps({"case": case, "error": out.stderr[-400:]})
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else error
        print(line, flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
