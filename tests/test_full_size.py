"""Full size looks like the preview (issue 26): a 1024-px photo with a painting half that size,
continued from its 256-px preview in exact tiles, scored by bench/full_size_look.py's measure."""

from __future__ import annotations

import pytest
from PIL import Image

from bench import full_size_look as look
from tests.conftest import shared_image

PREVIEW = 256


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Image.Image, Image.Image]:
    photo_path, painting_path = shared_image("coffee.png"), shared_image("starry_night.jpg")
    photo = Image.open(photo_path).convert("RGB")
    photo = photo.resize((1024, round(1024 * photo.height / photo.width)), Image.Resampling.BICUBIC)
    painting = Image.open(painting_path).convert("RGB")
    painting = painting.resize((512, round(512 * painting.height / painting.width)), Image.Resampling.LANCZOS)
    return photo, painting


def test_full_size_keeps_the_previews_look_without_a_stride_grid(pair, tmp_path) -> None:
    from nst_runtime import make_options, run

    photo, painting = pair
    preview = run(photo, painting, make_options(size=PREVIEW, quality="draft", seed=1))
    assert max(preview.work.shape[:2]) == PREVIEW
    full = run(
        photo, painting, make_options(size=0, quality="draft", seed=1, continue_from=preview.work, tile_size=512)
    )
    assert full.image.size == photo.size
    assert all(s.look == preview.work.shape[:2] for s in full.scales)  # only the scales above the preview ran
    result = look.measure(photo, painting, full.image, preview.image, preview_size=PREVIEW)
    summary = {k: round(result[k], 3) for k in ("G8", "G16", "style_ratio", "content_ratio", "detail_ratio")}
    print("full size at 1024 from a 256 preview:", summary, result["texture_ratio"])
    assert result["style_ratio"] <= look.LOOK_BOUND, summary  # seen at the preview's size, the preview's look
    assert result["content_ratio"] <= look.LOOK_BOUND, summary
    assert result["detail_ratio"] >= look.DETAIL_BOUND, summary  # painted detail at 100 %, not an upscale
    # Issue 26 asks G8 and G16 ≤ 3; that is not met (docs/benchmarks.md §10). Measured on this pair:
    # G8 13.2–16.0 and G16 4.5–5.3 (graph formats 6 and 7); on a 512×384 crop of the painting 7.0
    # and 2.9, where the old full-size ladder scored 16.6 and 4.9. These bounds only keep the
    # lattice from growing to what draft's one step at the top printed before (G8 in the hundreds).
    assert result["G16"] <= 8.0, summary
    assert result["G8"] <= 24.0, summary
