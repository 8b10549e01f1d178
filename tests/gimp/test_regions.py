"""Regions in real GIMP 3: the selection and saved selections become the worker's masks.

The plumbing (which mask goes to which style, over which layer's area) is checked with the stub
worker, which records each request; the real worker then paints a selection with one painting and
the rest with another, measured with the guided Gram statistics of tests/test_regions.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .gimp3_harness import STUB_PYTHON, Gimp3
from .test_plugin import assert_sources_unchanged, assert_untouched, pixels, scene

pytestmark = pytest.mark.gimp

SELECTION = [100, 80, 400, 300]  # x, y, w, h on the 979 × 734 photo
CHANNEL = [500, 400, 300, 200]
OFFSET_PAINTING = {"painting": True, "painting_scale": [320, 200], "painting_offsets": [40, 30]}  # a 2nd layer


def stub_run(gimp3: Gimp3, tmp_path: Path, spec: dict) -> tuple[dict, list[dict]]:
    """Run the plug-in on the stub worker; the result and the requests it sent (one per layer)."""
    requests = tmp_path / "requests.jsonl"
    env = {"NST_PYTHON": str(STUB_PYTHON), "NST_STUB_REQUEST": str(requests)}
    result = gimp3.batch(spec, tmp_path, env).result
    sent = [json.loads(line) for line in requests.read_text().splitlines()] if requests.exists() else []
    return result, sent


def mask_values(image: dict | None) -> np.ndarray | None:
    """A protocol mask IMAGE as [h, w] uint8 (its grey value); checks R = G = B and A = 255."""
    if image is None:
        return None
    rgba = np.frombuffer(base64.b64decode(image["rgba"]), np.uint8).reshape(image["height"], image["width"], 4)
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 0] == rgba[..., 2]).all() and (rgba[..., 3] == 255).all()
    return rgba[..., 0]


def rectangle(width: int, height: int, rect: list[int], offsets: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A hard rectangle (image coordinates) over a layer at offsets, as a 0/255 mask."""
    x, y, w, h = rect
    ox, oy = offsets
    out = np.zeros((height, width), np.uint8)
    out[max(y - oy, 0) : max(y + h - oy, 0), max(x - ox, 0) : max(x + w - ox, 0)] = 255
    return out


def test_selection_and_channels_become_each_styles_mask(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """Style 1 inside the selection, style 2 outside it, style 3 in a saved selection; a second,
    offset layer gets the same masks over its own area. The result is not masked by the selection."""
    spec = scene(
        images,
        tmp_path,
        **OFFSET_PAINTING,
        painting2=str(images / "the_scream.jpg"),
        channels={"Sky": CHANNEL},
        selection=SELECTION,
        drawables=["photo", "painting"],
        args={
            "style-layer": "painting2",
            "style-file-2": str(images / "starry_night.jpg"),
            "style-file-3": str(images / "the_scream.jpg"),
            "style-3-channel": "Sky",
            "outside-selection": "second",
        },
    )
    result, sent = stub_run(gimp3, tmp_path, spec)
    assert result["status"] == "success", result["message"]
    assert len(sent) == 2 and all(len(r["styles"]) == 3 for r in sent)
    for request, (width, height, offsets) in zip(sent, [(979, 734, (0, 0)), (320, 200, (40, 30))], strict=True):
        inside, outside, sky = (mask_values(m) for m in request["masks"])
        assert np.array_equal(inside, rectangle(width, height, SELECTION, offsets))
        assert np.array_equal(outside, 255 - inside)
        assert np.array_equal(sky, rectangle(width, height, CHANNEL, offsets))
    new = result["layers_after"][0]
    assert new["name"] == "Painting 2 + Starry Night + The Scream — style"
    assert not new["has_mask"], "style 2 paints outside the selection: the result must not be cut out"
    assert_sources_unchanged(result["layers_before"], result["layers_after"])


def test_keep_the_photo_sends_the_selection_and_masks_the_result(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    spec = scene(
        images,
        tmp_path,
        selection=SELECTION,
        feather=10,
        args={"style-file": str(images / "starry_night.jpg"), "outside-selection": "keep"},
    )
    result, sent = stub_run(gimp3, tmp_path, spec)
    assert result["status"] == "success", result["message"]
    (inside,) = (mask_values(m) for m in sent[0]["masks"])
    hard = rectangle(979, 734, SELECTION)
    assert inside[hard == 0].max() < 255 and inside[300, 300] == 255, "the feathered selection is the mask"
    assert 0 < inside[80, 300] < 255, "the feathered edge stays soft"
    assert result["layers_after"][0]["has_mask"]


def test_a_third_style_keeps_its_channel_without_a_second(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """Slot 2 empty: the request's second style is style 3, with style 3's channel; something paints
    outside the selection, so the result is not cut out."""
    spec = scene(
        images,
        tmp_path,
        channels={"Sky": CHANNEL},
        selection=SELECTION,
        args={
            "style-file": str(images / "starry_night.jpg"),
            "style-file-3": str(images / "the_scream.jpg"),
            "style-3-channel": "Sky",
            "outside-selection": "keep",
        },
    )
    result, sent = stub_run(gimp3, tmp_path, spec)
    assert result["status"] == "success", result["message"]
    inside, sky = (mask_values(m) for m in sent[0]["masks"])
    assert np.array_equal(inside, rectangle(979, 734, SELECTION))
    assert np.array_equal(sky, rectangle(979, 734, CHANNEL))
    assert not result["layers_after"][0]["has_mask"]


def test_same_style_sends_no_masks(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    spec = scene(images, tmp_path, selection=SELECTION, args={"style-file": str(images / "starry_night.jpg")})
    result, sent = stub_run(gimp3, tmp_path, spec)
    assert result["status"] == "success", result["message"]
    assert "masks" not in sent[0]
    assert result["layers_after"][0]["has_mask"]


@pytest.mark.parametrize(
    ("selection", "args", "words"),
    [
        (SELECTION, {}, "needs a style 2"),
        (None, {"style-file-2": "the_scream.jpg"}, "select a part of the image"),
    ],
    ids=["no-second-style", "no-selection"],
)
def test_second_style_without_what_it_needs_is_a_calling_error(
    gimp3: Gimp3, images: Path, tmp_path: Path, selection, args: dict, words: str
) -> None:
    args = {k: str(images / v) for k, v in args.items()}
    spec = scene(
        images,
        tmp_path,
        selection=selection,
        args={"style-file": str(images / "starry_night.jpg"), "outside-selection": "second", **args},
    )
    result, sent = stub_run(gimp3, tmp_path, spec)
    assert result["status"] == "calling-error"
    assert words in (result["message"] or ""), result["message"]
    assert not sent, "the worker ran"
    assert_untouched(result)


# the engine's regions, measured: the same on every GIMP (the stub-worker tests above check the
# plumbing on each version), so GIMP 3.0 only, to keep the 3.2 run lean
@pytest.mark.gimp_versions("3.0")
def test_two_styles_follow_the_selection_with_the_real_worker(gimp3: Gimp3, images: Path, tmp_path: Path) -> None:
    """A selection and two style layers: the inside follows the first painting, the outside the
    second (the issue's measure); the layer has the photo's size, and one Ctrl+Z removes it."""
    from nst_runtime.evaluation.metrics import guided_style_losses
    from nst_runtime.objective.losses import STYLE_LAYERS
    from nst_runtime.vgg.features import get_vgg

    left = [0, 0, 490, 734]
    spec = scene(
        images,
        tmp_path,
        painting=True,
        painting2=str(images / "the_scream.jpg"),
        selection=left,
        gui="undo",
        args={
            "size": 128,
            "quality": "draft",
            "seed": 1,
            "style-layer": "painting",
            "style-layer-2": "painting2",
            "outside-selection": "second",
        },
    )
    result = gimp3.batch(spec, tmp_path).result
    assert result["status"] == "success", result["message"]
    new, photo = result["layers_after"][0], result["layers_before"][0]
    assert (new["width"], new["height"], new["offsets"]) == (photo["width"], photo["height"], photo["offsets"])
    assert not new["has_mask"]
    assert [i["name"] for i in result["layers_undone"]] == [i["name"] for i in result["layers_before"]]
    assert_sources_unchanged(result["layers_before"], result["layers_undone"])

    def small(rgba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        image = Image.fromarray(np.ascontiguousarray(rgba[..., :3])).resize(size, Image.Resampling.LANCZOS)
        return np.asarray(image, np.float32) / 255

    out, before = small(pixels(new), (128, 96)), small(pixels(photo), (128, 96))
    paintings = []
    for name, size in (("starry_night.jpg", (154, 96)), ("the_scream.jpg", (75, 96))):
        with Image.open(images / name) as painting:
            paintings.append(small(np.asarray(painting.convert("RGB")), size))
    inside = np.zeros((96, 128), np.float32)
    inside[:, :64] = 1.0
    vgg = get_vgg()
    for own, mask in ((0, inside), (1, 1.0 - inside)):

        def ratios(image: np.ndarray, own: int = own, mask: np.ndarray = mask) -> dict[str, float]:
            to_own = guided_style_losses(vgg, image, mask, paintings[own])
            to_other = guided_style_losses(vgg, image, mask, paintings[1 - own])
            return {k: to_own[k] / to_other[k] for k in STYLE_LAYERS}

        got, photo_ratios = ratios(out), ratios(before)
        print(f"region {own + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in got.items()))
        for layer in ("relu2_1", "relu3_1", "relu4_1"):  # as tests/test_regions.py, which says why
            assert got[layer] <= 0.5, (own, layer, got)
        for layer in ("relu1_1", "relu5_1"):
            assert got[layer] < photo_ratios[layer], (own, layer, got, photo_ratios)
