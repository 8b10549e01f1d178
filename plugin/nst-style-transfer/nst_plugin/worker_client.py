"""One worker process and its JSON lines (docs/worker-protocol.md, protocol 2).

A writer thread feeds the request and later the commands (``finish``, ``cancel``) into the
worker's stdin, which stays open for the whole run; a second thread drains stderr into GIMP's
terminal. Whoever iterates :meth:`WorkerProcess.messages` reads stdout: the non-interactive run
on GIMP's main thread, the dialog in a reader thread that hands each line to the main loop.
No GIMP imports: this module never touches the PDB, so any thread may use it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO

from . import launch as launching
from .errors import Cancelled, PlugInError

PROTOCOL = 2
TERMINATE_GRACE_S = 1.5
STOP_COMMAND_GRACE_S = 0.5  # Stop: the cancel command, then SIGTERM, then SIGKILL: gone within a second
STOP_SIGNAL_GRACE_S = 0.35
EXIT_CANCELLED = 130  # the worker's exit code after a cancel


def log(message: str) -> None:
    """Plug-in stderr ends up on GIMP's terminal: the only place for diagnostics."""
    print(f"[nst-style-transfer] {message}", file=sys.stderr, flush=True)


def _parse(raw: bytes) -> dict | None:
    """One protocol line as a dict, or None for anything else (readers ignore the unknown)."""
    try:
        msg = json.loads(raw)
    except ValueError:
        log(f"worker printed a non-JSON line: {raw[:200]!r}")
        return None
    return msg if isinstance(msg, dict) else None


class WorkerProcess:
    """A started worker; ``request`` goes out at once (the worker reads its first line).

    ``stdin_open=False`` speaks protocol 1 instead: the request, then stdin closed (for workers
    that read their request to the end of stdin, as the frame worker does).
    """

    def __init__(self, launch: launching.Launch, request: dict, stdin_open: bool = True) -> None:
        self.launch = launch
        launching.check_can_start(launch.host)
        log("running " + " ".join(launch.argv))
        try:
            self.proc = launching.start(launch)
        except OSError as exc:
            if launch.host.flatpak:
                raise PlugInError(f"{launching.flatpak_permission_message()} ({launch.argv[0]}: {exc})") from exc
            raise PlugInError(f"{launching.RUNTIME_HINT} ({launch.argv[0]}: {exc.strerror})") from exc
        self.tail: collections.deque[str] = collections.deque(maxlen=30)
        self.final: dict | None = None
        self.stopping = False  # stop() was called: however it ends, it was a cancel
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._outbox.put(json.dumps({"protocol": PROTOCOL, **request} if stdin_open else request).encode() + b"\n")
        if not stdin_open:
            self._outbox.put(None)
        self._threads = [
            threading.Thread(target=self._write, args=(self.proc.stdin,), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, command: str) -> None:
        """Queue a command line (``finish``, ``cancel``); never blocks the caller."""
        self.send_json({"command": command})

    def send_json(self, obj: dict) -> None:
        """Queue one line (a command, an estimate query); never blocks the caller."""
        self._outbox.put(json.dumps(obj).encode() + b"\n")

    def _write(self, stream: IO[bytes]) -> None:
        """The request, then commands as they come; None (or a gone worker) closes stdin."""
        while (data := self._outbox.get()) is not None:
            try:
                stream.write(data)
                stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                break
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            stream.close()

    def _drain(self, stream: IO[bytes]) -> None:
        """Keep the worker's last stderr lines for error messages and echo them to GIMP's terminal."""
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            self.tail.append(line)
            print(f"[nst worker] {line}", file=sys.stderr, flush=True)

    def messages(self) -> Iterator[dict]:
        """The worker's protocol objects until its stdout closes; the final one is kept in ``final``."""
        iterating = False
        for raw in self.proc.stdout:
            msg = _parse(raw)
            if msg is None:
                continue
            if "done" in msg or "error" in msg:
                self.final = msg
            elif msg.get("event") in ("status", "note") or (msg.get("event") == "progress" and not iterating):
                log(f"worker {msg['event']}: {msg.get('message')}")  # stages go to GIMP's terminal too
                iterating = msg["event"] == "progress"
            yield msg

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """End the run at once: the cancel command, then SIGTERM, then SIGKILL (blocks up to ~1 s)."""
        self.stopping = True
        self.send("cancel")
        self._outbox.put(None)
        for grace, escalate in ((STOP_COMMAND_GRACE_S, self._signal), (STOP_SIGNAL_GRACE_S, self.proc.kill)):
            try:
                self.proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    escalate()
        self.proc.wait()

    def _signal(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # on Windows this is TerminateProcess

    def terminate(self) -> None:
        """SIGTERM (the worker stops within a second), then SIGKILL if it does not."""
        self._outbox.put(None)
        if self.proc.poll() is None:
            self._signal()
            try:
                self.proc.wait(TERMINATE_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(1.0)

    def outcome(self) -> dict:
        """After stdout closed: the "done" object, or Cancelled / PlugInError saying why not."""
        self._outbox.put(None)
        returncode = self.proc.wait()
        final = self.final
        if final is not None and "done" in final:
            return final["done"]
        if final is not None:
            message = str(final["error"])
            if message == "cancelled":
                raise Cancelled(message)
            raise PlugInError(message)
        if self.stopping or returncode in (-signal.SIGTERM, -signal.SIGINT, EXIT_CANCELLED):
            raise Cancelled("cancelled")  # stopped before it could say so
        self._threads[1].join(2.0)  # the last stderr lines name the reason
        raise PlugInError(self.failure_message(returncode))

    def failure_message(self, returncode: int) -> str:
        """Explain a worker that ended without its final line."""
        hint = launching.failure_hint("\n".join(self.tail), self.launch.host)
        if hint:
            return hint
        if returncode == -getattr(signal, "SIGKILL", 9):
            return "the style transfer worker was killed (out of memory?): try a smaller size"
        last = next((line for line in reversed(self.tail) if line.strip()), "no message")
        return f"the style transfer worker failed (exit code {returncode}): {last}"


def run_to_end(
    launch: launching.Launch, request: dict, on_event: Callable[[dict], None], stdin_open: bool = True
) -> dict:
    """Run one job on the calling thread; on_event gets each event line; returns the "done" object."""
    worker = WorkerProcess(launch, request, stdin_open)
    try:
        for msg in worker.messages():
            if "event" in msg:
                on_event(msg)
        return worker.outcome()
    finally:
        worker.terminate()
