"""Reading any image a user may hand us, and writing results without ever leaving half a file.

Inputs become float RGB in [0, 1] plus the untouched 8-bit alpha channel (if any). Unusual but
valid files (16-bit, CMYK, palette, EXIF-rotated, animated, 1×1) convert correctly; broken ones
fail with a message that names the file and what is wrong with it.
"""

from __future__ import annotations

import glob
import io
import os
import re
import secrets
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from nst_export.owners import host_tag, owner_alive, this_process

from ..errors import NSTError

UNCHECKED_TEMP_S = 86400.0  # a temp file whose writer this host cannot check is litter after a day
_TEMP_NAME = re.compile(r"\.nst-(?P<pid>\d+)-(?P<ticks>\d+|x)-(?P<host>[0-9a-f]{8})-[0-9a-f]{6}\.tmp")
MAX_PIXELS = 100_000_000  # refuse larger images before decoding them: a bomb or beyond any use here
FORMATS_WITHOUT_ALPHA = {"JPEG", "MPO", "PPM", "EPS", "PCX"}


@dataclass
class ImageData:
    """An input image: RGB float32 [H, W, 3] in [0, 1], its alpha (uint8 [H, W]) and notes for the user."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    name: str = "image"

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def load_image(source: object, role: str = "image") -> ImageData:
    """Accept a path, a PIL image, a numpy array or raw RGBA (``{"rgba", "width", "height"}``)."""
    if isinstance(source, ImageData):
        return source
    if isinstance(source, str | os.PathLike):
        return _load_path(Path(source), role)
    if isinstance(source, Image.Image):
        return _from_pil(source, role, name=getattr(source, "filename", "") or role)
    if isinstance(source, np.ndarray):
        return _from_array(source, role)
    if isinstance(source, dict) and "rgba" in source:
        return from_rgba_bytes(source["rgba"], source.get("width"), source.get("height"), role)
    raise NSTError(f"{role} must be a file path, a PIL image or a numpy array, not {type(source).__name__}")


def from_rgba_bytes(data: bytes, width: object, height: object, role: str) -> ImageData:
    """8-bit sRGB RGBA rows, top to bottom (GEGL's "R'G'B'A u8")."""
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        raise NSTError(f"{role} pixels need a positive integer width and height")
    if width * height > MAX_PIXELS:
        raise NSTError(f"{role} image is too large: {width}×{height} (limit {MAX_PIXELS // 1_000_000} megapixels)")
    if len(data) != width * height * 4:
        raise NSTError(f"{role} pixels have {len(data)} bytes, expected {width}×{height}×4 = {width * height * 4}")
    return _from_array(np.frombuffer(data, dtype=np.uint8).reshape(height, width, 4), role)


def _load_path(path: Path, role: str) -> ImageData:
    if not path.exists():
        raise NSTError(f"{role} file not found: {path}")
    if path.is_dir():
        raise NSTError(f"{role} file is a directory: {path}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise NSTError(f"{role} file cannot be read: {path} ({exc.strerror})") from None
    if size == 0:
        raise NSTError(f"{role} file is empty: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_pixels(im.size, role, path)
                return _from_pil(im, role, name=path.stem)
    except UnidentifiedImageError:
        raise NSTError(f"{role} file is not an image: {path}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NSTError(f"{role} image is too large (decompression bomb?): {path}") from None
    except PermissionError:
        raise NSTError(f"{role} file cannot be read (permission denied): {path}") from None
    except NSTError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NSTError(f"{role} file is truncated or corrupt: {path} ({short_error(exc)})") from None


def _check_pixels(size: tuple[int, int], role: str, path: object) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise NSTError(f"{role} image has no pixels: {path}")
    if width * height > MAX_PIXELS:
        raise NSTError(
            f"{role} image is too large: {width}×{height} (limit {MAX_PIXELS // 1_000_000} megapixels): {path}"
        )


def _from_pil(im: Image.Image, role: str, name: str) -> ImageData:
    notes = []
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
        notes.append(f"{role} image is animated: using its first frame")
    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode == "CMYK" or (im.info.get("icc_profile") and im.mode in ("RGB", "RGBA")):
        im = _to_srgb(im)
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return ImageData(_gray_to_rgb(_high_depth(np.asarray(im))), None, notes, name)
    has_alpha = "A" in mode or "a" in mode or "transparency" in im.info
    converted = im.convert("RGBA" if has_alpha else "RGB")
    arr = np.asarray(converted)
    rgb = arr[..., :3].astype(np.float32) / 255.0
    alpha = arr[..., 3].copy() if has_alpha else None
    return ImageData(rgb, alpha, notes, name)


def _to_srgb(im: Image.Image) -> Image.Image:
    """Colour-manage into sRGB when the file carries a profile (CMYK needs it to look right)."""
    profile = im.info.get("icc_profile")
    target = "RGBA" if im.mode == "RGBA" else "RGB"
    if profile:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode=target)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to Pillow's plain conversion
    return im.convert(target)


def _high_depth(arr: np.ndarray) -> np.ndarray:
    """16-bit or 32-bit single-channel data → [0, 1], from the range its values actually use."""
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(values.max()) if values.size else 0.0
    scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0 if peak <= 65535.0 else peak
    return np.clip(values / scale, 0.0, 1.0).astype(np.float32)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _from_array(arr: np.ndarray, role: str) -> ImageData:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise NSTError(f"{role} array must be H×W, H×W×3 or H×W×4, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise NSTError(f"{role} array has no pixels: shape {arr.shape}")
    _check_pixels((arr.shape[1], arr.shape[0]), role, "array")
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = _alpha_u8(arr[..., 3])
        arr = arr[..., :3]
    if arr.dtype == np.uint8:
        values = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        values = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        values = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise NSTError(f"{role} array contains NaN or infinity")
        values = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise NSTError(f"{role} array must be uint8, uint16 or float in [0, 1], not {arr.dtype}")
    rgb = _gray_to_rgb(values) if values.ndim == 2 else values
    return ImageData(np.ascontiguousarray(rgb, dtype=np.float32), alpha, [], role)


def _alpha_u8(alpha: np.ndarray) -> np.ndarray:
    if alpha.dtype == np.uint8:
        return alpha.copy()
    if alpha.dtype == np.uint16:
        return (alpha.astype(np.uint32) // 257).astype(np.uint8)
    return np.clip(np.rint(alpha.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


# --- output ------------------------------------------------------------------------------------


def output_format(path: Path) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise NSTError(f"cannot write images with extension {path.suffix or '(none)'!r}: {path} (try .png or .jpg)")
    return fmt


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail before any compute if the result could not be written there."""
    path = Path(path)
    output_format(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise NSTError(f"output directory does not exist: {parent}")
    if not parent.is_dir():
        raise NSTError(f"output directory is not a directory: {parent}")
    if path.is_dir():
        raise NSTError(f"output path is a directory: {path}")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".nst-probe-"):
            pass
    except OSError as exc:
        raise NSTError(f"output directory is not writable: {parent} ({exc.strerror or exc})") from None
    return path


def check_not_an_input(output: Path, inputs: list[tuple[str, object]]) -> None:
    """Refuse to write the result over one of the run's own input files (the user's photo)."""
    for role, source in inputs:
        if not isinstance(source, str | os.PathLike):
            continue
        path = Path(source)
        try:
            same = output.exists() and path.exists() and os.path.samefile(output, path)
        except OSError:
            same = False
        if same or output.resolve() == path.resolve():
            raise NSTError(f"the output would overwrite the {role} file {path} (give --overwrite to allow it)")


def to_u8(rgb: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] → uint8, rounded."""
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """Float RGB [H, W, 3] + uint8 alpha → an 8-bit PIL image."""
    rgb8 = to_u8(rgb)
    if alpha is None:
        return Image.fromarray(rgb8, "RGB")
    return Image.fromarray(np.dstack([rgb8, alpha]), "RGBA")


def encode_image(image: Image.Image, fmt: str) -> tuple[bytes, list[str]]:
    """The file's bytes in ``fmt`` (a Pillow format name), and notes about what the format dropped."""
    notes = []
    if image.mode == "RGBA" and fmt in FORMATS_WITHOUT_ALPHA:
        image = image.convert("RGB")
        notes.append(f"{fmt} has no alpha channel: the result's transparency was dropped")
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    except (OSError, ValueError) as exc:
        raise NSTError(f"cannot encode the result as {fmt}: {short_error(exc)}") from None
    return buffer.getvalue(), notes


def temp_beside(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: beside it, hidden, and named by
    the process writing it, so that what a killed writer leaves is told from a write in progress
    (``sweep_temps``)."""
    owner = this_process()
    ticks = owner["start_ticks"] if owner["start_ticks"] is not None else "x"
    return path.with_name(f".{path.name}.nst-{owner['pid']}-{ticks}-{host_tag()}-{secrets.token_hex(3)}.tmp")


def sweep_temps(path: Path) -> list[Path]:
    """Remove the temp files that killed writers of ``path`` left beside it (their process is
    gone; one this host cannot check, once a day old); the ones removed."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.nst-*.tmp"):
        match = _TEMP_NAME.fullmatch(tmp.name[len(path.name) + 1 :])
        if match is None:
            continue
        ticks = None if match["ticks"] == "x" else int(match["ticks"])
        alive = owner_alive({"pid": int(match["pid"]), "host": match["host"], "start_ticks": ticks})
        try:
            old = time.time() - tmp.stat().st_mtime > UNCHECKED_TEMP_S
            if alive is False or (alive is None and old):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def write_atomically(data: bytes, path: str | os.PathLike) -> None:
    """The file appears complete or not at all (temp file + rename); what killed writers of the
    same file left beside it goes first."""
    path = Path(path)
    sweep_temps(path)
    tmp = temp_beside(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NSTError(f"cannot write {path}: {short_error(exc)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_image(image: Image.Image, path: str | os.PathLike) -> list[str]:
    """Write atomically in the format of the extension; return notes."""
    data, notes = encode_image(image, output_format(Path(path)))
    write_atomically(data, path)
    return notes


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def short_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]
