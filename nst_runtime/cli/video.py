"""``nst video IN STYLE [STYLE ...] -o OUT``: a video or animation stylized without flicker.

A shell on ``jobs.video``: Ctrl-C keeps the finished frames in the work folder beside the
output, and ``--resume`` continues from there.
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from dataclasses import replace

from ..errors import EXIT_CANCELLED, EXIT_ERROR, NSTError, describe_failure
from ..jobs.video import stylize_video
from ..jobs.video_work import WORK_SUFFIX, VideoSettings, job_record
from ..options import FrameOptions, option_names
from .common import (
    Parser,
    Presenter,
    add_options,
    add_ray_option,
    add_run_options,
    cancel_on_signals,
    options_from_args,
    parse_number,
)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="nst video",
        description="Stylize a video (mp4, webm, mkv, mov), an animated GIF/WebP or a folder of numbered images, "
        "each frame starting from the previous one warped by optical flow (Ruder et al. 2016), so it does not "
        "flicker. Ctrl-C keeps the finished frames; --resume continues.",
    )
    p.add_argument("input", help="video file, animated image, or folder of numbered images")
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images")
    p.add_argument("-o", "--output", required=True, help="video, .gif/.webp, or a folder for numbered PNGs")
    add_options(p, FrameOptions)
    p.add_argument("--fps", type=parse_number, help="frame rate of a folder of images (videos keep their own)")
    p.add_argument("--work", metavar="DIR", help=f"work folder (default: OUTPUT{WORK_SUFFIX})")
    p.add_argument("--resume", action="store_true", help="continue the frames an interrupted run left")
    add_ray_option(p, "the shots (and segments of long shots)")
    p.add_argument("--segment", type=int, default=48, help="with --ray: frames per task within a shot")
    p.add_argument("--overlap", type=int, default=4, help="with --ray: frames a segment re-stylizes before its own")
    add_run_options(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    say = FramePresenter("nst video", quiet=args.quiet)
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


def _run(args: argparse.Namespace, say: FramePresenter) -> int:
    options = options_from_args(args)
    frames = FrameOptions(**{name: getattr(args, name) for name in option_names("cli", FrameOptions)})
    settings = VideoSettings(frames, args.graphs, args.ray, args.segment, args.overlap)
    cancel = threading.Event()
    with cancel_on_signals(cancel):
        outcome = stylize_video(
            args.input, args.styles, args.output, options, settings, job_record(vars(args), args.input, args.styles),
            say, cancel, fps=args.fps, work=args.work, resume=args.resume, on_frame=say.frame_done,
        )  # fmt: skip
    if outcome.cancelled:
        say.error(
            f"cancelled after {outcome.frames} frame(s); they are kept in {outcome.work} and "
            "the same command with --resume continues"
        )
        return EXIT_CANCELLED
    say.info(
        f"wrote {outcome.output} ({outcome.frames} frames, {outcome.width}×{outcome.height}) in {outcome.seconds:.1f} s"
    )
    return 0


class FramePresenter(Presenter):
    """The CLI's presenter with the frame in front: "frame 3/24, scale 1/1, step 20/60", the bar and ETA overall."""

    def __init__(self, prog: str, quiet: bool):
        super().__init__(prog, quiet)
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
        total = event.frames
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
