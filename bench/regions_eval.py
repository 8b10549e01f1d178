"""Seconds per evaluation of a two-region objective: guided graph against the two-graph autograd
path, with today's unmasked fused graph alongside, in one process, taking turns.

    python bench/regions_eval.py --sizes 256,512 --rounds 3 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"


def _tensor(name: str, height: int, width: int) -> torch.Tensor:
    with Image.open(IMAGES / name) as im:
        rgb = np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255
    return torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("NST_THREADS", "2")))
    from nst_runtime.evaluation.whole import AutogradEvaluator, FusedEvaluator, fused_inputs, guided_inputs
    from nst_runtime.imaging.images import load_image
    from nst_runtime.imaging.tensors import to_tensor as _to_tensor
    from nst_runtime.objective.builder import ObjectiveBuilder
    from nst_runtime.objective.regions import prepare
    from nst_runtime.options import make_options
    from nst_runtime.vgg.features import get_vgg

    vgg = get_vgg()
    for size in (int(s) for s in args.sizes.split(",")):
        height, width = round(size * 734 / 979), size
        photo = _tensor("golden_gate.jpg", height, width)
        styles = [load_image(IMAGES / n) for n in ("starry_night.jpg", "the_scream.jpg")]
        left = np.zeros((height, width), np.float32)
        left[:, : width // 2] = 1
        content = load_image(photo[0].permute(1, 2, 0).numpy())
        regions = prepare([left, 1 - left], None, content, styles, lambda _m: None)
        tensors = [_to_tensor(s.rgb, torch.device("cpu")) for s in styles]
        options = make_options()
        masked = ObjectiveBuilder(vgg, options, photo, tensors, [0.5, 0.5], (), regions).at(height, width)
        plain = ObjectiveBuilder(vgg, options, photo, tensors[:1], [1.0]).at(height, width)
        evaluators = {
            "fused (one style, unmasked)": FusedEvaluator(vgg, plain, fused_inputs(vgg, plain)),
            "guided graph (two regions)": FusedEvaluator(vgg, masked, guided_inputs(vgg, masked), "guided"),
            "two graphs + autograd (two regions)": AutogradEvaluator(vgg, masked),
        }
        times: dict[str, list[float]] = {name: [] for name in evaluators}
        for evaluate in evaluators.values():
            evaluate(photo)  # sessions made, arenas grown
        for _ in range(args.rounds):
            for name, evaluate in evaluators.items():
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    evaluate(photo)
                    times[name].append(time.perf_counter() - started)
        base = statistics.median(times["two graphs + autograd (two regions)"])
        print(f"{width}×{height} (load {os.getloadavg()[0]:.1f}):")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name}: median {median:.3f} s (min {min(values):.3f}), {median / base:.2f}× autograd")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
