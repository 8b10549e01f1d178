"""Photos and paintings unlike the shared ones, for bench/robustness.py's held-out-style checks.

The shared images are ordinary photos and paintings; the optimiser must also hold on inputs at
the edges (almost black, blown out, flat, a thin strip; a monochrome, a noise, a blurred, a
checkerboard painting). They are made from the shared images and matplotlib's sample photo, so
nothing new is committed and the same files come out on every machine.

    python bench/synthetic_inputs.py /tmp/held
    python bench/robustness.py --photos /tmp/held/hopper.png,… --paintings /tmp/held/mono_blue.png,…
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import SHARED_IMAGES


def _rgb(source) -> np.ndarray:
    with Image.open(source) as image:
        return np.asarray(image.convert("RGB"), np.float32) / 255


def _save(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)


def write(folder: Path) -> list[Path]:
    import matplotlib.cbook as cbook

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    bridge = _rgb(SHARED_IMAGES / "golden_gate.jpg")
    scream = _rgb(SHARED_IMAGES / "the_scream.jpg")
    checker = (np.indices((256, 256)).sum(0) // 16 % 2)[..., None] * np.array([1.0, 40 / 255, 0.0])
    images = {
        "hopper.png": _rgb(cbook.get_sample_data("grace_hopper.jpg")),
        "dark.png": bridge * 0.08,
        "blown.png": bridge * 3.0,
        "flat.png": 0.5 + rng.normal(0, 0.01, (300, 400, 3)),
        "strip.png": bridge[200:260],
        "mono_blue.png": scream.mean(2, keepdims=True) * np.array([0.2, 0.3, 0.9]),
        "noise.png": rng.random((400, 300, 3)),
        "checker.png": checker,
    }
    for name, rgb in images.items():
        _save(rgb, folder / name)
    blurred = Image.open(SHARED_IMAGES / "shipwreck.jpg").convert("RGB").filter(ImageFilter.GaussianBlur(8))
    blurred.save(folder / "blurred.png")
    return sorted(folder / name for name in [*images, "blurred.png"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    for path in write(p.parse_args().folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
