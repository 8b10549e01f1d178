"""``--ray``: batches and videos as tasks on a Ray cluster (optional extra, ``pip install 'nst[ray]'``).

Imported only when a command is given ``--ray``. The units of work are the local ones
(``batch.stylize_job``, ``animation.stylize_frames``), so a cluster's results equal a local run's:

- one task per photo, or per segment of a video shot; ``num_gpus=1`` where the cluster has GPUs,
  ``num_cpus=1`` otherwise; ``max_calls=0`` keeps each worker process, and so its cached
  onnxruntime sessions, for every task it runs (Ray's default for GPU tasks would rebuild them);
- the style images are ``ray.put`` once and shared by every task;
- results come back encoded (PNG/JPEG bytes), never as float arrays;
- progress: tasks report to a small actor the driver polls, and finished tasks are collected
  as they complete (``ray.wait``), so one progress bar covers the whole cluster;
- a worker that dies is retried (``max_retries``); a Python error in one photo fails that photo
  only; Ctrl-C cancels what is left (``ray.cancel``).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import NSTError, describe_failure
from ..imaging.images import encode_image, to_u8, write_atomically
from ..imaging.motion import is_shot_cut, motion
from ..imaging.tensors import resize_array
from ..options import compute_size
from ..vgg.sessions import physical_cores
from .photos import Encoded, PhotoJob, finish_job, output_formats, stylize_job
from .reporting import Reporter
from .video_work import WORK_FRAME, VideoSettings, count_done

MAX_RETRIES = 3
POLL_SECONDS = 0.25


def _ray():
    try:
        import ray
    except ImportError:
        raise NSTError("--ray needs Ray: pip install 'nst[ray]'") from None
    return ray


def connect(address: str | None):
    """``ray.init`` as Ray documents it: ADDRESS, else RAY_ADDRESS, a local ``ray start``, or a new local instance."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address and "://" not in address and address != "auto":
        _check_reachable(address)
    try:
        ray.init(
            address=address or None,
            log_to_driver=False,
            logging_level=logging.ERROR,
            runtime_env={"env_vars": {"NST_CACHE_DIR": os.environ["NST_CACHE_DIR"]}}
            if "NST_CACHE_DIR" in os.environ
            else None,
        )
    except Exception as exc:  # Ray raises many kinds for an unusable cluster
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NSTError(f"cannot start or reach the Ray cluster {address or ''}: {first}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's minutes of reconnecting, when nothing listens at host:port."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise NSTError(f"cannot reach the Ray cluster {address}: expected HOST:PORT, e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise NSTError(f"cannot reach the Ray cluster {address}: {exc.strerror or exc}") from None


def task_resources(ray) -> dict:
    """One GPU per task where the cluster has GPUs, one CPU otherwise."""
    return {"num_gpus": 1} if ray.cluster_resources().get("GPU", 0) >= 1 else {"num_cpus": 1}


@dataclass(frozen=True)
class Report:
    """What a task tells the driver: it started somewhere, or how far it is."""

    key: int
    fraction: float = 0.0
    text: str = ""
    started_on: str = ""  # "host (pid N)"


def _progress_hub(ray):
    @ray.remote(num_cpus=0)
    class ProgressHub:
        """Latest report per task; the driver drains it every POLL_SECONDS."""

        def __init__(self) -> None:
            self.reports: list[Report] = []

        def report(self, report: Report) -> None:
            self.reports.append(report)

        def drain(self) -> list[Report]:
            reports, self.reports = self.reports, []
            return reports

    return ProgressHub.remote()


def _where() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


def _match_local_threads() -> None:
    """Ray sets OMP_NUM_THREADS=1 in workers; torch then reduces in another order than a local run would."""
    import torch

    if torch.get_num_threads() != physical_cores():
        torch.set_num_threads(physical_cores())


def _photo_task(key, name, data, styles, options, fmt, graphs_dir, hub):
    """One photo on a worker: returns ("ok", Encoded) or ("error", message). Worker deaths are Ray's to retry.

    The photo travels as its file's bytes (a worker on another machine cannot read the driver's
    disk) and is read back from a file of the same name, so decoding, and every message about a
    broken file, is the local batch's.
    """
    import tempfile
    from pathlib import Path

    _match_local_threads()
    hub.report.remote(Report(key, started_on=_where()))
    last = [0.0]

    def progress(event) -> None:
        now = time.monotonic()
        if event.kind == "progress" and (now - last[0] > 0.5 or event.fraction >= 1.0):
            last[0] = now
            hub.report.remote(Report(key, event.fraction, event.message))

    with tempfile.TemporaryDirectory(prefix="nst-ray-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        try:
            return "ok", stylize_job(str(path), styles, options, fmt, progress=progress, graphs_dir=graphs_dir)
        except Exception as exc:  # this photo's own failure: reported, never retried
            return "error", describe_failure(exc).replace(str(path), name)


class _Dispatcher:
    """Submit tasks, collect them as they finish, show progress, cancel on Ctrl-C."""

    def __init__(self, ray, reporter: Reporter, cancel: threading.Event, labels: dict[int, str]):
        self.ray, self.reporter, self.cancel, self.labels = ray, reporter, cancel, labels
        self.hub = _progress_hub(ray)
        self.fractions = dict.fromkeys(labels, 0.0)
        self.every = float(os.environ.get("NST_PROGRESS_EVERY", "5"))
        self.last_line = -float("inf")

    def collect(self, refs: dict, on_result) -> None:
        """Call ``on_result(key, value, error)`` for each task as it completes."""
        ray = self.ray
        pending = {ref: key for key, ref in refs.items()}
        while pending:
            if self.cancel.is_set():
                for ref in pending:
                    ray.cancel(ref)
                self.reporter.finish_progress()
                self.reporter.note(f"cancelled {len(pending)} unfinished task(s) on the cluster")
                for key in pending.values():
                    on_result(key, None, "cancelled")
                return
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_SECONDS, fetch_local=False)
            self._show(ray.get(self.hub.drain.remote()), len(refs))
            for ref in ready:
                key = pending.pop(ref)
                try:
                    value, error = ray.get(ref), None
                except ray.exceptions.TaskCancelledError:
                    value, error = None, "cancelled"
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError, ray.exceptions.RayError) as exc:
                    value, error = None, f"its Ray worker failed {MAX_RETRIES + 1} times ({type(exc).__name__})"
                self.fractions[key] = 1.0
                on_result(key, value, error)

    def _show(self, reports: list[Report], total: int) -> None:
        for r in reports:
            if r.started_on:
                self.reporter.status(f"started {self.labels[r.key]} on {r.started_on}")
            else:
                self.fractions[r.key] = max(self.fractions.get(r.key, 0.0), r.fraction)
        now = time.monotonic()
        if reports and now - self.last_line >= self.every:
            self.last_line = now
            done = sum(self.fractions.values()) / max(1, total)
            self.reporter.status(f"{done * 100:3.0f}% of {total} task(s) on the cluster")


def run_batch(
    jobs: list[PhotoJob],
    styles,
    options,
    address: str,
    graphs_dir: str | None,
    reporter: Reporter,
    cancel: threading.Event,
) -> None:
    """The batch's photos as Ray tasks; the driver writes each result as it arrives."""
    ray = connect(address)
    remote = ray.remote(max_calls=0, max_retries=MAX_RETRIES, **task_resources(ray))(_photo_task)
    dispatcher = _Dispatcher(ray, reporter, cancel, {j.index: os.path.basename(j.input) for j in jobs})
    styles_ref = ray.put(list(styles))  # once, for every task
    formats = output_formats(jobs)
    by_key = {j.index: j for j in jobs}
    refs = {}
    for job in jobs:
        try:
            data = Path(job.input).read_bytes()
        except OSError as exc:
            reason = "not found" if isinstance(exc, FileNotFoundError) else exc.strerror or "unreadable"
            finish_job(job, None, NSTError(f"content file {reason}: {job.input}"), reporter)
            continue
        refs[job.index] = remote.remote(
            job.index, job.input, data, styles_ref, options, formats[job.index], graphs_dir, dispatcher.hub
        )

    def on_result(key: int, value, error: str | None) -> None:
        job = by_key[key]
        if error == "cancelled":
            job.status = "cancelled"
        elif error is not None:
            finish_job(job, None, NSTError(error), reporter)
        elif value[0] == "error":
            finish_job(job, None, NSTError(value[1]), reporter)
        else:
            encoded: Encoded = value[1]
            finish_job(job, encoded, None, reporter)
            reporter.status(f"wrote {job.output} ({encoded.seconds:.1f} s)")

    try:
        dispatcher.collect(refs, on_result)
    finally:
        ray.shutdown()  # a local instance this driver started goes with it (entry() skips atexit)


def shot_starts(sources) -> list[int]:
    """Indices where a shot begins: frame 0, and every frame its predecessor hardly explains."""
    return [0] + [t for t in range(1, len(sources)) if is_shot_cut(motion(sources[t - 1], sources[t]))]


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` of one shot, stylized after ``warmup`` frames before ``start`` whose results are dropped.

    A segment that does not begin its shot cannot wait for the previous segment's last frame, so
    it begins ``warmup`` frames early, from a still, and by ``start`` it has settled into the
    shot's temporal chain; what is left is the seam cost measured in docs/benchmarks.md.
    """

    key: int
    start: int
    end: int
    warmup: int

    @property
    def first(self) -> int:
        return self.start - self.warmup


def plan_segments(count: int, starts: list[int], length: int, overlap: int) -> list[Segment]:
    """Shots split into segments of at most ``length`` frames; each but a shot's first begins ``overlap`` early."""
    if length < 1 or overlap < 0:
        raise NSTError(f"segment must be at least 1 and overlap at least 0, got {length} and {overlap}")
    bounds = [*starts, count]
    segments: list[Segment] = []
    for shot_start, shot_end in itertools.pairwise(bounds):
        for start in range(shot_start, shot_end, length):
            warmup = min(overlap, start - shot_start)
            segments.append(Segment(len(segments), start, min(start + length, shot_end), warmup))
    return segments


def _segment_task(segment, frames, styles, options, frame_options, graphs_dir, hub):
    """One segment on a worker: [(frame index, PNG bytes of the work frame)] for its own frames, or ("error", msg)."""
    from PIL import Image

    from ..engine.animation import stylize_frames

    _match_local_threads()
    hub.report.remote(Report(segment.key, started_on=_where()))
    total = len(frames)

    def progress(event) -> None:
        inner = event.event
        if inner.kind == "progress" and (inner.step == inner.steps or inner.step % 10 == 0):
            fraction = (event.frame - segment.first + inner.fraction) / total
            hub.report.remote(Report(segment.key, fraction, f"frame {event.frame + 1}"))

    out = []
    try:
        for done in stylize_frames(
            frames, styles, options, temporal_weight=frame_options.temporal_weight,
            frame_steps=frame_options.frame_steps, start=segment.first,
            progress=progress, graphs_dir=graphs_dir,
        ):  # fmt: skip
            if done.index >= segment.start:
                out.append((done.index, encode_image(Image.fromarray(to_u8(done.work), "RGB"), "PNG")[0]))
    except Exception as exc:
        return "error", describe_failure(exc)
    return "ok", out


def run_video(
    clip,
    styles,
    options,
    work: Path,
    done: int,
    settings: VideoSettings,
    reporter: Reporter,
    cancel: threading.Event,
) -> int:
    """A video's segments as Ray tasks; frames land in the work folder as segments finish."""
    assert settings.ray is not None
    ray = connect(settings.ray)
    frames = list(clip.frames())
    if not frames:
        raise NSTError(f"input has no frames: {clip.path}")
    height, width = compute_size(clip.height, clip.width, options.size)
    sources = [resize_array(f.astype("float32") / 255.0, height, width) for f in frames]
    starts = shot_starts(sources)
    segments = [s for s in plan_segments(len(frames), starts, settings.segment, settings.overlap) if s.end > done]
    reporter.status(f"{len(frames)} frames, {len(starts)} shot(s), {len(segments)} task(s) on the cluster")
    remote = ray.remote(max_calls=0, max_retries=MAX_RETRIES, **task_resources(ray))(_segment_task)
    dispatcher = _Dispatcher(ray, reporter, cancel, {s.key: f"frames {s.start + 1}–{s.end}" for s in segments})
    styles_ref = ray.put(list(styles))
    refs = {
        s.key: remote.remote(
            s, frames[s.first : s.end], styles_ref, options, settings.frames,
            settings.graphs_dir, dispatcher.hub,
        )
        for s in segments
    }  # fmt: skip
    failures: list[str] = []

    def on_result(key: int, value, error: str | None) -> None:
        if error == "cancelled":
            return
        if error is None and value[0] == "error":
            error = value[1]
        if error is not None:
            failures.append(f"{dispatcher.labels[key]}: {error}")
            cancel.set()  # later frames of a video cannot do without these
            return
        for index, data in value[1]:
            write_atomically(data, work / WORK_FRAME.format(index + 1))

    try:
        dispatcher.collect(refs, on_result)
    finally:
        ray.shutdown()
    if failures:
        raise NSTError(failures[0])
    return count_done(work)
