"""Tile geometry (no weights): inner regions partition the image on every layer grid, aligned."""

from __future__ import annotations

import itertools

import pytest

from nst_export.architecture import truncated_plan
from nst_runtime.planning.tiles import ALIGN, halos, layer_scale, plan_tiles, receptive_radius, split

VGG19 = truncated_plan("vgg19", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"))


def test_vgg19_sees_70_pixels_to_relu5_1_and_the_halos_are_aligned():
    assert receptive_radius(VGG19) == 70
    assert halos(VGG19) == {"sum": 80, "crop": 160}
    assert receptive_radius(truncated_plan("vgg19", ("relu2_1",))) == 2 + 2  # two convs, then one at stride 2
    assert layer_scale(VGG19, "relu1_1") == 1 and layer_scale(VGG19, "relu5_1") == 16


@pytest.mark.parametrize(("length", "inner", "halo"), [(1000, 256, 80), (701, 256, 80), (768, 256, 160), (40, 256, 80)])
def test_inner_spans_partition_the_axis_aligned_and_no_larger_than_asked(length, inner, halo):
    spans = split(length, inner, halo)
    assert spans[0].inner_start == 0 and spans[-1].inner_stop == length
    for a, b in itertools.pairwise(spans):
        assert a.inner_stop == b.inner_start and a.inner_stop % ALIGN == 0
    reach = max(s.stop - s.start for s in spans)
    for s in spans:
        assert s.inner_stop - s.inner_start <= inner
        assert s.start <= max(0, s.inner_start - halo) and s.stop >= min(length, s.inner_stop + halo)  # the halo
        assert s.start % ALIGN == 0  # the pool grids coincide with the whole image's
        assert reach - ALIGN < s.stop - s.start <= reach  # one size, so onnxruntime reuses its buffers
    sizes = [s.inner_stop - s.inner_start for s in spans[:-1]]
    assert not sizes or max(sizes) - min(sizes) <= ALIGN  # near-equal pieces, not one sliver at the end


@pytest.mark.parametrize(("height", "width"), [(701, 1000), (768, 1024), (33, 47)])
def test_inner_regions_tile_every_layer_grid_exactly_once(height, width):
    tiles = plan_tiles(height, width, 256, 80)
    for scale in (1, 2, 4, 8, 16):
        covered = [[0] * (width // scale) for _ in range(height // scale)]
        for tile in tiles:
            rows, cols = tile.layer_inner_slices(scale)
            local_rows, local_cols = tile.local_inner_slices(scale)
            assert rows.stop - rows.start == local_rows.stop - local_rows.start
            assert local_rows.stop <= tile.height // scale and local_cols.stop <= tile.width // scale
            whole_rows, _ = tile.layer_slices(scale)
            assert whole_rows.start + local_rows.start == rows.start
            for r in range(rows.start, rows.stop):
                for c in range(cols.start, cols.stop):
                    covered[r][c] += 1
        assert all(v == 1 for row in covered for v in row), scale


def test_bad_tile_sizes_are_refused():
    with pytest.raises(ValueError, match="multiples of 16"):
        split(100, 250, 80)
