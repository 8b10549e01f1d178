"""Temporal consistency: independent per-frame stylization against the temporal mode (Ruder et al. 2016).

A synthetic clip is made from a photo, panned and zoomed a few pixels per frame. Both modes
stylize every frame with the same options and seed; the measure is Lai et al. 2018's temporal
warping error (mean c-weighted squared difference between each output and the previous output
warped by the input's flow) and the style loss of each frame's final objective.

    python bench/temporal.py                                    # 24 frames, 256 px → JSON + GIF
    python bench/temporal.py --frames 8 --size 128 --frame-steps 20,40 --temporal-weights 0.3,1,3
    python bench/temporal.py --clip path/to/video.mp4           # a real clip instead

Frames are saved as PNG under --out as they finish; a rerun with the same --out reuses them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

CONTENT = "golden_gate.jpg"
STYLE = "starry_night.jpg"
ROOT = Path(__file__).resolve().parents[1]


def synthetic_clip(photo: Path, frames: int, width: int, pan: float = 2.0, zoom: float = 0.004) -> list[np.ndarray]:
    """``frames`` views of ``photo``: the camera pans ``pan`` px and zooms in by ``zoom`` per frame."""
    with Image.open(photo) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    height = round(width * rgb.shape[0] / rgb.shape[1])
    base_w = round(width * 1.4)
    base = cv2.resize(rgb, (base_w, round(base_w * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    cx, cy = base.shape[1] / 2 - pan * frames / 2, base.shape[0] / 2
    out = []
    for t in range(frames):
        s = 1.25 * (1 + zoom * t)  # output pixels per base pixel
        # dst → src: src = dst / s + offset, the view centred on (cx + pan t, cy)
        m = np.array([[1 / s, 0, cx + pan * t - width / (2 * s)], [0, 1 / s, cy - height / (2 * s)]], np.float32)
        frame = cv2.warpAffine(base, m, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        out.append(np.clip(frame, 0, 1))
    return out


def real_clip(path: Path, frames: int, width: int) -> list[np.ndarray]:
    from nst_runtime.imaging.frameio import open_clip

    out = []
    for rgb in open_clip(path).frames():
        h = round(width * rgb.shape[0] / rgb.shape[1])
        out.append(cv2.resize(rgb.astype(np.float32) / 255.0, (width, h), interpolation=cv2.INTER_AREA))
        if len(out) == frames:
            break
    return out


def _load(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _save(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)).save(path)


def independent(frames, style, options, folder: Path) -> tuple[list[np.ndarray], list[dict]]:
    """Every frame a still, from its own content, with the same options and seed."""
    from nst_runtime.engine.runner import run

    folder.mkdir(parents=True, exist_ok=True)
    outputs, stats = [], []
    record = folder / "stats.json"
    known = json.loads(record.read_text()) if record.is_file() else []
    for i, frame in enumerate(frames):
        cached = _load(folder / f"{i:04d}.png")
        if cached is not None and i < len(known):
            outputs.append(cached)
            stats.append(known[i])
            continue
        result = run(frame, [style], options)
        outputs.append(np.asarray(result.image, dtype=np.float32) / 255.0)
        stats.append({"style": result.parts["style"], "content": result.parts["content"], "seconds": result.seconds})
        _save(outputs[-1], folder / f"{i:04d}.png")
        record.write_text(json.dumps(stats))
        style_loss = result.parts["style"]
        print(f"independent {i + 1}/{len(frames)}: {result.seconds:.1f} s, style {style_loss:.4g}", flush=True)
    return outputs, stats


def temporal(frames, style, options, weight: float, steps: int, folder: Path) -> tuple[list[np.ndarray], list[dict]]:
    from nst_runtime.engine.animation import stylize_frames

    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "stats.json"
    if record.is_file() and len(json.loads(record.read_text())) == len(frames):  # a finished earlier run
        return [_load(folder / f"{i:04d}.png") for i in range(len(frames))], json.loads(record.read_text())
    outputs, stats = [], []
    for done in stylize_frames(frames, [style], options, temporal_weight=weight, frame_steps=steps):
        outputs.append(done.work)
        parts = done.parts
        stats.append(
            {
                "style": parts["style"],
                "content": parts["content"],
                "temporal": parts.get("temporal", 0.0),
                "seconds": done.seconds,
                "consistency": done.consistency,
            }
        )
        _save(done.work, folder / f"{done.index:04d}.png")
        print(
            f"temporal w={weight} steps={steps} {done.index + 1}/{len(frames)}: {done.seconds:.1f} s, "
            f"style {parts['style']:.4g}, temporal {parts.get('temporal', 0):.4g}",
            flush=True,
        )
    record.write_text(json.dumps(stats))
    return outputs, stats


def segmented(frames, style, options, weight: float, steps: int, length: int, overlap: int, folder: Path):
    """The clip stylized as Ray would split it (segments starting ``overlap`` frames early), run locally."""
    from nst_runtime.engine.animation import stylize_frames
    from nst_runtime.jobs.cluster import plan_segments

    folder.mkdir(parents=True, exist_ok=True)
    outputs: list = [None] * len(frames)
    plan = plan_segments(len(frames), [0], length, overlap)
    for seg in plan:
        for done in stylize_frames(
            frames[seg.first : seg.end], [style], options, temporal_weight=weight, frame_steps=steps, start=seg.first
        ):
            if done.index >= seg.start:
                outputs[done.index] = done.work
                _save(done.work, folder / f"{done.index:04d}.png")
        print(f"segment {seg.key + 1}/{len(plan)} done", flush=True)
    return outputs, [seg.start for seg in plan if seg.warmup > 0]


def side_by_side_gif(frames, left, right, path: Path, fps: float = 8) -> None:
    """Input | independent | temporal, one row per frame."""
    strips = []
    for f, a, b in zip(frames, left, right, strict=True):
        strips.append(np.concatenate([f, np.ones((f.shape[0], 4, 3)), a, np.ones((f.shape[0], 4, 3)), b], axis=1))
    images = [Image.fromarray(np.clip(np.rint(s * 255), 0, 255).astype(np.uint8)) for s in strips]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", type=int, default=256, help="frame width")
    p.add_argument("--quality", default="normal", help="the stills' quality preset (first frame and independent)")
    p.add_argument("--frame-steps", default="60", help="steps of each later frame, comma-separated to sweep")
    p.add_argument("--temporal-weights", default="1", help="--temporal-weight values, comma-separated to sweep")
    p.add_argument("--clip", type=Path, help="a real clip instead of the synthetic pan/zoom")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "temporal-cpu")
    p.add_argument("--segment", type=int, help="also stylize in segments of this many frames (as --ray does)")
    p.add_argument("--overlap", type=int, default=4, help="warm-up frames of each segment after the first")
    p.add_argument("--gif", type=Path, help="write input | independent | temporal (first sweep point) here")
    args = p.parse_args()

    from nst_runtime.imaging.motion import pair_errors, warping_error
    from nst_runtime.options import make_options

    images = ROOT.parent / "shared" / "images"
    style = images / STYLE
    if args.clip:
        frames = real_clip(args.clip, args.frames, args.size)
    else:
        frames = synthetic_clip(images / CONTENT, args.frames, args.size)
    options = make_options(size=None, quality=args.quality, seed=0)
    started = time.perf_counter()
    ind_out, ind_stats = independent(frames, style, options, args.out / "independent")
    ind_error = warping_error(ind_out, frames)
    still_style = float(np.mean([s["style"] for s in ind_stats]))
    rows = []
    for weight in (float(w) for w in args.temporal_weights.split(",")):
        for steps in (int(s) for s in args.frame_steps.split(",")):
            out, stats = temporal(frames, style, options, weight, steps, args.out / f"temporal-w{weight:g}-s{steps}")
            later = stats[1:]
            row = {
                "temporal_weight": weight,
                "frame_steps": steps,
                "warping_error": warping_error(out, frames),
                "error_ratio": warping_error(out, frames) / ind_error,
                "style_ratio": float(np.mean([s["style"] for s in later])) / still_style,
                "seconds_per_later_frame": float(np.mean([s["seconds"] for s in later])),
                "mean_consistency": float(np.mean([s["consistency"] for s in later])),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.gif and len(rows) == 1:
                side_by_side_gif(frames, ind_out, out, args.gif)
    seams = None
    if args.segment:
        weight, steps = rows[0]["temporal_weight"], rows[0]["frame_steps"]
        whole = [_load(args.out / f"temporal-w{weight:g}-s{steps}" / f"{i:04d}.png") for i in range(len(frames))]
        name = f"segmented-w{weight:g}-s{steps}-l{args.segment}-o{args.overlap}"
        parts, joins = segmented(frames, style, options, weight, steps, args.segment, args.overlap, args.out / name)
        seg_pairs, whole_pairs = pair_errors(parts, frames), pair_errors(whole, frames)
        seams = {
            "segment": args.segment,
            "overlap": args.overlap,
            "joins": joins,
            "error_at_joins": [seg_pairs[j - 1] for j in joins],
            "unsegmented_error_at_joins": [whole_pairs[j - 1] for j in joins],
            "segmented_warping_error": warping_error(parts, frames),
            "unsegmented_warping_error": warping_error(whole, frames),
        }
        print(json.dumps(seams), flush=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "clip": str(args.clip) if args.clip else f"synthetic pan/zoom of {CONTENT}",
        "frames": args.frames,
        "size": [frames[0].shape[1], frames[0].shape[0]],
        "quality": args.quality,
        "independent": {
            "warping_error": ind_error,
            "style": still_style,
            "seconds_per_frame": float(np.mean([s["seconds"] for s in ind_stats])),
        },
        "temporal": rows,
        "seams": seams,
        "wall_seconds": time.perf_counter() - started,
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
