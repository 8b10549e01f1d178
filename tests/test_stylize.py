"""stylize() end to end with the real VGG-19 weights, on small images."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import photo_array, shared_image
from nst_export import DEFAULT_LAYERS
from nst_export.sources import locate_source
from nst_export.torch_vgg import FeatureNet
from nst_export.weights import load_weights
from nst_runtime import Cancelled, NSTError, stylize, vgg_features
from nst_runtime.engine.runner import run
from nst_runtime.imaging.images import load_image
from nst_runtime.options import make_options

SMALL = {"size": 96, "quality": "draft"}


@pytest.fixture(scope="module")
def content() -> Image.Image:
    return Image.open(shared_image("golden_gate.jpg")).convert("RGB").resize((128, 96))


@pytest.fixture(scope="module")
def style() -> Image.Image:
    return Image.open(shared_image("starry_night.jpg")).convert("RGB").resize((154, 96))


def test_vgg_features_gradients_match_torch_autograd():
    image = torch.from_numpy(photo_array("golden_gate.jpg", 64, 80))
    x = image.clone().requires_grad_(True)
    feats = vgg_features(x)
    assert set(feats) == set(DEFAULT_LAYERS)
    sum((f**2).mean() for f in feats.values()).backward()
    net = FeatureNet(load_weights(locate_source("vgg19")), DEFAULT_LAYERS, "max")
    y = image.clone().requires_grad_(True)
    sum((f**2).mean() for f in net.features(y).values()).backward()
    assert float((x.grad - y.grad).norm() / y.grad.norm()) <= 1e-3


def test_vgg_features_checks_its_input():
    assert list(vgg_features(torch.rand(1, 3, 32, 48), ["relu2_1"])) == ["relu2_1"]
    with pytest.raises(NSTError, match="shape"):
        vgg_features(torch.rand(3, 32, 32))
    with pytest.raises(NSTError, match="16"):
        vgg_features(torch.rand(1, 3, 8, 64))


def test_style_loss_falls_well_below_the_content_images_own(content, style):
    own = run(content, [style], make_options(steps=0, **SMALL))
    result = run(content, [style], make_options(**SMALL))
    assert result.parts["style"] < 0.1 * own.parts["style"]
    assert result.parts["content"] > 0  # it moved away from the photo


def test_output_has_the_input_size_and_its_alpha(style):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)
    out = stylize(rgba, style, size=64, steps=3)
    assert out.size == (70, 50) and out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])


def test_a_one_pixel_image_comes_back_as_one_pixel(style):
    out = stylize(np.array([[[200, 10, 10]]], dtype=np.uint8), style, steps=2)
    assert out.size == (1, 1) and out.mode == "RGB"


def test_seed_makes_a_cpu_run_reproducible(content, style):
    a = stylize(content, style, init="noise", seed=3, size=64, steps=5)
    b = stylize(content, style, init="noise", seed=3, size=64, steps=5)
    c = stylize(content, style, init="noise", seed=4, size=64, steps=5)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_blend_weights_select_styles(content, style):
    other = Image.open(shared_image("the_scream.jpg")).convert("RGB").resize((75, 96))
    single = stylize(content, style, size=64, steps=4)
    blended = stylize(content, [style, other], style_blend=[1, 0], size=64, steps=4)
    mixed = stylize(content, [style, other], style_blend=[0.5, 0.5], size=64, steps=4)
    assert single.tobytes() == blended.tobytes()
    assert mixed.tobytes() != single.tobytes()


def test_luminance_mode_keeps_the_content_chroma(content, style):
    from nst_runtime.imaging.color import to_yiq

    out = stylize(content, style, preserve_color="luminance", **SMALL)
    iq_out = to_yiq(np.asarray(out, np.float32) / 255)[..., 1:]
    iq_content = to_yiq(load_image(content).rgb)[..., 1:]
    assert np.abs(iq_out - iq_content).mean() < 0.02


def test_histogram_mode_pulls_colours_toward_the_content(content, style):
    plain = np.asarray(stylize(content, style, **SMALL), np.float32)
    matched = np.asarray(stylize(content, style, preserve_color="histogram", **SMALL), np.float32)
    target = np.asarray(content, np.float32).reshape(-1, 3).mean(0)
    assert np.abs(matched.reshape(-1, 3).mean(0) - target).sum() < np.abs(plain.reshape(-1, 3).mean(0) - target).sum()


def test_cancel_stops_a_run_within_a_second(content, style):
    cancel = threading.Event()
    outcome = {}

    def work():
        try:
            stylize(content, style, size=256, steps=500, cancel=cancel)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(8)
    cancel.set()
    started = time.perf_counter()
    thread.join(5)
    assert not thread.is_alive()
    assert time.perf_counter() - started < 1.0
    assert isinstance(outcome.get("error"), Cancelled)


def test_bad_input_is_reported_before_any_compute(tmp_path, style):
    with pytest.raises(NSTError, match="content file not found"):
        stylize(tmp_path / "nope.jpg", style)
    with pytest.raises(NSTError, match="style-blend"):
        stylize(np.zeros((40, 40, 3), np.uint8), [style, style], style_blend=[1.0])


def test_fused_fast_path_gives_the_same_loss_and_gradient_as_vgg_features():
    from nst_runtime.evaluation.base import restricted_total
    from nst_runtime.evaluation.whole import AutogradEvaluator, FusedEvaluator, fused_inputs
    from nst_runtime.objective.losses import CONTENT_LAYER, STYLE_LAYERS, gram
    from nst_runtime.objective.terms import ContentTerm, Objective, StyleTerm, TVTerm
    from nst_runtime.vgg.features import get_vgg

    vgg = get_vgg()
    image = torch.from_numpy(photo_array("golden_gate.jpg", 72, 96))
    with torch.no_grad():
        target = vgg.features(torch.from_numpy(photo_array("the_scream.jpg", 72, 96)))[CONTENT_LAYER]
        style = vgg.features(torch.from_numpy(photo_array("starry_night.jpg", 80, 90)))
    objective = Objective(
        72,
        96,
        ContentTerm(CONTENT_LAYER, target, 0.5),
        tuple(StyleTerm(s, gram(style[s]), 10.0 / style[s].shape[1] ** 2) for s in STYLE_LAYERS),
        (("tv", TVTerm(1.0).at(72, 96, torch.device("cpu"))),),
    )
    reference, ref_grad = AutogradEvaluator(vgg, objective)(image)
    inputs = fused_inputs(vgg, objective)
    assert inputs is not None
    parts, grad = FusedEvaluator(vgg, objective, inputs)(image)
    for name in ("total", "content", "style", "tv"):
        assert parts[name] == pytest.approx(reference[name], rel=1e-4)
    assert float((grad - ref_grad).norm() / ref_grad.norm()) <= 1e-3
    assert sum(parts[f"style_{s}"] for s in STYLE_LAYERS) == pytest.approx(parts["style"], rel=1e-5)
    # the detail pass's objective read off the full evaluation: the shallow layers and the TV term
    shallow = objective.restricted(("relu1_1", "relu2_1"))
    (shallow_parts, _) = AutogradEvaluator(vgg, shallow)(image)
    assert restricted_total(parts, shallow) == pytest.approx(shallow_parts["total"], rel=1e-4)
    assert restricted_total(reference, shallow) is None  # autograd's parts are not per layer


def test_masked_style_terms_are_evaluated_through_the_guided_graph_or_autograd():
    """Masked terms take the guided graph (regions), or autograd without fused graphs; a mask of
    ones gives the plain Gram either way."""
    from nst_runtime.evaluation.choose import choose_evaluator
    from nst_runtime.evaluation.whole import AutogradEvaluator, FusedEvaluator
    from nst_runtime.objective.terms import Objective, StyleTerm
    from nst_runtime.vgg.features import get_vgg

    vgg = get_vgg()
    term = StyleTerm("relu3_1", torch.eye(256), 1.0, mask=torch.ones(18, 24))
    objective = Objective(72, 96, None, (term,))
    plain = Objective(72, 96, None, (StyleTerm("relu3_1", torch.eye(256), 1.0),))
    image = torch.from_numpy(photo_array("golden_gate.jpg", 72, 96))
    plain_parts, plain_grad = choose_evaluator(vgg, plain, make_options())(image)
    for options, kind in ((make_options(), FusedEvaluator), (make_options(fused=False), AutogradEvaluator)):
        evaluator = choose_evaluator(vgg, objective, options)
        assert isinstance(evaluator, kind) and getattr(evaluator, "graph", "guided") == "guided"
        masked_parts, masked_grad = evaluator(image)
        assert masked_parts["total"] == pytest.approx(plain_parts["total"], rel=1e-4)
        assert float((masked_grad - plain_grad).norm() / plain_grad.norm()) <= 1e-3


def test_a_style_already_at_the_working_size_is_not_resampled():
    """Even a 0.998× bicubic resample blurs every pixel and shifts the Gram targets by ~10 %."""
    from nst_runtime.objective.builder import style_size

    style = torch.zeros(1, 3, 351, 562)
    assert style_size(style, 384, 512, 1.0) == (351, 562)
    assert style_size(style, 192, 256, 1.0) == (175, 281)
    assert style_size(style, 384, 512, 1.5) == (526, 842)


def test_the_detail_pass_reports_its_steps_and_can_be_cancelled(content, style, monkeypatch):
    """Scales after the first open with steps on the shallow layers (their loss is not the
    objective's, so it is reported as NaN); progress stays continuous; cancel reaches them too."""
    import math

    from nst_runtime.planning import schedule

    monkeypatch.setitem(schedule.PRESETS, "draft", schedule.QualityPreset(4, 3, 2.0, detail_steps=3))
    events = []
    result = run(content, [style], make_options(size=128, quality="draft", scales=2), progress=events.append)
    progress = [e for e in events if e.kind == "progress"]
    assert [(e.scale, e.step, e.phase) for e in progress if e.scale == 2][:4] == [
        (2, 1, "detail"), (2, 2, "detail"), (2, 3, "detail"), (2, 4, "optimise")
    ]  # fmt: skip
    assert all(math.isnan(e.loss) == (e.phase == "detail") for e in progress)
    assert all(e.steps == 6 for e in progress if e.scale == 2)
    fractions = [e.fraction for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert math.isfinite(result.loss)
    # The detail pass's last step goes through the full graph, and the full pass starts from that
    # evaluation: the same steps, one evaluation fewer than without it.
    from nst_runtime.engine import coarse_to_fine

    with monkeypatch.context() as m:
        m.setattr(coarse_to_fine, "FusedEvaluator", type("NotFused", (), {}))  # no reuse: every evaluation its own
        separate = run(content, [style], make_options(size=128, quality="draft", scales=2))
    assert result.evaluations == separate.evaluations - 1
    assert result.loss == pytest.approx(separate.loss, rel=1e-5)

    monkeypatch.setitem(schedule.PRESETS, "draft", schedule.QualityPreset(1, 5, 2.0, detail_steps=10_000))
    cancel = threading.Event()

    def cancel_in_the_detail_pass(event):
        if event.kind == "progress" and event.phase == "detail" and event.step == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        run(
            content,
            [style],
            make_options(size=128, quality="draft", scales=2),
            progress=cancel_in_the_detail_pass,
            cancel=cancel,
        )


def test_the_progress_gives_each_scale_its_priced_share_of_the_run(content, style, monkeypatch):
    """With this machine's prices stored, a scale's share of the progress is its priced time (the
    estimate's), not its pixels: the ETA then holds where scales differ in speed."""
    import itertools

    from test_estimate import SPEED

    from nst_runtime.engine import timing

    monkeypatch.setattr(timing, "stored_speed", lambda options: SPEED)
    options = make_options(size=128, quality="draft")
    events: list = []
    result = run(content, [style], options, progress=events.append)
    prices = [s.seconds for s in timing.price_scales(result.scales, options, 1, SPEED)]
    shares = [t / sum(prices) for t in itertools.accumulate(prices)]
    ends = {e.scale: e.fraction for e in events if e.kind == "progress" and e.step == e.steps}
    assert [ends[i + 1] for i in range(len(prices))] == pytest.approx(shares)
    by_pixels = [s.work * (s.steps + 0.35 * s.detail_steps) for s in result.scales]
    assert shares[0] != pytest.approx(by_pixels[0] / sum(by_pixels), rel=0.05)  # the prices did change them
