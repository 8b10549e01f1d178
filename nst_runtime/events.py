"""The small records ``stylize()`` reports through its ``progress`` callback.

Every front end (CLI progress bar, worker JSON lines, GIMP progress bar) only presents these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Status:
    """A stage the run entered, worth telling the user (loading, exporting graphs, …)."""

    message: str
    kind: str = "status"


@dataclass(frozen=True)
class Note:
    """Something about the input the user should know (first frame of an animation, …)."""

    message: str
    kind: str = "note"


@dataclass(frozen=True)
class Progress:
    """One optimisation step: where it is, the objective, and the time left."""

    scale: int  # 1-based
    scales: int
    step: int  # 1-based, within the scale
    steps: int
    loss: float
    fraction: float  # of the whole job's work, 0..1
    eta_s: float
    elapsed_s: float
    height: int
    width: int
    phase: str = "optimise"  # or "detail": the scale's opening pass on shallow layers (loss then NaN)
    kind: str = "progress"

    @property
    def message(self) -> str:
        detail = " (detail pass)" if self.phase == "detail" else ""
        return f"scale {self.scale}/{self.scales}, step {self.step}/{self.steps}{detail}"

    def to_json(self) -> dict:
        data = asdict(self)
        data["message"] = self.message
        return data


@dataclass(frozen=True, eq=False)
class Preview:
    """The best image so far at the current scale (float RGB [h, w, 3] in [0, 1], colour handling
    applied), sent at most every ``preview_interval`` seconds when a front end asks for it."""

    rgb: np.ndarray
    scale: int
    scales: int
    step: int
    steps: int
    kind: str = "preview"

    @property
    def message(self) -> str:
        return f"preview at scale {self.scale}/{self.scales}, step {self.step}/{self.steps}"


Event = Status | Note | Progress | Preview
