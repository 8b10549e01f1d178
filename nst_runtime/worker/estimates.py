"""The worker's estimate session: a request with ``"estimate"`` instead of ``"content"`` is answered,
then one reply per ``{"estimate": …}`` line until stdin ends (docs/worker-protocol.md). The GIMP
dialog keeps one open to price every change of its fields."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine.timing import Speed, estimate, speed_for, speed_key
from ..errors import Cancelled, NSTError
from ..events import Status
from .protocol import Commands, event_json, parse_options


@dataclass
class Query:
    """One question: a content size, the number of styles and the run's options."""

    width: int
    height: int
    styles: int = 1
    options: dict = field(default_factory=dict)
    id: object = None


def parse_query(spec: object) -> Query:
    if not isinstance(spec, dict):
        raise NSTError("'estimate' must be an object with width, height, styles and options")
    width, height, styles = spec.get("width"), spec.get("height"), spec.get("styles", 1)
    for name, value in (("width", width), ("height", height), ("styles", styles)):
        if type(value) is not int or value < 1:
            raise NSTError(f"estimate {name} must be a positive integer, got {value!r}")
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise NSTError("estimate options must be an object")
    return Query(width, height, styles, options, spec.get("id"))


def answer(spec: object, speed_of: Callable[[object], Speed]) -> dict:
    """The reply line to one query: the estimate, or the query's own one-line error."""
    query_id = spec.get("id") if isinstance(spec, dict) else None
    try:
        query = parse_query(spec)
        options = parse_options(query.options, query.styles)
        result = estimate(query.height, query.width, options, query.styles, speed_of(options))
        return {"estimate": {"id": query_id, **result.to_json()}}
    except NSTError as exc:
        return {"estimate": {"id": query_id, "error": str(exc)}}


def serve(request: dict, send: Callable[[dict], None], stream, cancel: threading.Event) -> dict:
    """Answer the request's query, then one reply per ``{"estimate": …}`` line until stdin ends."""
    queries: queue.Queue[object] = queue.Queue()
    commands = Commands(stream, threading.Event(), cancel, on_eof=lambda: queries.put(None))
    commands.extra = lambda msg: queries.put(msg.get("estimate"))
    commands.start()
    speeds: dict[str, Speed] = {}

    def speed_of(options) -> Speed:
        key = speed_key(options)
        if key not in speeds:
            speeds[key] = speed_for(options, log=lambda m: send(event_json(Status(m))), cancel=cancel)
        return speeds[key]

    count = 0
    spec = request.get("estimate")
    while spec is not None and not cancel.is_set():
        send(answer(spec, speed_of))
        count += 1
        spec = queries.get()
    if cancel.is_set():
        raise Cancelled("cancelled")
    return {"estimates": count}
