"""``nst video IN STYLE [STYLE ...] -o OUT``: a video or animation stylized without flicker.

A thin shell on ``stylize_frames``. Finished frames go to a work folder beside the output
(``OUT.nst-work``) as they finish, so Ctrl-C loses at most the frame in progress and
``--resume`` continues from there; the output is written once every frame is done, at the
input's frame rate (an animation keeps its per-frame durations), and the work folder removed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from .cli import _number, _Parser, _Say, _signals_set, add_ray_option, add_run_options, in_thread, options_from_args
from .errors import Cancelled, NSTError, describe_failure

EXIT_ERROR = 1
EXIT_CANCELLED = 130
WORK_SUFFIX = ".nst-work"
JOB_FILE = "job.json"
WORK_FRAME = "frame_{:06d}.png"


def build_parser() -> argparse.ArgumentParser:
    from .animation import DEFAULT_TEMPORAL_WEIGHT, FRAME_STEPS

    p = _Parser(
        prog="nst video",
        description="Stylize a video (mp4, webm, mkv, mov), an animated GIF/WebP or a folder of numbered images, "
        "each frame starting from the previous one warped by optical flow (Ruder et al. 2016), so it does not "
        "flicker. Ctrl-C keeps the finished frames; --resume continues.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("input", help="video file, animated image, or folder of numbered images")
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images")
    p.add_argument("-o", "--output", required=True, help="video, .gif/.webp, or a folder for numbered PNGs")
    p.add_argument(
        "--temporal-weight",
        type=_number,
        default=DEFAULT_TEMPORAL_WEIGHT,
        help="how strongly each frame keeps to the previous one (0: only start from it; higher: steadier)",
    )
    p.add_argument("--frame-steps", type=int, default=FRAME_STEPS, help="steps of each frame after a shot's first")
    p.add_argument("--fps", type=_number, help="frame rate of a folder of images (videos keep their own)")
    p.add_argument("--work", metavar="DIR", help=f"work folder (default: OUTPUT{WORK_SUFFIX})")
    p.add_argument("--resume", action="store_true", help="continue the frames an interrupted run left")
    add_ray_option(p, "the shots (and segments of long shots)")
    p.add_argument("--segment", type=int, default=48, help="with --ray: frames per task within a shot")
    p.add_argument("--overlap", type=int, default=4, help="with --ray: frames a segment re-stylizes before its own")
    add_run_options(p)
    return p


def job_record(args: argparse.Namespace) -> dict:
    """What decides the frames: a resumed run must match it exactly."""
    skip = {"output", "work", "resume", "quiet", "ray", "graphs"}
    record = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    record["input"] = str(Path(args.input).resolve())
    record["styles"] = [str(Path(s).resolve()) for s in args.styles]
    return json.loads(json.dumps(record))  # tuples → lists, as they come back from the file


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    say = FrameSay("nst video", quiet=args.quiet)
    try:
        return _run(args, say)
    except NSTError as exc:
        say.finish_progress()
        say.error(str(exc))
        return EXIT_ERROR
    except Exception as exc:  # one line, never a traceback (NST_DEBUG=1 shows it)
        if os.environ.get("NST_DEBUG"):
            raise
        say.finish_progress()
        say.error(describe_failure(exc))
        return EXIT_ERROR


def _run(args: argparse.Namespace, say: FrameSay) -> int:
    from . import prewarm
    from .frameio import check_clip_output, open_clip

    options = options_from_args(args)
    options.validate(len(args.styles))
    if args.frame_steps < 1:
        raise NSTError(f"frame-steps must be at least 1, got {args.frame_steps}")
    if not args.temporal_weight >= 0:
        raise NSTError(f"temporal-weight must be a non-negative number, got {args.temporal_weight}")
    out = check_clip_output(args.output)
    clip = open_clip(args.input, fps=args.fps)
    from .images import check_not_an_input

    check_not_an_input(out, [("input", args.input), *(("style", s) for s in args.styles)])
    for note in clip.notes:
        say.note(note)
    from .images import load_image

    styles = [load_image(s, "style") for s in args.styles]
    work = Path(args.work) if args.work else out.with_name(out.name + WORK_SUFFIX)
    done = _open_work(work, job_record(args), args.resume)
    prewarm.start(args.weights, args.pooling, args.device, args.graphs)
    say.total = clip.count
    cancel = threading.Event()
    started = time.perf_counter()
    if args.ray is not None:
        from . import ray_jobs

        frames_done = ray_jobs.run_video(clip, styles, options, args, work, done, say, cancel)
    else:
        frames_done = _run_local(clip, styles, options, args, work, done, say, cancel)
    say.finish_progress()
    if cancel.is_set():
        say.error(
            f"cancelled after {frames_done} frame(s); they are kept in {work} and "
            "the same command with --resume continues"
        )
        return EXIT_CANCELLED
    from .frameio import write_clip

    for note in write_clip(out, _finished_frames(work, frames_done, clip), clip.fps, clip.durations_ms):
        say.note(note)
    shutil.rmtree(work, ignore_errors=True)
    say.info(f"wrote {out} ({frames_done} frames, {clip.width}×{clip.height}) in {time.perf_counter() - started:.1f} s")
    return 0


def _open_work(work: Path, record: dict, resume: bool) -> int:
    """The count of frames an earlier run finished (0 for a new job); refuses a mismatched folder."""
    job_file = work / JOB_FILE
    if work.exists() and not resume:
        raise NSTError(f"a work folder from an earlier run exists: {work} (add --resume to continue it, or delete it)")
    if resume and job_file.is_file():
        try:
            earlier = json.loads(job_file.read_text())
        except (OSError, ValueError):
            raise NSTError(f"the work folder's {JOB_FILE} is unreadable: {work}") from None
        changed = sorted(k for k in set(earlier) | set(record) if earlier.get(k) != record.get(k))
        if changed:
            raise NSTError(f"the work folder {work} is for a different job (differs in: {', '.join(changed)})")
        return count_done(work)
    work.mkdir(exist_ok=True)
    from .images import write_atomically

    write_atomically(json.dumps(record, indent=2).encode(), job_file)
    return 0


def count_done(work: Path) -> int:
    """Finished frames are numbered from 1 with no gaps; a gap ends what counts."""
    n = 0
    while (work / WORK_FRAME.format(n + 1)).is_file():
        n += 1
    return n


def read_work_frame(work: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) as the next frame is warped from it: float32 RGB at the computation size."""
    with Image.open(work / WORK_FRAME.format(index + 1)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def save_work_frame(work: Path, index: int, image: Image.Image) -> None:
    from .images import save_image

    save_image(image, work / WORK_FRAME.format(index + 1))


def _run_local(clip, styles, options, args, work_dir: Path, done: int, say: FrameSay, cancel) -> int:
    """The frames after ``done`` in a worker thread (so Ctrl-C is handled at once); returns the finished count."""
    from .animation import stylize_frames

    finished = {"count": done}

    def work() -> None:
        try:
            frames, previous = resume_point(clip, options, work_dir, done)
            for result in stylize_frames(
                frames, styles, options, temporal_weight=args.temporal_weight, frame_steps=args.frame_steps,
                count=clip.count, previous=previous, start=done, progress=say.event, cancel=cancel,
                graphs_dir=args.graphs,
            ):  # fmt: skip
                save_work_frame(work_dir, result.index, Image.fromarray(_to_u8(result.work), "RGB"))
                finished["count"] = result.index + 1
                say.frame_done(result)
        except Cancelled:
            pass

    with _signals_set(cancel):
        in_thread(work, name="nst-video")
    return finished["count"]


def resume_point(clip, options, work: Path, done: int):
    """The clip's frames from ``done`` on, and the finished frame before them to warp from (or None)."""
    from .animation import Stylized
    from .engine import resize_array
    from .options import compute_size

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
            image = Image.fromarray(_to_u8(stylized), "RGB")
            previous = Stylized(
                index, image, stylized, resize_array(rgb, height, width), False, math.nan, math.nan, {}, 0.0
            )
    return frames, previous


def _finished_frames(work: Path, count: int, clip):
    """The work frames at the clip's own size, first to last."""
    from .engine import resize_array

    for index in range(count):
        rgb = read_work_frame(work, index)
        if rgb.shape[:2] != (clip.height, clip.width):
            rgb = resize_array(rgb, clip.height, clip.width)
        yield _to_u8(rgb)


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


class FrameSay(_Say):
    """The CLI's presenter with the frame in front: "frame 3/24, scale 1/1, step 20/60", the bar and ETA overall."""

    def __init__(self, prog: str, quiet: bool):
        super().__init__(prog, quiet)
        self.total: int | None = None
        self.started = time.perf_counter()
        self.said: set[str] = set()

    def event(self, event) -> None:
        if getattr(event, "kind", "") != "frame":
            return super().event(event)
        inner = event.event
        if inner.kind != "progress":
            if inner.message not in self.said:  # every frame loads the graphs again (from the cache)
                self.said.add(inner.message)
                super().event(inner)
            return None
        total = event.frames or self.total
        overall = (event.frame + inner.fraction) / total if total else inner.fraction
        elapsed = time.perf_counter() - self.started
        eta = elapsed / overall * (1 - overall) if total and overall > 0 else math.nan
        if not self.quiet:
            of = f"/{total}" if total else ""
            self._progress(replace(inner, fraction=overall, eta_s=eta), prefix=f"frame {event.frame + 1}{of}, ")

    def frame_done(self, result) -> None:
        kind = "a still (first of its shot)" if result.shot_start else f"consistency {result.consistency:.2f}"
        if not self.tty:
            self.info(f"{self.prog}: frame {result.index + 1} done in {result.seconds:.1f} s, {kind}")
