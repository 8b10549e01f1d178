"""The memory planner's decisions against budgets (no weights, no compute)."""

from __future__ import annotations

import itertools

import pytest

from nst_export import DEFAULT_LAYERS
from nst_export.architecture import truncated_plan
from nst_runtime.errors import NSTError
from nst_runtime.options import make_options
from nst_runtime.planning.memory import (
    BASE_BYTES,
    HISTORY_MIN,
    MemoryModel,
    describe,
    fit_scale,
    needs_release,
    plan_memory,
)
from nst_runtime.planning.schedule import plan_scales
from nst_runtime.units import GIB, MIB, parse_memory

ESTIMATOR = MemoryModel.for_plan(truncated_plan("vgg19", DEFAULT_LAYERS), DEFAULT_LAYERS)


@pytest.mark.parametrize(
    ("text", "value"),
    [("8G", 8 * GIB), ("1500M", 1500 * MIB), ("512MiB", 512 * MIB), ("2.5GB", int(2.5 * GIB)), ("4g", 4 * GIB)],
)
def test_memory_sizes_read_like_people_write_them(text, value):
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["lots", "8X", "-1G", "", "10"])
def test_nonsense_memory_sizes_are_refused_by_name(text):
    with pytest.raises(NSTError, match="max-memory"):
        parse_memory(text)


def test_the_per_pixel_figures_follow_the_graph_plan():
    assert ESTIMATOR.widest == 64 * 4  # conv1_x: 64 float32 channels at full resolution
    assert ESTIMATOR.content == 512 * 4 / 64  # relu4_2: 512 channels at 1/8 resolution
    assert ESTIMATOR.halo == 80
    # bool masks (relu3_2, relu3_3, relu4_3) and bool pool routes (on relu1_2's … relu4_4's grids), beside the taps
    masks = 2 * 256 / 16 + 512 / 64
    routes = 64 + 128 / 4 + 256 / 16 + 512 / 64
    assert ESTIMATOR.outputs == pytest.approx(masks + routes + ESTIMATOR.taps)
    assert ESTIMATOR.taps == pytest.approx(4 * (64 + 128 / 4 + 256 / 16 + 512 / 64 + 512 / 64 + 512 / 256))


def test_a_small_image_runs_whole_with_the_full_history():
    fit = fit_scale(ESTIMATOR, 8 * GIB, 384, 512)
    assert fit.tile is None and fit.history == 100 and fit.needed <= 8 * GIB


def test_a_24_megapixel_photo_fits_8g_tiled_with_a_short_history():
    fit = fit_scale(ESTIMATOR, 8 * GIB, 4000, 6000)
    assert fit.tile is not None and fit.tile >= 256 and HISTORY_MIN <= fit.history < 100
    peak = BASE_BYTES + ESTIMATOR.buffers(4000, 6000, fit.history) + ESTIMATOR.evaluation("tiled", 4000, 6000, fit.tile)
    assert peak <= 8 * GIB and fit.room >= ESTIMATOR.evaluation("tiled", 4000, 6000, fit.tile)


def test_more_memory_buys_larger_tiles_then_the_whole_image():
    fits = [fit_scale(ESTIMATOR, budget * GIB, 3000, 4000) for budget in (5, 6, 10, 16, 64)]
    tiles = [f.tile or 10**9 for f in fits]
    assert tiles == sorted(tiles) and fits[0].tile is not None and fits[-1].tile is None
    assert all(b.history >= a.history for a, b in itertools.pairwise(fits))


def test_a_budget_too_small_for_even_the_smallest_tile_is_refused_in_one_line():
    with pytest.raises(NSTError) as info:
        fit_scale(ESTIMATOR, 300 * MIB, 4000, 6000)
    message = str(info.value)
    assert "\n" not in message and "6000×4000" in message and "300 MiB" in message and "GiB" in message


def test_a_scale_of_few_steps_spends_its_memory_on_tiles_not_on_pairs_it_cannot_use():
    few = fit_scale(ESTIMATOR, 6 * GIB, 3000, 4000, steps=3)
    many = fit_scale(ESTIMATOR, 6 * GIB, 3000, 4000, steps=100)
    assert few.history == 3 and many.history > few.history and few.tile > many.tile


def test_a_forced_tile_size_tiles_even_a_small_image():
    fit = fit_scale(ESTIMATOR, 8 * GIB, 384, 512, tile_size=128)
    assert fit.tile == 128 and fit.history == 100


def test_the_schedule_keeps_every_useful_pair_and_gives_the_top_scales_tiles():
    options = make_options(quality="draft", size=None)
    scales = plan_memory(plan_scales(options, 4000, 6000), options, 8 * GIB)
    assert scales[0].history == scales[0].steps  # a pair per step at most: more would never be used
    assert all(min(HISTORY_MIN, s.steps) <= s.history <= s.steps for s in scales)
    assert all(s.memory is not None and s.memory > 0 for s in scales)
    assert scales[0].cost == 1.0 and scales[-1].cost > 1.5  # a tiled step costs more: the ETA knows it
    assert scales[0].tiles == 0 and scales[-1].tiles > 20
    assert describe(scales, 8 * GIB).startswith("memory budget 8.0 GiB: 6000×4000 in ")


def test_the_arena_is_released_between_phases_only_where_a_room_is_tight():
    """Releasing costs the next evaluation its buffers' page faults: only tight plans pay it."""
    options = make_options(quality="draft", size=None)
    assert not needs_release(plan_memory(plan_scales(options, 384, 512), options, 8 * GIB), ESTIMATOR)
    assert needs_release(plan_memory(plan_scales(options, 4000, 6000), options, 8 * GIB), ESTIMATOR)  # tiled
    assert needs_release(plan_memory(plan_scales(options, 1500, 2000), options, 4 * GIB), ESTIMATOR)
    assert not needs_release(plan_scales(options, 384, 512), ESTIMATOR)  # no plan: no room to keep


def test_the_plan_line_names_only_the_tiled_scales_that_run():
    options = make_options(steps=(0, 0, 0, 0, 0, 0, 1), size=None)
    scales = plan_memory(plan_scales(options, 4000, 6000), options, 8 * GIB)
    assert scales[-2].tiles > 0 and scales[-2].steps == 0  # planned, but skipped: 0 steps
    line = describe(scales, 8 * GIB)
    assert "6000×4000" in line and "3000×2000" not in line


def test_the_final_resize_of_a_huge_photo_must_fit_too():
    options = make_options(size=512)
    scales = plan_scales(options, 384, 512)
    plan_memory(scales, options, 2 * GIB, content_size=(3000, 4000))
    with pytest.raises(NSTError, match="8000×6000 result needs about"):
        plan_memory(scales, options, 2 * GIB, content_size=(6000, 8000))


def test_the_default_budget_is_a_share_of_what_is_free_and_a_budget_beyond_the_machine_is_capped():
    from nst_runtime.planning.memory import DEFAULT_SHARE, available_memory, resolve_budget, total_memory

    budget, note = resolve_budget(None)
    assert note is None and 0 < budget <= DEFAULT_SHARE * available_memory() * 1.05
    total = total_memory()
    if total is not None:
        capped, note = resolve_budget(64 * total)
        assert capped == total and "more than this machine's" in note
    assert resolve_budget(4 * GIB) == (4 * GIB, None) or total < 4 * GIB
