"""``nst CONTENT STYLE [STYLE ...] -o OUT``: one photo, painted and saved atomically."""

from __future__ import annotations

import argparse
import os
import threading

from ..errors import EXIT_CANCELLED, EXIT_ERROR, Cancelled, NSTError
from ..jobs.reporting import in_thread
from .common import Parser, Presenter, add_run_options, cancel_on_signals, options_from_args, parse_files


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="nst",
        description="Paint CONTENT in the style of STYLE (Gatys et al.), with VGG running in onnxruntime. "
        "Other commands: 'nst demo' runs the bundled example; 'nst batch' stylizes many photos; "
        "'nst video' stylizes a video or animation without flicker; "
        "'nst estimate CONTENT STYLE [options]' says how long that run would take here; "
        "'nst install-gimp-plugin' installs the GIMP 3 plug-in.",
    )
    p.add_argument("content", help="the photo (any format Pillow reads)")
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images (paintings)")
    p.add_argument("-o", "--output", required=True, help="result file; its extension sets the format")
    p.add_argument(
        "--masks",
        type=parse_files,
        metavar="FILE[,FILE...]",
        help="one greyscale mask per style (white: that style, black: not it; soft edges blend), e.g. "
        "sky.png,ground.png; the photo stays where no mask is white; an empty entry means everywhere",
    )
    p.add_argument(
        "--style-masks",
        type=parse_files,
        metavar="FILE[,FILE...]",
        help="one mask per style image selecting the part of the painting whose style is used "
        "(an empty entry: all of it)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="allow the output to replace an input file (content, style or init)"
    )
    add_run_options(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_and_save(args.content, args.styles, args.output, args, prog="nst")


def run_and_save(content: object, styles: list, output: str, args: argparse.Namespace, prog: str) -> int:
    """Validate everything, stylize in a worker thread (so Ctrl-C is handled at once), save atomically."""
    say = Presenter(prog, quiet=args.quiet)
    from ..vgg import prewarm

    prewarm.start(args.weights, args.pooling, args.device, args.graphs)
    try:
        from ..imaging.images import check_not_an_input, check_output_path

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
        from ..imaging.images import save_image

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
    from ..imaging.masks import load_mask

    masks = [None if f is None else load_mask(f, role) for f in files]
    for path, mask in zip(files, masks, strict=True):
        if mask is not None and mask.empty:
            raise NSTError(f"{role} is empty (all zero, nothing selected): {path}")
    return masks


def _run_cancellable(content, styles, options, graphs_dir, say: Presenter, masks=None, style_masks=None):
    """Run the engine in a thread; the main thread waits, so SIGINT/SIGTERM are handled at once."""
    from ..engine.runner import run  # here: the sessions' prewarm starts before torch loads

    cancel = threading.Event()

    def work():
        return run(
            content, styles, options, masks=masks, style_masks=style_masks, progress=say.event, cancel=cancel,
            graphs_dir=graphs_dir,
        )  # fmt: skip

    with cancel_on_signals(cancel):
        return in_thread(work)
