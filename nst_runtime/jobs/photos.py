"""A batch of photos with the same settings: one job per photo, stylized and encoded by
``stylize_job`` (the same function a Ray task runs, so a cluster's results are byte-identical to
a local batch), then written atomically. A photo that fails is recorded and the batch goes on;
outputs that exist are skipped unless asked to overwrite them; a summary goes to
``OUTDIR/nst-batch-summary.json``. ``nst batch`` (nst_runtime.cli.batch) presents it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import Cancelled, NSTError, describe_failure
from ..imaging.images import encode_image, output_format, write_atomically
from ..options import Options
from ..vgg import prewarm
from .reporting import Reporter, in_thread

SUMMARY_NAME = "nst-batch-summary.json"
STATUSES = ("done", "skipped", "failed", "cancelled")


@dataclass
class PhotoJob:
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
    from ..engine.runner import run  # here, not above: the sessions' prewarm starts before torch loads

    result = run(content, list(styles), options, progress=progress, cancel=cancel, graphs_dir=graphs_dir)
    data, notes = encode_image(result.image, fmt)
    return Encoded(data, notes, result.seconds, result.loss)


def image_files(folder: Path) -> list[Path]:
    """The images directly inside ``folder`` (by extension Pillow knows), sorted by name."""
    from PIL import Image

    known = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in known and p.name[:1] != ".")


def plan_jobs(inputs: Sequence[str], outdir: Path, fmt_suffix: str | None) -> list[PhotoJob]:
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
        jobs.append(PhotoJob(index, str(path), str(outdir / name)))
    return jobs


def select_todo(jobs: list[PhotoJob], styles: Sequence[str], overwrite: bool) -> list[PhotoJob]:
    """The jobs to run: one whose output would replace an input fails, one whose output exists is
    skipped unless ``overwrite``."""
    inputs = {Path(j.input).resolve() for j in jobs} | {Path(s).resolve() for s in styles}
    todo = []
    for job in jobs:
        out = Path(job.output)
        if out.resolve() in inputs:
            job.status, job.message = "failed", f"its output {out} would overwrite an input"
        elif out.exists() and not overwrite:
            job.status, job.message = "skipped", "output exists (use --overwrite to redo it)"
        else:
            todo.append(job)
    return todo


def run_local(
    jobs: list[PhotoJob],
    styles: Sequence[object],
    options: Options,
    reporter: Reporter,
    cancel: threading.Event,
    graphs_dir: str | None = None,
) -> None:
    """One photo after another in a worker thread, so Ctrl-C is handled at once."""
    prewarm.start(options.weights, options.pooling, options.device, graphs_dir)
    fmt_of = output_formats(jobs)
    for position, job in enumerate(jobs, start=1):
        if cancel.is_set():
            job.status = "cancelled"
            continue
        reporter.status(f"[{position}/{len(jobs)}] {job.input}")
        try:
            encoded, error = in_thread(
                lambda job=job: stylize_job(
                    job.input, styles, options, fmt_of[job.index], progress=reporter.event, cancel=cancel,
                    graphs_dir=graphs_dir,
                ),
                name="nst-batch",
            ), None  # fmt: skip
        except Exception as exc:
            encoded, error = None, exc
        reporter.finish_progress()
        finish_job(job, encoded, error, reporter)


def finish_job(job: PhotoJob, encoded: Encoded | None, error: BaseException | None, reporter: Reporter) -> None:
    """Write a finished photo, or record why it has none."""
    if isinstance(error, Cancelled):
        job.status = "cancelled"
        return
    if error is not None:
        if os.environ.get("NST_DEBUG") and not isinstance(error, NSTError):
            raise error
        job.status, job.message = "failed", describe_failure(error)
        reporter.error(f"{job.input}: {job.message}")
        return
    assert encoded is not None
    try:
        write_atomically(encoded.data, job.output)
    except NSTError as exc:
        job.status, job.message = "failed", str(exc)
        reporter.error(f"{job.input}: {job.message}")
        return
    job.status, job.seconds, job.notes = "done", encoded.seconds, encoded.notes
    for note in encoded.notes:
        reporter.note(f"{job.input}: {note}")


def output_formats(jobs: list[PhotoJob]) -> dict[int, str]:
    """The Pillow format of each job's output, by its extension."""
    return {job.index: output_format(Path(job.output)) for job in jobs}


def prepare_outdir(outdir: Path) -> Path:
    """The output folder, created (its parent must exist) and checked writable."""
    if outdir.exists() and not outdir.is_dir():
        raise NSTError(f"output folder is a file: {outdir}")
    if not outdir.parent.is_dir():
        raise NSTError(f"output folder's parent does not exist: {outdir.parent}")
    outdir.mkdir(exist_ok=True)
    if not os.access(outdir, os.W_OK):
        raise NSTError(f"output folder is not writable: {outdir}")
    return outdir


def format_suffix(fmt: str | None) -> str | None:
    """``--format png`` as ".png", refused where Pillow cannot write it."""
    if fmt is None:
        return None
    suffix = "." + fmt.lower().lstrip(".")
    output_format(Path("x" + suffix))
    return suffix


def count_statuses(jobs: list[PhotoJob]) -> dict[str, int]:
    return {s: sum(j.status == s for j in jobs) for s in STATUSES}


def write_summary(jobs: list[PhotoJob], outdir: Path) -> Path:
    """``OUTDIR/nst-batch-summary.json``: the counts and every job's outcome (NSTError if unwritable)."""
    summary = {"counts": count_statuses(jobs), "jobs": [asdict(j) for j in jobs]}
    path = outdir / SUMMARY_NAME
    write_atomically(json.dumps(summary, indent=2).encode(), path)
    return path
