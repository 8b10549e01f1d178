"""``nst``: style transfer from the command line, a thin shell on ``stylize()``'s events.

``nst CONTENT STYLE [STYLE ...] -o OUT``; also ``nst demo`` (the bundled example),
``nst estimate`` (the time a run would take) and ``nst install-gimp-plugin``. Every failure is
one line on stderr and a non-zero exit code; Ctrl-C stops within a second and writes nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time

from .errors import Cancelled, NSTError
from .options import DEFAULT_SIZE, DEVICES, INITS, OPTIMIZERS, PRESERVE_COLORS, QUALITIES, WEIGHT_SOURCES

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or comma-separated integers, got {text!r}") from None


def _files(text: str) -> tuple[str | None, ...]:
    """Comma-separated file names; an empty entry (``a.png,,c.png``) is None."""
    return tuple(part.strip() or None for part in text.split(","))


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options shared by ``nst`` and ``nst demo``."""
    p.add_argument(
        "--size",
        type=_integer,
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
        type=_ints,
        metavar="N[,N...]",
        help="steps per scale instead of --quality: one number for every scale, or one per "
        "scale from coarse to fine (their count sets the number of scales)",
    )
    p.add_argument(
        "--strength",
        type=_number,
        metavar="0..1",
        help="style strength in user terms (0.5 = the default balance); replaces --style-weight",
    )
    p.add_argument("--style-weight", type=_number, default=1.0, help="multiplier of the style loss")
    p.add_argument("--content-weight", type=_number, default=1.0, help="multiplier of the content loss")
    p.add_argument("--tv-weight", type=_number, default=0.0, help="total-variation smoothing (0: off; 1: gentle)")
    p.add_argument(
        "--style-blend",
        type=_floats,
        metavar="W[,W...]",
        help="one weight per style image, e.g. 0.7,0.3 (default: equal)",
    )
    p.add_argument(
        "--style-scale",
        type=_number,
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
    p.add_argument("--seed", type=_integer, default=0, help="random seed; a CPU run is reproducible bit for bit")
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
        type=_integer,
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="nst",
        description="Paint CONTENT in the style of STYLE (Gatys et al.), with VGG running in onnxruntime. "
        "Other commands: 'nst demo' runs the bundled example; 'nst batch' stylizes many photos; "
        "'nst video' stylizes a video or animation without flicker; "
        "'nst estimate CONTENT STYLE [options]' says how long that run would take here; "
        "'nst install-gimp-plugin' installs the GIMP 3 plug-in.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("content", help="the photo (any format Pillow reads)")
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images (paintings)")
    p.add_argument("-o", "--output", required=True, help="result file; its extension sets the format")
    p.add_argument(
        "--masks",
        type=_files,
        metavar="FILE[,FILE...]",
        help="one greyscale mask per style (white: that style, black: not it; soft edges blend), e.g. "
        "sky.png,ground.png; the photo stays where no mask is white; an empty entry means everywhere",
    )
    p.add_argument(
        "--style-masks",
        type=_files,
        metavar="FILE[,FILE...]",
        help="one mask per style image selecting the part of the painting whose style is used "
        "(an empty entry: all of it)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="allow the output to replace an input file (content, style or init)"
    )
    add_run_options(p)
    return p


def options_from_args(args: argparse.Namespace):
    """An ``Options`` from parsed arguments (raises NSTError for nonsense values)."""
    from .options import make_options

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "install-gimp-plugin":
        from .gimp_install import main as install_main

        return install_main(argv[1:])
    if argv and argv[0] == "estimate":
        from .estimate import main as estimate_main

        return estimate_main(argv[1:])
    if argv and argv[0] in ("batch", "video"):
        from importlib import import_module

        return import_module(f".{argv[0]}", __package__).main(argv[1:])
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return demo_main(argv[1:])
    args = build_parser().parse_args(argv)
    return run_and_save(args.content, args.styles, args.output, args, prog="nst")


def run_and_save(content: object, styles: list, output: str, args: argparse.Namespace, prog: str) -> int:
    """Validate everything, stylize in a worker thread (so Ctrl-C is handled at once), save atomically."""
    say = _Say(prog, quiet=args.quiet)
    from . import prewarm

    prewarm.start(args.weights, args.pooling, args.device, args.graphs)
    try:
        from .images import check_not_an_input, check_output_path

        options = options_from_args(args)
        options.validate(len(styles))
        masks = _masks(getattr(args, "masks", None), len(styles), "masks", "mask")
        style_masks = _masks(getattr(args, "style_masks", None), len(styles), "style-masks", "style mask")
        out_path = check_output_path(output)
        if not getattr(args, "overwrite", False):
            inputs = [("content", content), *(("style", s) for s in styles), ("init image", options.init_image)]
            mask_files = (*(getattr(args, "masks", None) or ()), *(getattr(args, "style_masks", None) or ()))
            check_not_an_input(out_path, inputs + [("mask", f) for f in mask_files])
        result = _run_cancellable(content, styles, options, args.graphs, say, masks, style_masks)
        from .images import save_image

        for note in save_image(result.image, out_path):
            say.note(note)
    except NSTError as exc:
        say.finish_progress()
        say.error(str(exc))
        return EXIT_ERROR
    except Cancelled:
        say.finish_progress()
        say.error("cancelled; nothing was written")
        return EXIT_CANCELLED
    except MemoryError:
        say.finish_progress()
        say.error("not enough memory for this size: try a smaller --size")
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("NST_DEBUG"):
            raise
        say.finish_progress()
        say.error(
            f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(set NST_DEBUG=1 for details)"
        )
        return EXIT_ERROR
    say.finish_progress()
    w, h = result.image.size
    say.info(
        f"wrote {out_path} ({w}×{h}) in {result.seconds:.1f} s on {result.device}, "
        f"{result.evaluations} evaluations, loss {result.loss:.4g}"
    )
    return 0


def _masks(files: tuple[str | None, ...] | None, count: int, option: str, role: str) -> list | None:
    """The mask files, read and checked before any compute: a mask that is all zero is refused."""
    if files is None:
        return None
    if len(files) != count:
        raise NSTError(f"--{option} names {len(files)} file(s) for {count} style image(s): give one per style")
    from .regions import load_mask

    masks = [None if f is None else load_mask(f, role) for f in files]
    for path, mask in zip(files, masks, strict=True):
        if mask is not None and mask.empty:
            raise NSTError(f"{role} is empty (all zero, nothing selected): {path}")
    return masks


def _run_cancellable(content, styles, options, graphs_dir, say: _Say, masks=None, style_masks=None):
    """Run the engine in a thread; the main thread waits, so SIGINT/SIGTERM are handled at once."""
    from .engine import run

    cancel = threading.Event()

    def work():
        return run(
            content, styles, options, masks=masks, style_masks=style_masks, progress=say.event, cancel=cancel,
            graphs_dir=graphs_dir,
        )  # fmt: skip

    with _signals_set(cancel):
        return in_thread(work)


def in_thread(work, name: str = "nst-stylize"):
    """``work()`` in a worker thread while this one only waits (signal handlers run at once); its result or error."""
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
    return outcome["result"]


class _signals_set:
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


class _Say:
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
        eta = _duration(e.eta_s)
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


def _duration(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on (a full-resolution job can take hours); ? when unknown."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def entry() -> None:
    """Console-script entry: skip the interpreter's teardown, which takes torch seconds to finish."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
