"""What a job tells the person running it, and running work off the waiting thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Reporter(Protocol):
    """A front end's presenter, as jobs see it (the CLI's ``Presenter`` is one)."""

    def event(self, event: object) -> None:
        """An engine event (Status, Note, Progress, a FrameEvent …) of the run in progress."""

    def status(self, message: str) -> None:
        """A line about the job itself (which photo, which task started where)."""

    def note(self, message: str) -> None:
        """Something about the input the user should know."""

    def error(self, message: str) -> None:
        """One failed item, in one line; the job goes on."""

    def finish_progress(self) -> None:
        """The run in progress is over: close its progress display."""


def in_thread(work: Callable[[], T], name: str = "nst-stylize") -> T:
    """``work()`` in a worker thread while this one only waits, so signal handlers run at once;
    its result, or its exception raised here."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
