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
from ..options import DEFAULT_SIZE, DEVICES, INITS, OPTIMIZERS, PRESERVE_COLORS, QUALITIES, WEIGHT_SOURCES
from ..units import format_clock


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error."""

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


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options shared by ``nst`` and ``nst demo``."""
    p.add_argument(
        "--size",
        type=parse_int,
        default=DEFAULT_SIZE,
        help="longest side of the computation in pixels (0: the content's own size); "
        "the result is scaled back to the content's size",
    )
    p.add_argument(
        "--quality",
        choices=QUALITIES,
        default="normal",
        help="how many coarse-to-fine scales and steps: draft is quick, high is thorough",
    )
    p.add_argument(
        "--steps",
        type=parse_ints,
        metavar="N[,N...]",
        help="steps per scale instead of --quality: one number for every scale, or one per "
        "scale from coarse to fine (their count sets the number of scales)",
    )
    p.add_argument(
        "--strength",
        type=parse_number,
        metavar="0..1",
        help="style strength in user terms (0.5 = the default balance); replaces --style-weight",
    )
    p.add_argument("--style-weight", type=parse_number, default=1.0, help="multiplier of the style loss")
    p.add_argument("--content-weight", type=parse_number, default=1.0, help="multiplier of the content loss")
    p.add_argument("--tv-weight", type=parse_number, default=0.0, help="total-variation smoothing (0: off; 1: gentle)")
    p.add_argument(
        "--style-blend",
        type=parse_numbers,
        metavar="W[,W...]",
        help="one weight per style image, e.g. 0.7,0.3 (default: equal)",
    )
    p.add_argument(
        "--style-scale",
        type=parse_number,
        default=1.0,
        help="the style image's size relative to the output (larger: bigger brush strokes)",
    )
    p.add_argument(
        "--preserve-color",
        choices=PRESERVE_COLORS,
        default="none",
        help="keep the content's colours: luminance (style on luminance only) or "
        "histogram (style colours matched to the content first)",
    )
    p.add_argument(
        "--init",
        default="content",
        metavar="content|noise|PATH",
        help="start from the content image, from seeded random noise, or from an image file",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs", help="L-BFGS (default) or Adam")
    p.add_argument("--seed", type=parse_int, default=0, help="random seed; a CPU run is reproducible bit for bit")
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where VGG runs: auto uses CUDA when onnxruntime and torch can really use it",
    )
    p.add_argument(
        "--weights",
        choices=WEIGHT_SOURCES,
        default="vgg19",
        help="VGG weights (see nst-export --help); vgg19 works offline",
    )
    p.add_argument("--pooling", choices=("max", "avg"), default="max", help="VGG pooling (avg: smoother)")
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory the whole run may use, e.g. 8G or 1500M (default: 3/4 of what is available); "
        "larger images are then computed in exact tiles, and a run that cannot fit is refused at once",
    )
    p.add_argument(
        "--tile-size",
        type=parse_int,
        metavar="N",
        help="force tiled evaluation with N×N-pixel tiles (rounded down to a multiple of 16)",
    )
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


def options_from_args(args: argparse.Namespace):
    """An ``Options`` from parsed arguments (raises NSTError for nonsense values)."""
    from ..options import make_options

    init, init_image = args.init, None
    if init not in INITS:
        init, init_image = "content", args.init
    return make_options(
        size=None if args.size == 0 else args.size, quality=args.quality, steps=args.steps,
        strength=args.strength, style_weight=args.style_weight, content_weight=args.content_weight,
        tv_weight=args.tv_weight, style_blend=args.style_blend, style_scale=args.style_scale,
        preserve_color=args.preserve_color, init=init, init_image=init_image, optimizer=args.optimizer,
        seed=args.seed, device=args.device, weights=args.weights, pooling=args.pooling,
        max_memory=args.max_memory, tile_size=args.tile_size,
    )  # fmt: skip


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
