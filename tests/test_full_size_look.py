"""bench/full_size_look.py, issue 26's measure: its formulas on images whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench import full_size_look as look
from tests.conftest import shared_image


def _noise(height: int, width: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def test_noise_scores_about_one():
    scores = look.grid_scores(_noise(480, 640))
    assert 0.6 < scores[8] < 1.6
    assert 0.6 < scores[16] < 1.6


def test_a_stride_locked_lattice_scores_far_higher():
    base = np.asarray(_noise(480, 640), dtype=np.float64) * 0.5 + 64
    yy, xx = np.mgrid[:480, :640]
    lattice = ((yy % 8 == 0) | (xx % 8 == 0)) * 12.0
    image = Image.fromarray(np.clip(base + lattice[..., None], 0, 255).astype(np.uint8))
    scores = look.grid_scores(image)
    assert scores[8] > 50 and scores[16] > 10


def test_grid_score_is_the_formula():
    """G_p = var(T_p) / var(R) × N / p², R cropped to a multiple of p."""
    rng = np.random.default_rng(1)
    r = rng.normal(size=(37, 53))
    p = 8
    crop = r[:32, :48]
    template = np.array([[crop[a::p, b::p].mean() for b in range(p)] for a in range(p)])
    expected = template.var() / crop.var() * crop.size / p**2
    assert look.grid_score_of_residual(r, p) == pytest.approx(expected)


def test_grid_bound_follows_the_photo_only_above_two():
    assert look.grid_bound(1.0) == 3.0
    assert look.grid_bound(2.0) == 3.0
    assert look.grid_bound(6.9) == pytest.approx(10.35)


def test_crops_are_fixed_and_inside():
    assert look.crop_boxes(768, 1024) == look.crop_boxes(768, 1024)
    for left, top, right, bottom in look.crop_boxes(768, 1024):
        assert right - left == 512 and bottom - top == 512
        assert left >= 0 and right <= 1024 and top >= 0 and bottom <= 768
    assert look.crop_boxes(300, 400) == [(0, 0, 400, 300)] * 3


def test_style_size_matches_the_engine():
    import torch

    from nst_runtime.objective.builder import style_size

    cases = [
        ((384, 512), (192, 256), 1.0),
        ((640, 1024), (384, 512), 1.0),
        ((300, 400), (768, 1024), 1.0),
        ((640, 1024), (384, 512), 1.5),
    ]
    for painting, out, scale in cases:
        style = torch.zeros((1, 3, *painting))
        assert look.style_size(painting, *out, scale) == style_size(style, *out, scale)


def test_the_preview_upscaled_looks_like_the_preview():
    """A full-size result that is the preview upscaled scores about 1 on both look ratios, and
    its detail ratio is 1 against itself."""
    photo = Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((128, 96), Image.Resampling.LANCZOS)
    painting = Image.open(shared_image("starry_night.jpg")).convert("RGB")
    preview = Image.blend(photo, _noise(96, 128, 2), 0.3)
    full = preview.resize((256, 192), Image.Resampling.LANCZOS)
    ratios = look.look_ratios(full, preview, photo, painting)
    assert ratios["style_ratio"] == pytest.approx(1.0, rel=0.1)
    assert ratios["content_ratio"] == pytest.approx(1.0, rel=0.1)
    assert look.detail_ratio(full, full) == pytest.approx(1.0)
