"""Image input and output: unusual valid files convert correctly, broken ones fail clearly."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_image
from nst_runtime.errors import NSTError
from nst_runtime.imaging.images import check_output_path, load_image, save_image, to_pil


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG written by hand, for formats Pillow cannot write (48-bit RGB) or headers it must refuse."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_one_by_one_pixel(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (255, 0, 0)).save(path)
    img = load_image(path)
    assert img.rgb.shape == (1, 1, 3) and img.rgb[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.array([[0, 128, 255]], dtype=np.uint8), "L").save(path)
    rgb = load_image(path).rgb
    assert np.allclose(rgb[0, :, 0], [0, 128 / 255, 1]) and np.all(rgb[..., 0] == rgb[..., 2])


def test_palette_with_transparency_keeps_its_alpha(tmp_path):
    path = tmp_path / "palette.png"
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putdata([0, 1])
    im.save(path, transparency=1)
    img = load_image(path)
    assert img.rgb[0, 0].tolist() == [1.0, 0.0, 0.0]
    assert img.alpha.tolist() == [[255, 0]]


def test_sixteen_bit_grayscale_uses_its_full_range(tmp_path):
    path = tmp_path / "gray16.png"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(path)
    rgb = load_image(path).rgb
    assert np.allclose(rgb[0, :, 1], [0.0, 32768 / 65535, 1.0], atol=1e-6)


def test_sixteen_bit_rgb(tmp_path):
    path = tmp_path / "rgb48.png"
    pixel = struct.pack(">HHH", 65535, 32896, 0)  # 32896 = 128 × 257
    path.write_bytes(png_bytes(2, 1, 16, 2, b"\x00" + pixel * 2))
    rgb = load_image(path).rgb
    assert np.allclose(rgb[0, 0], [1.0, 128 / 255, 0.0], atol=1 / 255)


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=100)
    rgb = load_image(path).rgb
    assert rgb[4, 4, 0] > 0.9 and rgb[4, 4, 1] < 0.1 and rgb[4, 4, 2] < 0.1


def test_la_and_rgba_alpha_pass_through_exactly(tmp_path):
    la = tmp_path / "la.png"
    Image.fromarray(np.dstack([np.full((2, 3), 90, np.uint8), np.arange(6, dtype=np.uint8).reshape(2, 3)]), "LA").save(
        la
    )
    img = load_image(la)
    assert img.alpha.tolist() == [[0, 1, 2], [3, 4, 5]]
    rgba = np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    assert np.array_equal(load_image(rgba).alpha, rgba[..., 3])


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 10, 10))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    im.save(path, exif=exif, quality=100)
    img = load_image(path)
    assert (img.height, img.width) == (40, 20)
    assert img.rgb[5, 15, 0] > 0.8  # the stored top-left is now the top-right


def test_animated_image_uses_the_first_frame_with_a_note(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    img = load_image(path, "style")
    assert img.rgb[0, 0, 0] > 0.9 and img.rgb[0, 0, 1] < 0.1
    assert any("first frame" in n for n in img.notes)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(50_000, 50_000, 8, 0, b"\x00" * 100))
    with pytest.raises(NSTError, match="too large"):
        load_image(path, "content")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not a picture"), "not an image"),
        (lambda p: p.write_bytes(shared_image("golden_gate.jpg").read_bytes()[:5000]), "truncated or corrupt"),
        (lambda p: p.mkdir(), "directory"),
    ],
)
def test_broken_files_fail_with_a_message_naming_the_file(tmp_path, make, message):
    path = tmp_path / "input.jpg"
    make(path)
    with pytest.raises(NSTError, match=message) as info:
        load_image(path, "style")
    assert str(path) in str(info.value) and str(info.value).startswith("style")


def test_raw_rgba_must_match_its_size():
    with pytest.raises(NSTError, match="bytes"):
        load_image({"rgba": b"\x00" * 10, "width": 2, "height": 2}, "content")


def test_output_checks_happen_before_compute(tmp_path):
    with pytest.raises(NSTError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png")
    with pytest.raises(NSTError, match="extension"):
        check_output_path(tmp_path / "out.xyz")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NSTError):
        check_output_path(blocker / "out.png")


def test_save_is_atomic_and_follows_the_extension(tmp_path):
    image = to_pil(np.full((4, 5, 3), 0.5, np.float32), np.full((4, 5), 7, np.uint8))
    notes = save_image(image, tmp_path / "out.jpg")
    assert any("alpha" in n for n in notes)
    save_image(image, tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as png:
        assert png.mode == "RGBA" and png.getpixel((0, 0))[3] == 7
    with Image.open(tmp_path / "out.jpg") as jpg:
        assert jpg.format == "JPEG"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["out.jpg", "out.png"]
