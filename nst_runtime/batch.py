"""``nst batch INPUT... --style STYLE [--style STYLE ...] -o OUTDIR``: many photos, the same settings.

A thin shell on the engine: each photo is one job, stylized and encoded by ``stylize_job`` (the
same function a Ray task runs, so a cluster's results are byte-identical to a local batch), then
written atomically. A photo that fails is reported and the batch goes on; outputs that exist are
skipped unless ``--overwrite``; the exit code is non-zero when any photo failed, and a summary
goes to stderr and to ``OUTDIR/nst-batch-summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import Cancelled, NSTError, describe_failure

SUMMARY_NAME = "nst-batch-summary.json"
EXIT_FAILED = 1
EXIT_CANCELLED = 130


@dataclass
class Job:
    """One photo of the batch and where its result goes."""

    index: int
    input: str
    output: str
    status: str = "pending"  # pending, done, skipped, failed, cancelled
    message: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Encoded:
    """A finished photo: the output file's bytes (what a Ray task sends back, not float arrays)."""

    data: bytes
    notes: list[str]
    seconds: float
    loss: float


def stylize_job(
    content: object,
    styles: Sequence[object],
    options,
    fmt: str,
    *,
    progress: Callable | None = None,
    cancel: threading.Event | None = None,
    graphs_dir: str | None = None,
) -> Encoded:
    """Stylize one photo and encode it in ``fmt``: the unit of work, local or on a Ray worker."""
    from .engine import run
    from .images import encode_image

    result = run(content, list(styles), options, progress=progress, cancel=cancel, graphs_dir=graphs_dir)
    data, notes = encode_image(result.image, fmt)
    return Encoded(data, notes, result.seconds, result.loss)


def image_files(folder: Path) -> list[Path]:
    """The images directly inside ``folder`` (by extension Pillow knows), sorted by name."""
    from PIL import Image

    known = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in known and p.name[:1] != ".")


def plan_jobs(inputs: Sequence[str], outdir: Path, fmt_suffix: str | None) -> list[Job]:
    """One job per photo; folders expand to their images; two inputs never share an output name."""
    from PIL import Image

    writable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        paths.extend(image_files(path) if path.is_dir() else [path])
    jobs, taken = [], set()
    for index, path in enumerate(paths):
        suffix = fmt_suffix or (path.suffix.lower() if path.suffix.lower() in writable else ".png")
        name, n = f"{path.stem}{suffix}", 2
        while name.lower() in taken:
            name, n = f"{path.stem}-{n}{suffix}", n + 1
        taken.add(name.lower())
        jobs.append(Job(index, str(path), str(outdir / name)))
    return jobs


def build_parser() -> argparse.ArgumentParser:
    from .cli import _Parser, add_ray_option, add_run_options

    p = _Parser(
        prog="nst batch",
        description="Stylize many photos (files or folders of images) with the same settings. Outputs that exist "
        "are skipped unless --overwrite; a failed photo is reported and the batch goes on.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    from .cli import _Say, options_from_args

    args = build_parser().parse_args(argv)
    say = _Say("nst batch", quiet=args.quiet)
    try:
        options = options_from_args(args)
        options.validate(len(args.style))
        outdir = _prepare_outdir(Path(args.output))
        suffix = _format_suffix(args.format)
        jobs = plan_jobs(args.inputs, outdir, suffix)
        if not jobs:
            raise NSTError("no photos to stylize: the input folders hold no images")
        from .images import load_image

        styles = [load_image(s, "style") for s in args.style]  # a bad style fails the batch at once
    except NSTError as exc:
        say.error(str(exc))
        return EXIT_FAILED
    inputs = {Path(j.input).resolve() for j in jobs} | {Path(s).resolve() for s in args.style}
    todo = []
    for job in jobs:
        out = Path(job.output)
        if out.resolve() in inputs:
            job.status, job.message = "failed", f"its output {out} would overwrite an input"
        elif out.exists() and not args.overwrite:
            job.status, job.message = "skipped", "output exists (use --overwrite to redo it)"
        else:
            todo.append(job)
    cancel = threading.Event()
    if args.ray is not None:
        from . import ray_jobs

        runner = ray_jobs.run_batch
    else:
        runner = run_local
    from .cli import _signals_set

    with _signals_set(cancel):
        try:
            runner(todo, styles, options, args, say, cancel)
        except Exception as exc:  # the cluster itself (not one photo) is unusable
            if os.environ.get("NST_DEBUG") and not isinstance(exc, NSTError):
                raise
            say.finish_progress()
            say.error(describe_failure(exc))
            return EXIT_FAILED
    say.finish_progress()
    return _summarise(jobs, outdir, say, cancel.is_set())


def run_local(jobs: list[Job], styles, options, args, say, cancel: threading.Event) -> None:
    """One photo after another in a worker thread, so Ctrl-C is handled at once."""
    from . import prewarm
    from .cli import in_thread

    prewarm.start(args.weights, args.pooling, args.device, args.graphs)
    fmt_of = _formats(jobs)
    for position, job in enumerate(jobs, start=1):
        if cancel.is_set():
            job.status = "cancelled"
            continue
        say.info(f"nst batch: [{position}/{len(jobs)}] {job.input}")
        try:
            encoded, error = in_thread(
                lambda job=job: stylize_job(
                    job.input, styles, options, fmt_of[job.index], progress=say.event, cancel=cancel,
                    graphs_dir=args.graphs,
                ),
                name="nst-batch",
            ), None  # fmt: skip
        except Exception as exc:
            encoded, error = None, exc
        say.finish_progress()
        finish_job(job, encoded, error, say)


def finish_job(job: Job, encoded: Encoded | None, error: BaseException | None, say) -> None:
    """Write a finished photo, or record why it has none."""
    from .images import write_atomically

    if isinstance(error, Cancelled):
        job.status = "cancelled"
        return
    if error is not None:
        if os.environ.get("NST_DEBUG") and not isinstance(error, NSTError):
            raise error
        job.status, job.message = "failed", describe_failure(error)
        say.error(f"{job.input}: {job.message}")
        return
    assert encoded is not None
    try:
        write_atomically(encoded.data, job.output)
    except NSTError as exc:
        job.status, job.message = "failed", str(exc)
        say.error(f"{job.input}: {job.message}")
        return
    job.status, job.seconds, job.notes = "done", encoded.seconds, encoded.notes
    for note in encoded.notes:
        say.note(f"{job.input}: {note}")


def _formats(jobs: list[Job]) -> dict[int, str]:
    from .images import output_format

    return {job.index: output_format(Path(job.output)) for job in jobs}


def _prepare_outdir(outdir: Path) -> Path:
    if outdir.exists() and not outdir.is_dir():
        raise NSTError(f"output folder is a file: {outdir}")
    if not outdir.parent.is_dir():
        raise NSTError(f"output folder's parent does not exist: {outdir.parent}")
    outdir.mkdir(exist_ok=True)
    if not os.access(outdir, os.W_OK):
        raise NSTError(f"output folder is not writable: {outdir}")
    return outdir


def _format_suffix(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    from .images import output_format

    suffix = "." + fmt.lower().lstrip(".")
    output_format(Path("x" + suffix))  # refuses formats Pillow cannot write
    return suffix


def _summarise(jobs: list[Job], outdir: Path, say, cancelled: bool) -> int:
    counts = {s: sum(j.status == s for j in jobs) for s in ("done", "skipped", "failed", "cancelled")}
    summary = {"counts": counts, "jobs": [asdict(j) for j in jobs]}
    summary_path = outdir / SUMMARY_NAME
    try:
        from .images import write_atomically

        write_atomically(json.dumps(summary, indent=2).encode(), summary_path)
    except NSTError as exc:
        say.error(str(exc))
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("done", "failed"))
    print(f"nst batch: {line} (summary: {summary_path})", file=sys.stderr, flush=True)
    for job in jobs:
        if job.status == "failed":
            print(f"nst batch: failed: {job.input}: {job.message}", file=sys.stderr, flush=True)
    if cancelled:
        return EXIT_CANCELLED
    return EXIT_FAILED if counts["failed"] else 0
