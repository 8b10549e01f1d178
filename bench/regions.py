"""Regions (guided Gram matrices) on a real photo: how clearly each region follows its own painting.

Runs, at one size and quality:
- two styles on complementary masks (left/right halves, and a soft diagonal): per style layer, the
  ratio of the output region's guided-Gram loss against its own painting to that against the
  other painting (the issue's measure: ≤ 0.5 means clearly its own);
- each painting alone over the whole image (today's runs): the same ratios on its region, which
  show what the statistics of a region reach at this size without regions;
- one style inside a hard mask ("keep the photo") against today's whole-image run at equal steps:
  the largest change outside the mask, and the inside's guided style loss in both.
Writes the images (photo, masks, outputs) to --images and the numbers to --json.

    python bench/regions.py                                   # 512 px, normal quality
    python bench/regions.py --size 256 --quality draft --json bench/results/regions-256.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "images"
PHOTO = REPO / "docs" / "demo-content.jpg"  # matplotlib's Grace Hopper (public domain): committed already
PAINTINGS = ("starry_night.jpg", "the_scream.jpg")


def _rgb(path: Path, longest: int | None = None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if longest is not None:
            factor = longest / max(im.size)
            im = im.resize((round(im.width * factor), round(im.height * factor)), Image.Resampling.LANCZOS)
        return np.asarray(im, np.float32) / 255


def ratios(vgg, image: np.ndarray, mask: np.ndarray, own: np.ndarray, other: np.ndarray) -> dict[str, float]:
    from nst_runtime.evaluation.metrics import guided_style_losses as guided_losses

    to_own, to_other = guided_losses(vgg, image, mask, own), guided_losses(vgg, image, mask, other)
    return {k: to_own[k] / to_other[k] for k in to_own}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--quality", default="normal")
    p.add_argument("--photo", default=str(PHOTO), help="the photo (default: the README's demo photo)")
    p.add_argument("--images", default="docs/regions", help="folder for the photo, masks and results")
    p.add_argument("--json", default=None, help="results file (default bench/results/regions-<size>.json)")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("NST_THREADS", "2")))
    from nst_runtime.engine.runner import run
    from nst_runtime.evaluation.metrics import guided_style_losses as guided_losses
    from nst_runtime.options import make_options
    from nst_runtime.vgg.features import get_vgg

    vgg = get_vgg()
    out_dir = Path(args.images)
    out_dir.mkdir(parents=True, exist_ok=True)
    photo = _rgb(Path(args.photo), args.size)
    paintings = [_rgb(IMAGES / n) for n in PAINTINGS]
    height, width = photo.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    left = (xx < width // 2).astype(np.float32)
    diagonal = np.clip(0.5 + 3 * (xx / width - yy / height), 0, 1).astype(np.float32)
    options = make_options(size=args.size, quality=args.quality)

    def save(name: str, rgb: np.ndarray) -> None:
        Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)).save(out_dir / name, quality=90)

    save("photo.jpg", photo)
    results: dict = {"size": [height, width], "quality": args.quality, "photo": Path(args.photo).name}
    results["paintings"] = PAINTINGS
    timings: dict[str, float] = {}

    def stylize(name: str, styles, masks=None) -> np.ndarray:
        started = time.perf_counter()
        result = run(photo, styles, options, masks=masks)
        timings[name] = round(time.perf_counter() - started, 1)
        rgb = np.asarray(result.image, np.float32) / 255
        save(f"{name}.jpg", rgb)
        print(f"{name}: {timings[name]} s, {result.evaluations} evaluations", flush=True)
        return rgb

    whole = [stylize(f"whole-{i + 1}", [painting]) for i, painting in enumerate(paintings)]
    for shape, mask in (("halves", left), ("diagonal", diagonal)):
        save(f"mask-{shape}.png", np.repeat(mask[..., None], 3, axis=2))
        out = stylize(f"two-styles-{shape}", paintings, [mask, 1 - mask])
        regions = ((mask, 0), (1 - mask, 1))
        results[f"two_styles_{shape}"] = {
            f"region {i + 1} (style {i + 1})": ratios(vgg, out, m, paintings[i], paintings[1 - i]) for m, i in regions
        }
        results[f"whole_image_runs_{shape}"] = {
            f"style {i + 1} alone, on region {i + 1}": ratios(vgg, whole[i], m, paintings[i], paintings[1 - i])
            for m, i in regions
        }
    inside = stylize("keep-photo", paintings[:1], [left])
    photo8 = np.rint(photo * 255) / 255
    outside = 1 - left
    results["keep_photo"] = {
        "max_change_outside_255": float(np.abs(inside - photo8)[outside > 0].max() * 255),
        "inside_style_loss": sum(guided_losses(vgg, inside, left, paintings[0]).values()),
        "inside_style_loss_whole_image_run": sum(guided_losses(vgg, whole[0], left, paintings[0]).values()),
    }
    results["seconds"] = timings
    results["machine"] = {"cpu": platform.processor() or platform.machine(), "load": os.getloadavg()}
    results["date"] = datetime.now(UTC).isoformat(timespec="minutes")
    path = Path(args.json or f"bench/results/regions-{args.size}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
