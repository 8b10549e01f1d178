"""``nst estimate CONTENT STYLE… [the options of nst]``: how long that run would take here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..engine.timing import estimate, speed_for
from ..errors import EXIT_CANCELLED, EXIT_ERROR, Cancelled, NSTError
from .common import Parser, add_run_options, options_from_args


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="nst estimate",
        description="How long `nst CONTENT STYLE… [options]` would take on this machine. The speed is "
        "measured once per machine, device and runtime version (about a minute) and cached.",
    )
    p.add_argument("content", help="the photo (only its size is read)")
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images")
    p.add_argument("-o", "--output", help="accepted for the same command line as nst; ignored")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    p.add_argument("--recalibrate", action="store_true", help="measure this machine's speed again")
    return p


def content_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file, read from its header (EXIF rotation applied)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112, 1)
    except FileNotFoundError:
        raise NSTError(f"content file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise NSTError(f"content file is not an image: {path} ({exc})") from None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = options_from_args(args).validate(len(args.styles))
        for style in args.styles:
            if not Path(style).is_file():
                raise NSTError(f"style file not found: {style}")
        height, width = content_size(args.content)

        def log(message: str) -> None:
            if not args.quiet:
                print(f"nst estimate: {message}", file=sys.stderr, flush=True)

        speed = speed_for(options, args.graphs, log, recalibrate=args.recalibrate)
        result = estimate(height, width, options, len(args.styles), speed, detail_pass=args.graphs is None)
    except NSTError as exc:
        print(f"nst estimate: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (Cancelled, KeyboardInterrupt):
        print("nst estimate: error: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    print(json.dumps(result.to_json()) if args.json else result.summary())
    return 0
