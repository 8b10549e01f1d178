"""``nst demo``: the bundled example, runnable on a fresh machine with nothing downloaded.

Content: the Grace Hopper portrait that matplotlib ships as sample data (public domain, U.S.
Navy), or a generated landscape where matplotlib is absent. Style: a brush-stroke painting the
project paints itself, swirling strokes in a night-sky palette, deterministic for a seed.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

PALETTE = [
    (16, 34, 92),
    (31, 64, 148),
    (58, 110, 190),
    (96, 150, 210),
    (232, 200, 72),
    (246, 226, 128),
    (20, 20, 40),
    (140, 170, 120),
]


def demo_content() -> Image.Image:
    try:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    except Exception:  # matplotlib missing or without sample data
        return generated_landscape()


def generated_landscape(width: int = 512, height: int = 384) -> Image.Image:
    """A simple scene with clear shapes, for machines without matplotlib's sample photo."""
    im = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(im)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(120 + 100 * t), int(170 + 60 * t), int(235 - 40 * t)))
    draw.ellipse([width * 0.7, height * 0.1, width * 0.85, height * 0.3], fill=(255, 230, 150))
    draw.polygon([(0, height * 0.75), (width * 0.3, height * 0.45), (width * 0.6, height * 0.75)], fill=(70, 100, 80))
    draw.polygon(
        [(width * 0.35, height * 0.75), (width * 0.7, height * 0.5), (width, height * 0.75)], fill=(90, 120, 90)
    )
    draw.rectangle([0, height * 0.75, width, height], fill=(60, 120, 60))
    draw.rectangle([width * 0.15, height * 0.55, width * 0.35, height * 0.8], fill=(180, 60, 50))
    draw.polygon(
        [(width * 0.12, height * 0.56), (width * 0.25, height * 0.42), (width * 0.38, height * 0.56)],
        fill=(110, 40, 40),
    )
    return im


def generated_painting(width: int = 512, height: int = 512, seed: int = 1889) -> Image.Image:
    """Thick strokes that follow a swirling flow field: a texture with clear brush-work for VGG to copy."""
    rng = random.Random(seed)
    im = Image.new("RGB", (width, height), PALETTE[1])
    draw = ImageDraw.Draw(im)
    centres = [(rng.uniform(0, width), rng.uniform(0, height), rng.choice((-1, 1))) for _ in range(5)]

    def angle(x: float, y: float) -> float:
        a = 0.0
        for cx, cy, spin in centres:
            a += spin * math.atan2(y - cy, x - cx) / len(centres)
        return a + math.pi / 2 + 0.6 * math.sin(x / 61.0) * math.cos(y / 47.0)

    for _ in range(6000):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        base = PALETTE[rng.choice((0, 1, 1, 2, 2, 3, 4, 5, 6, 7)) if y > height * 0.15 else rng.choice((4, 5, 3))]
        shade = rng.uniform(0.8, 1.15)
        fill = tuple(min(255, int(c * shade)) for c in base)
        points = [(x, y)]
        for _ in range(rng.randint(4, 9)):
            a = angle(x, y)
            x, y = x + 5 * math.cos(a), y + 5 * math.sin(a)
            points.append((x, y))
        draw.line(points, fill=fill, width=rng.randint(3, 7), joint="curve")
    return im.filter(ImageFilter.SMOOTH)


def main(argv: list[str]) -> int:
    from .common import Parser, add_run_options
    from .stylize import run_and_save

    p = Parser(
        prog="nst demo",
        description="Stylize the bundled example: matplotlib's Grace Hopper photo "
        "in the style of a painting nst generates itself.",
    )
    p.add_argument("-o", "--output", default="demo.png", help="result file")
    p.add_argument("--save-inputs", metavar="DIR", help="also write the content and style images to DIR")
    add_run_options(p)
    args = p.parse_args(argv)
    content, style = demo_content(), generated_painting()
    if args.save_inputs:
        folder = Path(args.save_inputs)
        folder.mkdir(parents=True, exist_ok=True)
        content.save(folder / "demo-content.png")
        style.save(folder / "demo-style.png")
    return run_and_save(content, [style], args.output, args, prog="nst demo")
