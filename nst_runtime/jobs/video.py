"""A video or animation stylized without flicker, as a job that survives interruption.

Finished frames go to a work folder beside the output (``OUT.nst-work``) as they finish, so
Ctrl-C loses at most the frame in progress and a resumed job continues from there; the output is
written once every frame is done, at the input's frame rate (an animation keeps its per-frame
durations), and the work folder removed. The frames are stylized here one after another
(``engine.animation.stylize_frames``) or as segments on a Ray cluster (``jobs.cluster``).
``nst video`` (nst_runtime.cli.video) presents it.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import Cancelled, NSTError
from ..imaging.frameio import Clip, check_clip_output, open_clip, write_clip
from ..imaging.images import check_not_an_input, load_image, to_u8
from ..imaging.tensors import resize_array
from ..options import Options, compute_size
from ..vgg import prewarm
from .reporting import Reporter, in_thread
from .video_work import WORK_SUFFIX, VideoSettings, finished_frames, open_work, read_work_frame, save_work_frame


@dataclass(frozen=True)
class VideoOutcome:
    """How a video job ended: every frame written to ``output``, or cancelled with ``frames`` kept in ``work``."""

    output: Path
    work: Path
    frames: int
    width: int
    height: int
    seconds: float
    cancelled: bool


def stylize_video(
    source: str,
    styles: Sequence[str],
    output: str,
    options: Options,
    settings: VideoSettings,
    record: dict,
    reporter: Reporter,
    cancel: threading.Event,
    *,
    fps: float | None = None,
    work: str | None = None,
    resume: bool = False,
    on_frame: Callable[[object], None] = lambda _r: None,
) -> VideoOutcome:
    """Stylize every frame of ``source`` into ``output``. ``record`` is what decides the frames (a
    resumed job must match it exactly); ``on_frame`` receives each finished ``Stylized`` frame."""
    options.validate(len(styles))
    settings.check()
    out = check_clip_output(output)
    clip = open_clip(source, fps=fps)
    check_not_an_input(out, [("input", source), *(("style", s) for s in styles)])
    for note in clip.notes:
        reporter.note(note)
    style_images = [load_image(s, "style") for s in styles]
    work_dir = Path(work) if work else out.with_name(out.name + WORK_SUFFIX)
    done = open_work(work_dir, record, resume)
    prewarm.start(options.weights, options.pooling, options.device, settings.graphs_dir)
    started = time.perf_counter()
    if settings.ray is not None:
        from .cluster import run_video

        frames_done = run_video(clip, style_images, options, work_dir, done, settings, reporter, cancel)
    else:
        frames_done = run_local(clip, style_images, options, settings, work_dir, done, reporter, cancel, on_frame)
    reporter.finish_progress()
    if not cancel.is_set():
        for note in write_clip(out, finished_frames(work_dir, frames_done, clip), clip.fps, clip.durations_ms):
            reporter.note(note)
        shutil.rmtree(work_dir, ignore_errors=True)
    seconds = time.perf_counter() - started
    return VideoOutcome(out, work_dir, frames_done, clip.width, clip.height, seconds, cancel.is_set())


def run_local(
    clip: Clip,
    styles: Sequence[object],
    options: Options,
    settings: VideoSettings,
    work_dir: Path,
    done: int,
    reporter: Reporter,
    cancel: threading.Event,
    on_frame: Callable[[object], None],
) -> int:
    """The frames after ``done`` in a worker thread (so Ctrl-C is handled at once); returns the finished count."""
    from ..engine.animation import stylize_frames  # here: the sessions' prewarm starts before torch loads

    finished = {"count": done}

    def work() -> None:
        try:
            frames, previous = resume_point(clip, options, work_dir, done)
            for result in stylize_frames(
                frames, styles, options, temporal_weight=settings.frames.temporal_weight,
                frame_steps=settings.frames.frame_steps,
                count=clip.count, previous=previous, start=done, progress=reporter.event, cancel=cancel,
                graphs_dir=settings.graphs_dir,
            ):  # fmt: skip
                save_work_frame(work_dir, result.index, Image.fromarray(to_u8(result.work), "RGB"))
                finished["count"] = result.index + 1
                on_frame(result)
        except Cancelled:
            pass

    in_thread(work, name="nst-video")
    return finished["count"]


def resume_point(clip, options, work: Path, done: int):
    """The clip's frames from ``done`` on, and the finished frame before them to warp from (or None)."""
    from ..engine.animation import Stylized

    frames = clip.frames()
    previous = None
    for index in range(done):
        source = next(frames, None)
        if source is None:
            raise NSTError(f"the work folder has {done} frames but the input only {index}")
        if index == done - 1:
            rgb = source.astype(np.float32) / 255.0
            height, width = compute_size(rgb.shape[0], rgb.shape[1], options.size)
            stylized = read_work_frame(work, index)
            if stylized.shape[:2] != (height, width):
                raise NSTError(f"the work folder's frame {index + 1} is not {width}×{height}: delete {work}")
            image = Image.fromarray(to_u8(stylized), "RGB")
            previous = Stylized(
                index, image, stylized, resize_array(rgb, height, width), False, math.nan, math.nan, {}, 0.0
            )
    return frames, previous
