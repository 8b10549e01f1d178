"""``stylize_frames()``: an animation stylized frame by frame without flicker (Ruder et al. 2016).

The first frame of each shot is stylized as a still. Every later frame starts from the previous
stylized frame warped into it by optical flow and is kept close to it by the temporal term
(weighted by the flow's consistency), at the full size only and with fewer steps: most of the
picture is already there. A frame the previous one hardly explains (mean consistency near 0)
starts a new shot. Everything here is a thin loop over ``engine.run``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ..events import Event
from ..imaging.images import load_image, to_pil
from ..imaging.motion import Motion, is_shot_cut, motion
from ..imaging.tensors import resize_array
from ..objective.temporal import TemporalTerm
from ..options import DEFAULT_TEMPORAL_WEIGHT, FRAME_STEPS, FrameOptions, Options, compute_size, make_options
from .runner import run


@dataclass(frozen=True)
class FrameEvent:
    """An engine event of one frame: ``frame`` is 0-based, ``frames`` the count where known."""

    frame: int
    frames: int | None
    event: Event
    kind: str = "frame"


@dataclass(frozen=True)
class Stylized:
    """One finished frame."""

    index: int
    image: Image.Image  # the frame's own size (RGBA where the frame has alpha)
    work: np.ndarray  # float32 RGB at the computation size: what the next frame is warped from
    source: np.ndarray  # the input frame at the computation size (float32 RGB)
    shot_start: bool  # stylized as a still (first frame, or after a cut)
    consistency: float  # mean c with the frame before (nan for the first)
    loss: float
    parts: dict[str, float]
    seconds: float


def stylize_frames(
    frames: Iterable[object],
    styles: object | Sequence[object],
    options: Options | None = None,
    *,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_steps: int = FRAME_STEPS,
    count: int | None = None,
    previous: Stylized | None = None,
    start: int = 0,
    progress: Callable[[FrameEvent], None] | None = None,
    cancel: threading.Event | None = None,
    graphs_dir: str | None = None,
) -> Iterator[Stylized]:
    """Yield each frame stylized, in order, as soon as it is done.

    ``frames`` are paths, PIL images or arrays of one size; ``options`` as for ``engine.run``
    (``options.size`` caps the computation size). ``temporal_weight`` is in user terms: 1 is the
    measured balance, 0 only initialises from the warped previous frame. ``previous`` (with
    ``start``, the index of the first of ``frames``) continues an interrupted run.
    """
    options = options or make_options()
    style_list = list(styles) if isinstance(styles, list | tuple) else [styles]
    options.validate(len(style_list))
    style_list = [load_image(s, "style") for s in style_list]  # decoded once, not once per frame
    FrameOptions(temporal_weight, frame_steps).validate()
    emit = progress or (lambda _e: None)
    for index, frame in enumerate(frames, start=start):
        data = load_image(frame, f"frame {index + 1}")
        height, width = compute_size(data.height, data.width, options.size)
        source = resize_array(data.rgb, height, width)

        def forward(event: Event, index: int = index) -> None:
            emit(FrameEvent(index, count, event))

        m: Motion | None = None
        if previous is not None and previous.source.shape == source.shape:
            m = motion(previous.source, source)
        if m is None or is_shot_cut(m):
            frame_options, terms = replace(options, size=None), ()
        else:
            warped = m.warp(previous.work)
            frame_options = replace(options, size=None, init_image=warped, steps=(frame_steps,), scales=1)
            terms = (TemporalTerm(warped, m.weights, temporal_weight),)
        result = run(
            source, style_list, frame_options, progress=forward, cancel=cancel, pixel_terms=terms,
            graphs_dir=graphs_dir,
        )  # fmt: skip
        work = np.asarray(result.image.convert("RGB"), dtype=np.float32) / 255.0
        full = work if (data.height, data.width) == (height, width) else resize_array(work, data.height, data.width)
        image = to_pil(full, data.alpha)  # a frame's transparency (a GIMP layer's) passes through
        done = Stylized(
            index,
            image,
            work,
            source,
            not terms,
            m.mean_consistency if m is not None else float("nan"),
            result.loss,
            result.parts,
            result.seconds,
        )
        previous = done
        yield done
