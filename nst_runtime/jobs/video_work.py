"""A video job's settings and its work folder: finished frames as numbered PNGs at the computation
size, and the record of what decides them, so an interrupted job resumes exactly where it was."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import NSTError
from ..imaging.frameio import Clip
from ..imaging.images import save_image, to_u8, write_atomically
from ..imaging.tensors import resize_array
from ..options import FrameOptions

WORK_SUFFIX = ".nst-work"
JOB_FILE = "job.json"
WORK_FRAME = "frame_{:06d}.png"


@dataclass(frozen=True)
class VideoSettings:
    """How the frames are stylized besides the engine's options."""

    frames: FrameOptions = field(
        default_factory=FrameOptions
    )  # the temporal weight, the steps of a frame after a shot's first
    graphs_dir: str | None = None
    ray: str | None = None  # a Ray cluster's address ("": the default one); None: here
    segment: int = 48  # with ray: frames per task within a shot
    overlap: int = 4  # with ray: frames a segment re-stylizes before its own

    def check(self) -> VideoSettings:
        self.frames.validate()
        return self


def job_record(values: dict, source: str, styles: Sequence[str]) -> dict:
    """What decides the frames, from a command line's values: a resumed run must match it exactly."""
    skip = {"output", "work", "resume", "quiet", "ray", "graphs"}
    record = {k: v for k, v in sorted(values.items()) if k not in skip}
    record["input"] = str(Path(source).resolve())
    record["styles"] = [str(Path(s).resolve()) for s in styles]
    return json.loads(json.dumps(record))  # tuples → lists, as they come back from the file


def open_work(work: Path, record: dict, resume: bool) -> int:
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
    save_image(image, work / WORK_FRAME.format(index + 1))


def finished_frames(work: Path, count: int, clip: Clip):
    """The work frames at the clip's own size, first to last."""
    for index in range(count):
        rgb = read_work_frame(work, index)
        if rgb.shape[:2] != (clip.height, clip.width):
            rgb = resize_array(rgb, clip.height, clip.width)
        yield to_u8(rgb)
