"""Running the batch driver (batch_driver.py) in real GIMP 3 through tools/gimp3-run.sh."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from nst_runtime.cli import gimp_install

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
IMAGES = REPO.parent / "shared" / "images"
BATCH_DRIVER = Path(__file__).with_name("batch_driver.py")
STUB_PYTHON = Path(__file__).with_name("stub-python")
GIMP_VERSIONS = ("3.0", "3.2")  # Debian trixie's 3.0.4 and sid's 3.2.6 (tools/gimp3-common.sh)
BATCH_ARGS = ["-i", "-d", "-f", "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"]
GUI_DRIVER = Path(__file__).with_name("gui_driver.sh")
LIVE_DRIVER = Path(__file__).with_name("live_driver.py")
GIMP_TIMEOUT_S = 900  # the first real-worker run exports the VGG graphs (about 25 s on 2 cores)
LAST_VALUES = "plug-in-settings/GimpProcedureConfigRun-python-fu-nst-style-transfer.last"


def make_gimp_config(config_dir: Path, python: str) -> None:
    """A GIMP user folder with the plug-in installed by `nst install-gimp-plugin`."""
    gimp_install.install(config_dir, python, link=False)
    (config_dir / "interpreters").mkdir(parents=True, exist_ok=True)
    # `#!/usr/bin/env python3` must find the root's python3, which has gi (RECIPE pitfall 1)
    (config_dir / "interpreters" / "pygimp.interp").write_text(gimp_install.interp_text())
    # a fresh user folder looks like a first start after an update (no config-version): the Welcome
    # dialog would open beside the image window and could take the keyboard focus from it (a GUI
    # test's Ctrl+Z then goes nowhere). A config version above any 3.x stops that.
    (config_dir / "gimprc").write_text('(config-version "3.99.99")\n(show-welcome-dialog no)\n')


@dataclass
class BatchRun:
    """What one gimp-console call left: its exit code and logs, and the driver's result."""

    returncode: int
    log: str
    result: dict = field(default_factory=dict)
    seconds: float = 0.0


class Running:
    """A GIMP run in progress; its output is collected as it comes, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen, work: Path) -> None:
        self.proc, self.work, self.started = proc, work, time.monotonic()
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            with self.changed:
                self.lines.append(raw.decode("utf-8", "replace"))
                self.changed.notify_all()

    def wait_for_line(self, needle: str, timeout: float) -> bool:
        """Whether a line containing needle appeared within timeout seconds."""
        with self.changed:
            return self.changed.wait_for(lambda: any(needle in line for line in self.lines), timeout)

    def finish(self) -> BatchRun:
        """Wait for the end; check GIMP exited 0 and the driver wrote a result."""
        self.proc.wait(timeout=GIMP_TIMEOUT_S)
        self.reader.join(10)
        log = "".join(self.lines)
        (self.work / "gimp.log").write_text(log)
        result_file = self.work / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        run = BatchRun(self.proc.returncode, log, result, time.monotonic() - self.started)
        assert run.returncode == 0, f"gimp-console exited {run.returncode}:\n{log[-4000:]}"
        assert "exception" not in result, result.get("exception")
        assert result, f"the batch driver wrote no result:\n{log[-4000:]}"
        return run


@dataclass
class Gimp3:
    """Runs the batch driver in GIMP 3 with one GIMP config dir for the session."""

    config_dir: Path
    python: str
    cache_dir: Path
    worker_needle: str  # how the worker process shows in `ps`
    installed_python: str  # what runtime.json names: the Python, or the stub
    version: str = "3.0"  # which GIMP: "3.0" or "3.2" (NST_GIMP_VERSION of tools/gimp3-run.sh)

    def env(self, extra: dict[str, str | None] | None = None, binds: list[Path] = ()) -> dict[str, str]:
        """The environment of a GIMP run; an extra variable set to None is removed."""
        env = dict(os.environ)
        env.update(
            {
                "GIMP3_DIRECTORY": str(self.config_dir),
                "NST_GIMP_VERSION": self.version,
                "NST_CACHE_DIR": str(self.cache_dir),
                "NST_GIMP3_PYTHON": self.python,
                "NST_GIMP3_BINDS": ":".join(str(p) for p in [self.config_dir, *binds]),
                "NST_GIMP3_RO_BINDS": str(IMAGES),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.pop("NST_PYTHON", None)  # the installed runtime.json names the Python unless a test says otherwise
        env.update(extra or {})
        return {name: value for name, value in env.items() if value is not None}

    def start(self, spec: dict, work: Path, extra_env: dict[str, str | None] | None = None) -> Running:
        """Start gimp-console on the batch driver (for tests that act while it runs)."""
        spec = {**spec, "out_dir": str(work), "result": str(work / "result.json")}
        (work / "spec.json").write_text(json.dumps(spec))
        env = self.env({"NST_BATCH_SPEC": str(work / "spec.json"), **(extra_env or {})}, [work])
        if spec.get("live"):  # the live dialog under Xvfb, steps from spec["live"] (live_driver.py)
            command, stdin = ["python3", str(LIVE_DRIVER), str(work)], subprocess.DEVNULL
        elif spec.get("gui"):  # under Xvfb, driven by gui_driver.sh: "cancel" or "undo"
            env["NST_WORKER_NEEDLE"] = self.worker_needle
            command, stdin = ["sh", str(GUI_DRIVER), spec["gui"], str(work)], subprocess.DEVNULL
        else:
            command, stdin = [f"gimp-console-{self.version}", *BATCH_ARGS], BATCH_DRIVER.open("rb")
        try:
            proc = subprocess.Popen(
                [str(TOOLS / "gimp3-run.sh"), *command],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()  # the child has its own copy
        return Running(proc, work)

    def fresh(self, config_dir: Path, last_values: dict[str, str] | None = None) -> Gimp3:
        """This GIMP with its own config dir, optionally with the dialog's last-used values
        (an interactive run starts from those and ignores the caller's: RECIPE pitfall 8)."""
        make_gimp_config(config_dir, self.installed_python)
        if last_values:
            lines = "".join(f"({name} {value})\n" for name, value in last_values.items())
            (config_dir / LAST_VALUES).parent.mkdir(parents=True, exist_ok=True)
            (config_dir / LAST_VALUES).write_text(f"# settings\n\n{lines}\n# end of settings\n")
        return replace(self, config_dir=config_dir)

    def batch(self, spec: dict, work: Path, extra_env: dict[str, str | None] | None = None) -> BatchRun:
        """Run the batch driver on spec to the end."""
        return self.start(spec, work, extra_env).finish()
