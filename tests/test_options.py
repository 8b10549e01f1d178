"""Run options: nonsense is refused by name, scales are planned coarse to fine."""

from __future__ import annotations

import itertools

import pytest

from nst_runtime.errors import NSTError
from nst_runtime.options import compute_size, make_options, strength_to_style_weight
from nst_runtime.planning.schedule import plan_scales


@pytest.mark.parametrize(
    ("values", "n_styles", "message"),
    [
        ({"style_weight": -1.0}, 1, "style-weight"),
        ({"content_weight": -0.5}, 1, "content-weight"),
        ({"tv_weight": float("nan")}, 1, "tv-weight"),
        ({"size": 31}, 1, "size"),
        ({"style_blend": (0.7, 0.3)}, 3, "style-blend has 2 weights for 3"),
        ({"style_blend": (0.0, 0.0)}, 2, "not all zero"),
        ({"device": "tpu"}, 1, "device"),
        ({"quality": "ultra"}, 1, "quality"),
        ({"preserve_color": "sepia"}, 1, "preserve-color"),
        ({"steps": (-1,)}, 1, "steps"),
        ({}, 0, "at least one style"),
    ],
)
def test_nonsense_options_are_refused_by_name(values, n_styles, message):
    with pytest.raises(NSTError, match=message):
        make_options(**values).validate(n_styles)


def test_strength_maps_half_to_the_default_balance():
    assert strength_to_style_weight(0.5) == pytest.approx(1.0)
    assert strength_to_style_weight(1.0) > strength_to_style_weight(0.5) > strength_to_style_weight(0.0)
    with pytest.raises(NSTError):
        strength_to_style_weight(1.5)


def test_scales_start_near_the_presets_coarsest_side_and_end_at_the_target():
    from nst_runtime.planning.schedule import PRESETS

    for quality, preset in PRESETS.items():
        plan = plan_scales(make_options(quality=quality), 384, 512)
        assert preset.coarsest_side / preset.scale_ratio < max(plan[0][:2]) <= preset.coarsest_side, quality
        assert plan[-1][:2] == (384, 512)
        assert all(b[1] > a[1] for a, b in itertools.pairwise(plan))
    assert [tuple(s)[:2] for s in plan_scales(make_options(quality="draft"), 384, 512)] == [
        (24, 32),
        (48, 64),
        (96, 128),
        (192, 256),
        (384, 512),
    ]


def test_explicit_steps_set_the_number_of_scales():
    plan = plan_scales(make_options(steps=(30, 20, 10)), 300, 400)
    assert [s for _, _, s in plan] == [30, 20, 10] and plan[-1][:2] == (300, 400)
    assert all(s == 7 for *_, s in plan_scales(make_options(steps=7), 300, 400))


def test_compute_size_caps_the_longest_side_and_keeps_small_images_usable():
    assert compute_size(734, 979, 512) == (384, 512)
    assert compute_size(100, 80, 512) == (100, 80)
    assert compute_size(1, 1, 512) == (32, 32)
    assert compute_size(10, 5000, 512) == (32, 512)


def test_a_run_can_ask_for_the_full_size_only():
    """Frames after the first start from the warped previous result: a coarse scale would blur it."""
    assert [tuple(s) for s in plan_scales(make_options(steps=30, scales=1), 200, 300)] == [(200, 300, 30)]
    assert len(plan_scales(make_options(scales=3), 200, 300)) == 3
    with pytest.raises(NSTError, match="scales"):
        make_options(scales=0).validate(1)


def test_presets_open_every_scale_but_the_first_with_a_detail_pass():
    from nst_runtime.planning.schedule import PRESETS

    for quality, preset in PRESETS.items():
        plan = plan_scales(make_options(quality=quality), 384, 512)
        between = preset.detail_steps if preset.coarse_detail_steps is None else preset.coarse_detail_steps
        assert plan[0].detail_steps == 0
        assert all(s.detail_steps == between for s in plan[1:-1]), quality
        assert plan[-1].detail_steps == preset.detail_steps > 0
    explicit = plan_scales(make_options(steps=(5, 5, 5)), 384, 512)
    assert all(s.detail_steps == 0 and s.tolerance == 0 for s in explicit)  # explicit steps are exactly those


def test_the_longer_detail_pass_below_the_top_stays_at_cheap_scales():
    """At full resolution the scales between the reference size and the top are as dear as a
    top scale: they get the top's detail steps (scaled to their size), not the longer pass."""
    from nst_runtime.planning.schedule import PRESETS, REFERENCE_PIXELS, full_resolution_steps

    draft = PRESETS["draft"]
    plan = plan_scales(make_options(size=None, quality="draft", look_size=0), 3000, 4000)
    assert [s.detail_steps for s in plan[1:] if s.pixels <= REFERENCE_PIXELS] == [draft.coarse_detail_steps] * 4
    for scale in plan[:-1]:
        if scale.pixels > REFERENCE_PIXELS:
            assert scale.detail_steps == full_resolution_steps(draft.detail_steps, scale.pixels, draft)
    assert [(s.width, s.detail_steps, s.steps) for s in plan[-3:]] == [(1000, 7, 4), (2000, 2, 1), (4000, 1, 1)]


def test_above_the_look_size_the_plan_is_the_previews_then_scales_of_the_look():
    """A 12-MP run paints the 512-px preview's very scales, then continues it up to its own size,
    each scale at most twice the one before, keeping the look at the preview's size."""
    from nst_runtime.planning.schedule import LOOK_STEPS_PIXELS, PRESETS, full_resolution_steps

    for quality in ("draft", "normal"):
        options = make_options(size=None, quality=quality)
        plan = plan_scales(options, 3000, 4000)
        preview = plan_scales(make_options(quality=quality), 384, 512)
        assert plan[: len(preview)] == preview
        above = plan[len(preview) :]
        assert [(s.height, s.width) for s in above] == [(762, 1016), (1512, 2016), (3000, 4000)]  # ×1.98 each
        assert all(s.look == (384, 512) and s.detail_steps == 0 for s in above)
        preset = PRESETS[quality]
        assert [s.steps for s in above] == [
            full_resolution_steps(preset.look_steps, s.pixels, preset, LOOK_STEPS_PIXELS) for s in above
        ]
        # Full size in the dialog: the preview it continues sets the look, only the scales above it run
        assert plan_scales(options, 3000, 4000, above=512) == above
    assert all(s.look is None for s in plan_scales(make_options(size=None, look_size=0), 3000, 4000))
    assert all(s.look is None for s in plan_scales(make_options(size=None), 500, 520))  # within 2 % of it


def test_explicit_steps_keep_scales_from_about_128_px():
    """A preset's coarsest side is tuned with its own steps; --steps N runs N at each of the old sizes."""
    assert [tuple(s) for s in plan_scales(make_options(quality="draft", steps=7), 384, 512)] == [
        (96, 128, 7),
        (192, 256, 7),
        (384, 512, 7),
    ]
    assert [tuple(s) for s in plan_scales(make_options(steps=10), 96, 128)] == [(96, 128, 10)]


def test_scales_above_512_px_get_the_same_work_not_the_same_steps():
    """Without a look size, at full resolution most of the work stays at low resolution: a scale of more pixels than
    512² gets its preset's steps (and detail steps) times 512² / pixels, at least min_steps."""
    from nst_runtime.planning.schedule import PRESETS, REFERENCE_PIXELS

    draft = PRESETS["draft"]
    small = plan_scales(make_options(size=None, quality="draft"), 384, 512)
    assert small[-1].steps == draft.final_steps and small[-1].detail_steps == draft.detail_steps
    big = plan_scales(make_options(size=None, quality="draft", look_size=0), 4000, 6000)
    assert big[-1].steps == big[-1].detail_steps == draft.min_steps
    for scale in big:
        if scale.pixels > REFERENCE_PIXELS:
            assert (
                draft.min_steps
                <= scale.steps
                <= max(draft.min_steps, draft.coarse_steps * REFERENCE_PIXELS / scale.pixels + 1)
            )
