"""Running the batch driver (batch_driver.py) in real GIMP 3 through tools/gimp3-run.sh."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
IMAGES = REPO.parent / "shared" / "images"
BATCH_DRIVER = Path(__file__).with_name("batch_driver.py")
STUB_PYTHON = Path(__file__).with_name("stub-python")
GIMP_BATCH = ["gimp-console-3.0", "-i", "-d", "-f", "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"]
GIMP_TIMEOUT_S = 900  # the first real-worker run exports the VGG graphs (about 25 s on 2 cores)


@dataclass
class BatchRun:
    """What one gimp-console call left: its exit code and logs, and the driver's result."""

    returncode: int
    log: str
    result: dict = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Gimp3:
    """Runs the batch driver in GIMP 3 with one GIMP config dir for the session."""

    config_dir: Path
    python: str
    cache_dir: Path
    worker_needle: str  # how the worker process shows in `ps`

    def env(self, extra: dict[str, str] | None = None, binds: list[Path] = ()) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "GIMP3_DIRECTORY": str(self.config_dir),
                "NST_CACHE_DIR": str(self.cache_dir),
                "NST_GIMP3_PYTHON": self.python,
                "NST_GIMP3_BINDS": ":".join(str(p) for p in [self.config_dir, *binds]),
                "NST_GIMP3_RO_BINDS": str(IMAGES),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.pop("NST_PYTHON", None)  # the installed runtime.json names the Python unless a test says otherwise
        env.update(extra or {})
        return env

    def start(self, spec: dict, work: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start gimp-console on the batch driver (for tests that act while it runs)."""
        spec = {**spec, "out_dir": str(work), "result": str(work / "result.json")}
        (work / "spec.json").write_text(json.dumps(spec))
        env = self.env({"NST_BATCH_SPEC": str(work / "spec.json"), **(extra_env or {})}, [work])
        with BATCH_DRIVER.open("rb") as batch:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                [str(TOOLS / "gimp3-run.sh"), *GIMP_BATCH],
                stdin=batch,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def finish(self, proc: subprocess.Popen, work: Path, started: float) -> BatchRun:
        out, _ = proc.communicate(timeout=GIMP_TIMEOUT_S)
        log = out.decode("utf-8", "replace")
        (work / "gimp.log").write_text(log)
        result_file = work / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        run = BatchRun(proc.returncode, log, result, time.monotonic() - started)
        assert run.returncode == 0, f"gimp-console exited {run.returncode}:\n{log[-4000:]}"
        assert "exception" not in result, result.get("exception")
        assert result, f"the batch driver wrote no result:\n{log[-4000:]}"
        return run

    def batch(self, spec: dict, work: Path, extra_env: dict[str, str] | None = None) -> BatchRun:
        """Run the batch driver on spec to the end."""
        started = time.monotonic()
        return self.finish(self.start(spec, work, extra_env), work, started)
