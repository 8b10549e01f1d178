"""What every ``nst`` command shares: one-line usage errors, the run options' flags, Ctrl-C handling,
and the presenter that turns engine events into a progress bar or log lines."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time

from ..errors import EXIT_USAGE
from ..options import Options, make_options, option_fields, option_names
from ..units import format_clock


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error, and --help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_numbers(text: str) -> tuple[float, ...]:
    """'0.7,0.3' → (0.7, 0.3)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def parse_ints(text: str) -> tuple[int, ...]:
    """'10,20' → (10, 20); '10' → (10,)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or comma-separated integers, got {text!r}") from None


def parse_files(text: str) -> tuple[str | None, ...]:
    """Comma-separated file names; an empty entry (``a.png,,c.png``) is None."""
    return tuple(part.strip() or None for part in text.split(","))


def parse_number(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_int(text: str) -> int:
    """An integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


#: How a command line spells each kind of option (``Option.kind``).
PARSERS = {
    "int": parse_int, "number": parse_number, "ints": parse_ints, "numbers": parse_numbers, "text": str, "image": str,
}  # fmt: skip


def add_options(p: argparse.ArgumentParser, table: type = Options) -> None:
    """A flag for every option of ``table`` the command line offers: name, default, parsing,
    choices and help all come from the table (``nst_runtime.options``)."""
    for f, spec in option_fields(table, "cli"):
        kwargs: dict[str, object] = {"default": f.default, "help": spec.help, "metavar": spec.metavar}
        if spec.kind == "choice":
            kwargs["choices"] = spec.choices
        else:
            kwargs["type"] = PARSERS[spec.kind]
        p.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a run (the table's), and the flags of every command that runs one."""
    add_options(p)
    p.add_argument("--graphs", metavar="DIR", help="use the graphs exported to DIR by nst-export --out DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only errors")


def add_ray_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--ray [ADDRESS]`` for nst batch and nst video (Ray itself is imported only when it is given)."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help=f"run {what} as tasks on a Ray cluster (pip install 'nst[ray]'); without ADDRESS: "
        "RAY_ADDRESS, a local 'ray start', or a new local instance",
    )


def options_from_args(args: argparse.Namespace) -> Options:
    """An ``Options`` from parsed arguments (raises NSTError for nonsense values)."""
    return make_options(**{name: getattr(args, name) for name in option_names("cli")})


class cancel_on_signals:
    """Within the block, SIGINT and SIGTERM set ``cancel`` instead of raising."""

    def __init__(self, cancel: threading.Event):
        self.cancel = cancel
        self.previous: dict[int, object] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, lambda *_: self.cancel.set())

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


class Presenter:
    """Presents engine events on stderr: a progress bar on a terminal, a line per scale otherwise."""

    def __init__(self, prog: str, quiet: bool):
        self.prog = prog
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.scale = 0
        self.last_line = 0.0
        # Without a terminal, one progress line per scale and then every few seconds (0: every step).
        self.every = float(os.environ.get("NST_PROGRESS_EVERY", "5"))

    def error(self, message: str) -> None:
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            self._write(f"{self.prog}: note: {message}")

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def always(self, message: str) -> None:
        """A line under the program's name that even --quiet prints (a batch's summary)."""
        print(f"{self.prog}: {message}", file=sys.stderr, flush=True)

    def status(self, message: str) -> None:
        """A line about the job under the program's name ("nst batch: [2/5] photo.jpg")."""
        self.info(f"{self.prog}: {message}")

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def event(self, event) -> None:
        if self.quiet:
            return
        if event.kind == "progress":
            self._progress(event)
        elif event.kind == "note":
            self.note(event.message)
        else:
            self._write(f"{self.prog}: {event.message}")

    def _progress(self, e, prefix: str = "") -> None:
        eta = format_clock(e.eta_s)
        loss = "shallow layers" if e.phase == "detail" else f"loss {e.loss:.4g}" if math.isfinite(e.loss) else "loss ?"
        text = f"{prefix}{e.message} ({e.width}×{e.height}), {loss}, ETA {eta}"
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=1000,
                    file=sys.stderr,
                    leave=False,
                    dynamic_ncols=True,
                    bar_format="{percentage:3.0f}%|{bar}| {desc}",
                )
            self.bar.set_description_str(text, refresh=False)
            self.bar.update(round(e.fraction * 1000) - self.bar.n)
            return
        now = time.monotonic()
        if e.scale != self.scale or e.step == e.steps or now - self.last_line >= self.every:
            self.scale, self.last_line = e.scale, now
            print(f"{self.prog}: {e.fraction * 100:3.0f}% {text}", file=sys.stderr, flush=True)

    def finish_progress(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
