"""Reading and writing frame sequences: videos (PyAV), animated GIF/WebP/PNG (Pillow), folders of numbered images.

A ``Clip`` streams its frames (a long video never sits in memory) as 8-bit RGB arrays and keeps
its timing, so the output plays at the input's rate: a video's frame rate, or an animation's
per-frame durations. Output is written to a temporary file and renamed, so a failed or cancelled
write never leaves half a video where the user asked for one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from ..errors import NSTError
from .images import current_umask, short_error, sweep_temps, temp_beside

VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
VIDEO_CODECS = {"webm": ("libvpx-vp9", {"crf": "30", "b:v": "0"})}
DEFAULT_CODEC = ("libx264", {"crf": "18", "preset": "medium"})
ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}
FOLDER_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
FOLDER_FRAME_NAME = "frame_{:06d}.png"
DEFAULT_FPS = Fraction(24)


@dataclass
class Clip:
    """A frame sequence: its timing, its size and a way to read its frames in order."""

    path: Path
    kind: str  # "video", "animation" or "folder"
    width: int
    height: int
    fps: Fraction
    count: int | None  # None where the container does not say
    durations_ms: list[int] | None = None  # an animation's own per-frame timing
    notes: list[str] = field(default_factory=list)
    parse_files: list[Path] = field(default_factory=list, repr=False)

    def frames(self) -> Iterator[np.ndarray]:
        """8-bit RGB [H, W, 3] frames, first to last."""
        if self.kind == "video":
            yield from _video_frames(self.path)
        elif self.kind == "animation":
            yield from _animation_frames(self.path)
        else:
            yield from _folder_frames(self.parse_files, self.width, self.height)


def open_clip(source: str | os.PathLike, fps: float | None = None) -> Clip:
    """A video file, an animated image or a folder of numbered images; ``fps`` where it has none of its own."""
    path = Path(source)
    if not path.exists():
        raise NSTError(f"input not found: {path}")
    if path.is_dir():
        return _open_folder(path, Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FPS)
    if path.stat().st_size == 0:
        raise NSTError(f"input file is empty: {path}")
    animation = _open_animation(path)
    return animation if animation is not None else _open_video(path)


# --- reading ------------------------------------------------------------------------------------


def _open_animation(path: Path) -> Clip | None:
    """An image file Pillow reads (animated or a single frame), or None when it is not an image."""
    try:
        with Image.open(path) as im:
            count = getattr(im, "n_frames", 1)
            durations = []
            for frame in ImageSequence.Iterator(im):
                frame.load()  # WebP sets a frame's duration only once it is decoded
                durations.append(int(frame.info.get("duration") or 100))
            width, height = im.size
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NSTError(f"input animation is truncated or corrupt: {path} ({short_error(exc)})") from None
    notes = [] if count > 1 else [f"input has a single frame: {path}"]
    fps = Fraction(1000 * len(durations), max(1, sum(durations))).limit_denominator(1001)
    return Clip(path, "animation", width, height, fps, count, durations, notes)


def _animation_frames(path: Path) -> Iterator[np.ndarray]:
    with Image.open(path) as im:
        for frame in ImageSequence.Iterator(im):
            yield np.asarray(frame.convert("RGB"))


def _open_video(path: Path) -> Clip:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise NSTError(f"input has no video stream: {path}")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            width, height = stream.codec_context.width, stream.codec_context.height
            count = stream.frames or None
            notes = [f"the audio of {path.name} is not copied to the result"] if container.streams.audio else []
            if not width or not height:
                first = next(container.decode(stream), None)
                if first is None:
                    raise NSTError(f"input video has no frames: {path}")
                width, height = first.width, first.height
    except NSTError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise NSTError(f"input is neither an image nor a readable video: {path} ({short_error(exc)})") from None
    return Clip(path, "video", width, height, Fraction(rate), count, None, notes)


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
    except (av.error.FFmpegError, OSError) as exc:
        raise NSTError(f"input video is truncated or corrupt: {path} ({short_error(exc)})") from None


def _frame_number(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


def _open_folder(path: Path, fps: Fraction) -> Clip:
    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FOLDER_IMAGE_SUFFIXES and p.stem[:1] != "."),
        key=_frame_number,
    )
    if not files:
        raise NSTError(f"input folder has no images ({', '.join(sorted(FOLDER_IMAGE_SUFFIXES))}): {path}")
    try:
        with Image.open(files[0]) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NSTError(f"input frame is not a readable image: {files[0]} ({short_error(exc)})") from None
    return Clip(path, "folder", width, height, fps, len(files), None, [], files)


def _folder_frames(files: list[Path], width: int, height: int) -> Iterator[np.ndarray]:
    from .images import load_image, to_pil

    for file in files:
        data = load_image(file, "input frame")
        if (data.width, data.height) != (width, height):
            raise NSTError(f"input frame {file} is {data.width}×{data.height}, the first frame {width}×{height}")
        yield np.asarray(to_pil(data.rgb, None))


# --- writing ------------------------------------------------------------------------------------


def output_kind(path: str | os.PathLike) -> str:
    """ "video", "animation" or "folder" (a path with no extension, or an existing folder)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        return "folder"
    if suffix in VIDEO_FORMATS:
        return "video"
    if suffix in ANIMATION_FORMATS:
        return "animation"
    known = ", ".join(sorted({*VIDEO_FORMATS, *ANIMATION_FORMATS}))
    raise NSTError(f"cannot write frames to {path}: use one of {known}, or a folder")


def check_clip_output(path: str | os.PathLike) -> Path:
    """Fail before any compute if the frames could not be written there."""
    path = Path(path)
    kind = output_kind(path)
    parent = path if kind == "folder" and path.is_dir() else path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise NSTError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise NSTError(f"output directory is not writable: {parent}")
    return path


def write_clip(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: Fraction,
    durations_ms: list[int] | None = None,
) -> list[str]:
    """Write 8-bit RGB frames; returns notes for the user. The file appears only once complete."""
    path = Path(path)
    kind = output_kind(path)
    if kind == "folder":
        return _write_folder(path, frames)
    sweep_temps(path)
    tmp = temp_beside(path)
    try:
        if kind == "video":
            notes = _write_video(tmp, frames, fps, VIDEO_FORMATS[path.suffix.lower()])
        else:
            notes = _write_animation(tmp, frames, fps, durations_ms, ANIMATION_FORMATS[path.suffix.lower()])
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return notes


def _write_video(path: Path, frames: Iterable[np.ndarray], fps: Fraction, container_format: str) -> list[str]:
    import av

    notes: list[str] = []
    codec, options = VIDEO_CODECS.get(container_format, DEFAULT_CODEC)
    try:
        with av.open(str(path), "w", format=container_format) as container:
            stream = None
            for rgb in frames:
                if stream is None:
                    height, width = rgb.shape[:2]
                    if width % 2 or height % 2:  # 4:2:0 chroma needs even sides
                        notes.append(f"{width}×{height} padded to even sides for {codec}: the last row/column repeats")
                    stream = container.add_stream(codec, rate=fps, options=options)
                    stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
                padded = np.pad(rgb, ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)), mode="edge")
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")))
            if stream is None:
                raise NSTError("no frames to write")
            container.mux(stream.encode(None))
    except av.error.FFmpegError as exc:
        raise NSTError(f"cannot write the video: {short_error(exc)}") from None
    return notes


def _write_animation(
    path: Path, frames: Iterable[np.ndarray], fps: Fraction, durations_ms: list[int] | None, fmt: str
) -> list[str]:
    images = [Image.fromarray(rgb, "RGB") for rgb in frames]
    if not images:
        raise NSTError("no frames to write")
    durations = durations_ms if durations_ms and len(durations_ms) == len(images) else None
    if durations is None:
        durations = [round(1000 / float(fps))] * len(images)
    extra = {"quality": 90} if fmt == "WEBP" else {"optimize": False}
    try:
        images[0].save(path, format=fmt, save_all=True, append_images=images[1:], duration=durations, loop=0, **extra)
    except (OSError, ValueError) as exc:
        raise NSTError(f"cannot write the animation: {short_error(exc)}") from None
    return []


def _write_folder(path: Path, frames: Iterable[np.ndarray]) -> list[str]:
    from .images import save_image

    path.mkdir(exist_ok=True)
    notes: list[str] = []
    for index, rgb in enumerate(frames, start=1):
        notes += save_image(Image.fromarray(rgb, "RGB"), path / FOLDER_FRAME_NAME.format(index))
    return notes
