"""Worker protocol 2 (docs/worker-protocol.md): previews, an open stdin with finish and cancel,
versions, and protocol 1 requests as before. Real processes, real weights."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_image
from nst_runtime.errors import NSTError
from nst_runtime.worker import protocol
from nst_runtime.worker import stylize as worker_stylize

WORKER = [sys.executable, "-m", "nst_runtime.worker"]


@pytest.fixture(scope="module")
def photo_rgba() -> dict:
    """The photo at 96×72 with a transparent corner, as a protocol IMAGE."""
    with Image.open(shared_image("golden_gate.jpg")) as im:
        rgba = np.asarray(im.convert("RGBA").resize((96, 72)), dtype=np.uint8).copy()
    rgba[:10, :10, 3] = 0
    return {"rgba": base64.b64encode(rgba.tobytes()).decode(), "width": 96, "height": 72}


@pytest.fixture(scope="module")
def painting() -> str:
    return str(shared_image("starry_night.jpg"))


class Session:
    """A worker with stdin left open, its stdout lines collected as they come."""

    def __init__(self, request: dict | str):
        self.proc = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: list[dict] = []
        self.arrived = threading.Condition()
        self.proc.stdin.write((request if isinstance(request, str) else json.dumps(request)) + "\n")
        self.proc.stdin.flush()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.arrived:
                self.lines.append(json.loads(line))
                self.arrived.notify_all()

    def wait_for(self, predicate, timeout: float = 300) -> dict:
        with self.arrived:
            assert self.arrived.wait_for(lambda: any(predicate(m) for m in self.lines), timeout), self.lines[-3:]
            return next(m for m in self.lines if predicate(m))

    def send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def end(self, timeout: float = 60) -> tuple[int, dict]:
        code = self.proc.wait(timeout)
        time.sleep(0.05)
        return code, self.lines[-1]


def iterating(msg: dict) -> bool:
    return msg.get("event") == "progress"


def long_request(content: dict, painting: str, **extra) -> dict:
    return {"protocol": 2, "content": content, "styles": [{"path": painting}], "options": {"steps": 2000}, **extra}


def test_previews_come_when_asked_and_finish_returns_the_best_image_at_full_size(photo_rgba, painting) -> None:
    session = Session(long_request(photo_rgba, painting, preview={"max_side": 48, "interval_s": 1.0}))
    preview = session.wait_for(lambda m: m.get("event") == "preview")
    assert max(preview["width"], preview["height"]) <= 48
    assert len(base64.b64decode(preview["rgba"])) == preview["width"] * preview["height"] * 4
    assert {"scale", "scales", "step", "steps"} <= set(preview)
    session.wait_for(lambda m: iterating(m) and m["step"] >= 10)  # past the start image
    session.send({"command": "finish"})
    asked = time.monotonic()
    code, last = session.end()
    assert time.monotonic() - asked < 10, "finish should end the run within one evaluation"
    assert code == 0, last
    done = last["done"]
    assert done["finished_early"] is True
    assert (done["width"], done["height"]) == (96, 72)
    rgba = np.frombuffer(base64.b64decode(done["rgba"]), np.uint8).reshape(72, 96, 4)
    source = np.frombuffer(base64.b64decode(photo_rgba["rgba"]), np.uint8).reshape(72, 96, 4)
    assert np.array_equal(rgba[..., 3], source[..., 3]), "alpha is passed through"
    assert np.abs(rgba[..., :3].astype(int) - source[..., :3]).mean() > 1, "the best image so far is not the photo"


def test_full_size_continues_the_image_so_far_to_the_content_s_own_size(photo_rgba, painting) -> None:
    """The live dialog's Full size: the run at its size ends at once, and its best image is
    continued by the scales above that size, up to the content's own (96×72 from 48 px)."""
    request = long_request(photo_rgba, painting, options={"size": 48, "steps": 2000})
    session = Session(request)
    session.wait_for(lambda m: iterating(m) and m["step"] >= 5)
    session.send({"command": "full_size"})
    status = session.wait_for(lambda m: m.get("event") == "status" and "full size" in m["message"])
    continued = session.lines.index(status)
    session.wait_for(lambda m: iterating(m) and m["width"] == 96 and m["step"] >= 3)
    session.send({"command": "finish"})
    code, last = session.end()
    assert code == 0, last
    done = last["done"]
    assert done["continued"] is True and (done["width"], done["height"]) == (96, 72)
    sizes = {(m["width"], m["height"]) for m in session.lines[continued:] if iterating(m)}
    assert sizes == {(96, 72)}, "only the scales above the image so far run"


def test_no_previews_unless_asked(photo_rgba, painting) -> None:
    session = Session({**long_request(photo_rgba, painting), "options": {"steps": 3, "size": 48}})
    code, last = session.end(300)
    assert code == 0 and last["done"]["finished_early"] is False
    assert last["done"]["evaluations"] >= 3, "done counts the run's objective evaluations"
    assert not [m for m in session.lines if m.get("event") == "preview"]


@pytest.mark.parametrize("how", ["command", "eof"])
def test_cancel_command_and_a_closed_stdin_stop_within_a_second(photo_rgba, painting, how) -> None:
    session = Session(long_request(photo_rgba, painting))
    session.wait_for(iterating)
    if how == "command":
        session.send({"command": "cancel"})
    else:
        session.proc.stdin.close()  # protocol 2: the front end is gone
    started = time.monotonic()
    code, last = session.end(10)
    assert time.monotonic() - started < 1.5
    assert code == 130 and last == {"error": "cancelled"}


def test_unknown_commands_are_ignored(photo_rgba, painting) -> None:
    session = Session({**long_request(photo_rgba, painting), "options": {"steps": 2, "size": 48}})
    session.send({"command": "dance"})
    session.send({"not": "a command"})
    code, last = session.end(300)
    assert code == 0 and "done" in last


def test_a_protocol_1_request_spread_over_lines_with_stdin_closed_still_works(photo_rgba, painting) -> None:
    request = {"content": photo_rgba, "styles": [{"path": painting}], "options": {"steps": 2, "size": 48}}
    proc = subprocess.run(WORKER, input=json.dumps(request, indent=2), capture_output=True, text=True, timeout=300)
    last = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0, last
    assert (last["done"]["width"], last["done"]["height"]) == (96, 72)


@pytest.mark.parametrize(
    ("request_text", "words"),
    [
        ('{"protocol": 3, "content": {"path": "x"}, "styles": []}', "unsupported protocol 3"),
        ('{"protocol": "2", "content": {"path": "x"}, "styles": []}', "unsupported protocol '2'"),
        ("not json at all", "not valid JSON"),
    ],
)
def test_bad_requests_fail_at_once_even_with_stdin_open(request_text, words) -> None:
    session = Session(request_text)
    code, last = session.end(60)
    assert code == 1 and words in last["error"], last


@pytest.mark.parametrize(
    ("preview", "words"),
    [
        ({"max_side": 4096}, "max_side"),
        ({"interval_s": 0.1}, "interval_s"),
        ({"every": 2}, "'preview' must be an object"),
        ("often", "'preview' must be an object"),
    ],
)
def test_bad_preview_specs_are_one_line_errors(photo_rgba, painting, preview, words) -> None:
    with pytest.raises(NSTError, match=words):
        worker_stylize.parse_job({**long_request(photo_rgba, painting), "preview": preview})


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_previews_are_sent_at_most_once_per_interval_and_downscaled(monkeypatch) -> None:
    from nst_runtime.events import Preview

    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)
    sent: list[dict] = []
    progress = worker_stylize.progress_sender(sent.append, protocol.PreviewSpec(max_side=64, interval_s=1.0))
    rgb = np.random.default_rng(0).random((300, 400, 3), dtype=np.float32)
    for t in (0.0, 0.3, 0.9, 1.0, 1.5, 2.2):
        clock.now = 100.0 + t
        progress(Preview(rgb, 1, 2, 3, 4))
    assert len(sent) == 3  # at 0.0, 1.0 and 2.2
    assert (sent[0]["width"], sent[0]["height"]) == (64, 48)


def test_read_request_takes_the_first_object_and_leaves_commands(tmp_path: Path) -> None:
    import io

    stream = io.BytesIO(b'{"protocol": 2, "a": {"b": 1}}\n{"command": "finish"}\n')
    assert json.loads(protocol.read_request(stream)) == {"protocol": 2, "a": {"b": 1}}
    assert json.loads(stream.readline()) == {"command": "finish"}
    spread = io.BytesIO(b'{\n  "a": {\n    "b": 1\n  }\n}')
    assert json.loads(protocol.read_request(spread)) == {"a": {"b": 1}}


def test_a_detail_step_goes_out_with_its_phase_and_a_null_loss() -> None:
    from nst_runtime.events import Progress

    event = Progress(2, 3, 5, 120, float("nan"), 0.4, float("nan"), 3.0, 192, 256, phase="detail")
    line = json.dumps(protocol.event_json(event), allow_nan=False)  # strict JSON: no NaN anywhere
    data = json.loads(line)
    assert data["phase"] == "detail" and data["loss"] is None and data["eta_s"] is None
    assert data["event"] == "progress" and data["step"] == 5 and data["steps"] == 120
