"""The plug-in's region planning (plugin/nst-style-transfer/nst_plugin/regions.py), outside GIMP: which
mask each style gets from the "Outside the selection" choice, the selection and the channels."""

from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugin" / "nst-style-transfer"
sys.path.insert(0, str(PLUGIN_DIR))  # imported from the plug-in folder, as GIMP does
try:
    regions = importlib.import_module("nst_plugin.regions")
finally:
    sys.path.remove(str(PLUGIN_DIR))


@pytest.mark.parametrize(
    ("outside", "selection", "slots", "channeled", "expected"),
    [
        ("same", True, [1], [], None),  # today's run
        ("same", True, [1, 2], [], None),
        ("same", True, [1, 2], [2], [None, "channel"]),  # a channel still places its style
        ("keep", True, [1], [], ["inside"]),
        ("keep", False, [1], [], None),  # no selection = the whole image, as in GIMP
        ("keep", True, [1, 2], [], ["inside", "inside"]),
        ("second", True, [1, 2], [], ["inside", "outside"]),
        ("second", True, [1, 2, 3], [3], ["inside", "outside", "channel"]),
        ("second", True, [1, 2], [2], ["inside", "channel"]),
        ("second", False, [1, 2], [2], [None, "channel"]),
        ("keep", True, [1, 3], [3], ["inside", "channel"]),  # slot 2 left empty: style 3 keeps its channel
        ("keep", True, [1, 3], [2], ["inside", "inside"]),  # a channel of an empty slot is ignored
    ],
)
def test_each_style_gets_its_mask(outside, selection, slots, channeled, expected):
    assert regions.plan(outside, selection, slots, channeled) == expected


@pytest.mark.parametrize(
    ("outside", "selection", "slots", "words"),
    [
        ("second", True, [1], "needs a style 2"),
        ("second", True, [1, 3], "needs a style 2"),
        ("second", False, [1, 2], "select a part"),
        ("elsewhere", True, [1], "unknown"),
    ],
)
def test_impossible_regions_are_errors(outside, selection, slots, words):
    with pytest.raises(regions.RegionError, match=words):
        regions.plan(outside, selection, slots, [])


def test_masks_travel_as_grey_rgba_and_outside_is_the_complement():
    grey = bytes([0, 64, 128, 255, 10, 200])
    for invert in (False, True):
        image = regions.grey_to_image(grey, 3, 2, invert=invert)
        rgba = np.frombuffer(base64.b64decode(image["rgba"]), np.uint8).reshape(2, 3, 4)
        values = np.frombuffer(grey, np.uint8).reshape(2, 3)
        expected = 255 - values if invert else values
        assert (image["width"], image["height"]) == (3, 2)
        assert all(np.array_equal(rgba[..., c], expected) for c in range(3)) and (rgba[..., 3] == 255).all()


def test_the_result_layer_is_cut_out_only_when_the_outside_is_not_painted():
    assert regions.masks_result_layer("same", False) and regions.masks_result_layer("keep", False)
    assert regions.masks_result_layer("same", True)  # style 1 paints everywhere: today's cut-out
    assert not regions.masks_result_layer("second", False)
    assert not regions.masks_result_layer("keep", True)  # a channel's style may paint outside the selection


def test_the_worker_reads_a_plugin_mask_as_its_grey_values():
    """What the plug-in sends becomes, in the worker, exactly the mask it read from GIMP."""
    from nst_runtime.imaging.masks import load_mask
    from nst_runtime.worker.protocol import parse_image

    grey = bytes(range(0, 240, 10))  # 24 values
    mask = load_mask(parse_image(regions.grey_to_image(grey, 6, 4), "mask 1"), "mask 1")
    assert np.allclose(mask.values, np.frombuffer(grey, np.uint8).reshape(4, 6) / 255, atol=1e-6)
