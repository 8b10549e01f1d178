"""The tiled evaluator against whole-image evaluation, with the real VGG-19 weights.

Exactness targets (issue 11): loss ≤ 1e-5 relative; gradient ≤ 1e-5 relative L2 on smooth
inputs and ≤ 1e-3 on real photos, where fp32 may break ReLU/max-pool near-ties differently in
a tile than in the whole image. The reference is ``AutogradEvaluator``: the torch formulas of
``nst_runtime.losses`` on whole-image features.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import photo_array, shared_image
from nst_runtime import NSTError
from nst_runtime.engine.runner import run
from nst_runtime.evaluation.choose import choose_evaluator
from nst_runtime.evaluation.targets import Extractor
from nst_runtime.evaluation.tiled import TiledEvaluator
from nst_runtime.evaluation.whole import AutogradEvaluator
from nst_runtime.objective.builder import ObjectiveBuilder
from nst_runtime.objective.terms import Objective, StyleTerm
from nst_runtime.options import make_options
from nst_runtime.planning.schedule import Scale
from nst_runtime.vgg.features import get_vgg


@pytest.fixture(scope="module")
def vgg():
    return get_vgg()


def _objective(vgg, height: int, width: int):
    content = torch.from_numpy(photo_array("golden_gate.jpg", height, width))
    style = torch.from_numpy(photo_array("starry_night.jpg", 320, 512))
    return ObjectiveBuilder(vgg, make_options(), content, [style], [1.0]).at(height, width)


def _smooth(height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 32, width // 32, generator=gen, dtype=torch.float64)
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1).float()


def _compare(reference, tiled, x):
    ref_parts, ref_grad = reference(x)
    parts, grad = tiled(x)
    losses = {
        k: abs(parts[k] - ref_parts[k]) / abs(ref_parts[k]) if ref_parts[k] else abs(parts[k])
        for k in ("total", "content", "style")
    }
    return losses, float((grad - ref_grad).norm() / ref_grad.norm())


def test_tiles_are_exact_on_a_smooth_image_at_1024x768(vgg):
    objective = _objective(vgg, 768, 1024)
    tiled = TiledEvaluator(vgg, objective, 256)
    assert len(tiled.tiles) == 12
    losses, grad = _compare(AutogradEvaluator(vgg, objective), tiled, _smooth(768, 1024))
    assert max(losses.values()) <= 1e-5, losses
    assert grad <= 1e-5


def test_tiles_are_exact_on_a_photo_at_an_odd_size(vgg):
    objective = _objective(vgg, 701, 1000)
    x = torch.from_numpy(photo_array("shipwreck.jpg", 701, 1000))
    losses, grad = _compare(AutogradEvaluator(vgg, objective), TiledEvaluator(vgg, objective, 256), x)
    assert max(losses.values()) <= 1e-5, losses
    assert grad <= 1e-3


def test_masked_style_terms_are_exact_in_tiles_too(vgg):
    """Two complementary guided Grams per layer (as regions make them), one with a soft edge."""
    height, width = 301, 405
    plain = _objective(vgg, height, width)
    other = torch.from_numpy(photo_array("the_scream.jpg", 320, 256))
    other_grams = Extractor(vgg).grams(other, tuple(t.layer for t in plain.styles))
    styles = []
    for term in plain.styles:
        lh, lw = _layer_size(vgg, term.layer, height, width)
        ramp = torch.linspace(-3, 3, lw).sigmoid().expand(lh, lw).clone()
        styles.append(StyleTerm(term.layer, term.target, term.weight, ramp))
        styles.append(StyleTerm(term.layer, other_grams[term.layer], term.weight, 1 - ramp))
    objective = Objective(height, width, plain.content, tuple(styles))
    x = _smooth(height, width, seed=2)
    losses, grad = _compare(AutogradEvaluator(vgg, objective), TiledEvaluator(vgg, objective, 128), x)
    assert max(losses.values()) <= 1e-5, losses
    assert grad <= 1e-5
    losses, grad = _compare(AutogradEvaluator(vgg, objective), TiledEvaluator(vgg, objective, 128, "crop"), x)
    assert max(losses.values()) <= 1e-5 and grad <= 1e-5


def _layer_size(vgg, layer: str, height: int, width: int) -> tuple[int, int]:
    from nst_export.architecture import output_shape

    return output_shape(vgg.graphs.plan, layer, height, width)[2:]


def test_the_halo_is_what_makes_tiles_exact(vgg, monkeypatch):
    """A halo below the receptive radius breaks the stitching: the exactness tests are not vacuous."""
    from nst_runtime.evaluation import tiled as tiled_module

    objective = _objective(vgg, 192, 256)
    x = _smooth(192, 256, seed=3)
    monkeypatch.setattr(tiled_module, "halos", lambda plan: {"sum": 32, "crop": 32})
    _, grad = _compare(AutogradEvaluator(vgg, objective), TiledEvaluator(vgg, objective, 64), x)
    assert grad > 1e-5  # a hundred times what the exact halo leaves


def test_tiled_targets_equal_the_whole_images(vgg):
    image = torch.from_numpy(photo_array("coffee.png", 333, 500))
    whole, tiled = Extractor(vgg), Extractor(vgg, tile_size=128)
    for layer, f in whole.features(image, ("relu4_2", "relu1_1")).items():
        t = tiled.features(image, ("relu4_2", "relu1_1"))[layer]
        assert t.shape == f.shape and float((t - f).abs().max() / f.abs().max()) <= 1e-5
    layers = ("relu1_1", "relu3_1", "relu5_1")
    for layer, g in whole.grams(image, layers).items():
        assert float((tiled.grams(image, layers)[layer] - g).norm() / g.norm()) <= 1e-5
    # a style mask's guided Grams (soft left half) likewise, and they differ from the plain ones
    mask = torch.zeros(333, 500)
    mask[:, :200], mask[:, 200:260] = 1.0, 0.5
    plain = whole.grams(image, layers)
    for layer, g in whole.grams(image, layers, mask).items():
        assert float((tiled.grams(image, layers, mask)[layer] - g).norm() / g.norm()) <= 1e-5
        assert float((g - plain[layer]).norm() / g.norm()) > 1e-2


def test_choose_evaluator_tiles_only_what_does_not_fit(vgg):
    objective = _objective(vgg, 96, 128)
    options = make_options()
    assert type(choose_evaluator(vgg, objective, options, Scale(96, 128, 1, memory=8 << 30))).__name__ == (
        "FusedEvaluator"
    )
    assert isinstance(choose_evaluator(vgg, objective, options, Scale(96, 128, 1, memory=1 << 20)), TiledEvaluator)
    assert isinstance(choose_evaluator(vgg, objective, make_options(tile_size=64)), TiledEvaluator)


def test_a_tiled_run_ends_where_the_untiled_run_does():
    content = Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((256, 192))
    style = Image.open(shared_image("starry_night.jpg")).convert("RGB").resize((256, 160))
    untiled = run(content, [style], make_options(size=256, steps=(0, 5)))
    tiled = run(content, [style], make_options(size=256, steps=(0, 5), tile_size=64))
    assert tiled.image.size == untiled.image.size == (256, 192)
    assert tiled.loss == pytest.approx(untiled.loss, rel=5e-3)


def test_a_masked_run_in_tiles_ends_where_the_guided_graph_run_does():
    """Regions at full resolution: two styles on complementary soft halves, whole image (the
    guided fused graph) against forced tiles (per-position weights in the tiled evaluator)."""
    content = Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((256, 192))
    styles = [
        Image.open(shared_image(name)).convert("RGB").resize((256, 160))
        for name in ("starry_night.jpg", "the_scream.jpg")
    ]
    left = np.clip(np.linspace(3.0, -3.0, 256), 0.0, 1.0)[None, :].repeat(192, axis=0).astype(np.float32)
    masks = [left, 1.0 - left]
    untiled = run(content, styles, make_options(size=256, steps=(0, 4)), masks=masks)
    tiled = run(content, styles, make_options(size=256, steps=(0, 4), tile_size=64), masks=masks)
    assert tiled.image.size == untiled.image.size == (256, 192)
    assert tiled.loss == pytest.approx(untiled.loss, rel=5e-3)


def test_a_run_that_cannot_fit_its_budget_is_refused_before_it_starts(tmp_path):
    photo = tmp_path / "big.png"
    Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((2400, 1800)).save(photo)
    style = shared_image("starry_night.jpg")
    with pytest.raises(NSTError, match=r"2400×1800 needs about .* more than the budget of 100 MiB"):
        run(str(photo), [str(style)], make_options(size=None, max_memory="100M"))
    out = tmp_path / "out.png"
    cli = [sys.executable, "-m", "nst_runtime", str(photo), str(style), "-o", str(out), "--size", "0"]
    done = subprocess.run([*cli, "--max-memory", "100M"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and not out.exists()
    assert done.stderr.count("\n") == 1 and "needs about" in done.stderr and "100 MiB" in done.stderr


def test_the_detail_pass_objective_is_exact_in_tiles_of_the_detail_graphs(vgg):
    """The detail pass (relu1_1–relu3_1 through graphs cut after relu3_1) goes tiled at full
    resolution like the full objective: its smaller receptive field gives it a smaller halo."""
    from nst_runtime.planning.tiles import halos
    from nst_runtime.vgg.graphs import DETAIL_LAYERS

    detail_vgg = get_vgg(layers=DETAIL_LAYERS)
    assert halos(detail_vgg.graphs.plan)["sum"] < halos(vgg.graphs.plan)["sum"]
    objective = _objective(vgg, 301, 405).restricted(DETAIL_LAYERS)
    assert objective.content is None and {t.layer for t in objective.styles} == set(DETAIL_LAYERS)
    tiled = TiledEvaluator(detail_vgg, objective, 128)
    assert len(tiled.tiles) > 1
    losses, grad = _compare(AutogradEvaluator(detail_vgg, objective), tiled, _smooth(301, 405, seed=4))
    assert max(losses.values()) <= 1e-5, losses
    assert grad <= 1e-5
    room = Scale(301, 405, 1, memory=1 << 20)
    assert isinstance(choose_evaluator(detail_vgg, objective, make_options(), room), TiledEvaluator)


def test_a_run_with_detail_passes_goes_tiled_where_forced(monkeypatch):
    """Detail passes and the full objective both tiled (forced small tiles) end where the
    untiled run ends."""
    from nst_runtime.planning import schedule

    monkeypatch.setitem(schedule.PRESETS, "draft", schedule.QualityPreset(3, 3, 2.0, detail_steps=2))
    content = Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((256, 192))
    style = Image.open(shared_image("starry_night.jpg")).convert("RGB").resize((256, 160))
    events: list = []
    untiled = run(content, [style], make_options(size=256, quality="draft", scales=2))
    tiled = run(
        content, [style], make_options(size=256, quality="draft", scales=2, tile_size=64), progress=events.append
    )
    assert [s.detail_steps for s in tiled.scales] == [0, 2]
    assert any(e.kind == "progress" and e.phase == "detail" for e in events)
    assert tiled.loss == pytest.approx(untiled.loss, rel=5e-3)
