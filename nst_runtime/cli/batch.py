"""``nst batch INPUT... --style STYLE [--style STYLE ...] -o OUTDIR``: many photos, the same settings.

A shell on ``jobs.photos``: a photo that fails is reported and the batch goes on; outputs that
exist are skipped unless ``--overwrite``; the exit code is non-zero when any photo failed, and a
summary goes to stderr and to ``OUTDIR/nst-batch-summary.json``.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from ..errors import EXIT_CANCELLED, EXIT_ERROR, NSTError, describe_failure
from ..jobs import photos
from .common import Parser, Presenter, add_ray_option, add_run_options, cancel_on_signals, options_from_args


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="nst batch",
        description="Stylize many photos (files or folders of images) with the same settings. Outputs that exist "
        "are skipped unless --overwrite; a failed photo is reported and the batch goes on.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="photos, or folders whose images are all stylized")
    p.add_argument("--style", action="append", required=True, metavar="STYLE", help="a style image (repeat to blend)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the results (created)")
    p.add_argument("--format", metavar="EXT", help="output extension for every result, e.g. png (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="redo photos whose output exists")
    add_ray_option(p, "the photos")
    add_run_options(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    say = Presenter("nst batch", quiet=args.quiet)
    try:
        options = options_from_args(args)
        options.validate(len(args.style))
        outdir = photos.prepare_outdir(Path(args.output))
        jobs = photos.plan_jobs(args.inputs, outdir, photos.format_suffix(args.format))
        if not jobs:
            raise NSTError("no photos to stylize: the input folders hold no images")
        from ..imaging.images import load_image

        styles = [load_image(s, "style") for s in args.style]  # a bad style fails the batch at once
    except NSTError as exc:
        say.error(str(exc))
        return EXIT_ERROR
    todo = photos.select_todo(jobs, args.style, args.overwrite)
    cancel = threading.Event()
    with cancel_on_signals(cancel):
        try:
            if args.ray is not None:
                from ..jobs.cluster import run_batch

                run_batch(todo, styles, options, args.ray, args.graphs, say, cancel)
            else:
                photos.run_local(todo, styles, options, say, cancel, args.graphs)
        except Exception as exc:  # the cluster itself (not one photo) is unusable
            if os.environ.get("NST_DEBUG") and not isinstance(exc, NSTError):
                raise
            say.finish_progress()
            say.error(describe_failure(exc))
            return EXIT_ERROR
    say.finish_progress()
    return _summarise(jobs, outdir, say, cancel.is_set())


def _summarise(jobs: list[photos.PhotoJob], outdir: Path, say: Presenter, cancelled: bool) -> int:
    summary_path = outdir / photos.SUMMARY_NAME
    try:
        photos.write_summary(jobs, outdir)
    except NSTError as exc:
        say.error(str(exc))
    counts = photos.count_statuses(jobs)
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("done", "failed"))
    say.always(f"{line} (summary: {summary_path})")
    for job in jobs:
        if job.status == "failed":
            say.always(f"failed: {job.input}: {job.message}")
    if cancelled:
        return EXIT_CANCELLED
    return EXIT_ERROR if counts["failed"] else 0
