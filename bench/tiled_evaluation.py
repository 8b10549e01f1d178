"""Two design measurements for the tiled evaluator (issue 11), in one process, taking turns.

1. Stitching: ``sum`` (upstream zeroed outside each tile's inner region, 80-px halo, overlaps
   summed) against ``crop`` (SPST's, 160-px halo, inner crop of each tile's image gradient):
   one whole tiled evaluation each, same image, same objective.
2. Per tile of the gradient pass: the two-graph path (feature graph → upstream gradients in
   torch → gradient graph) against a *tile-variant* fused graph (feature → upstream → gradient
   composed into one ONNX graph whose inputs are the tile, the per-layer coefficient matrices
   and per-position weight maps), exported here into a temporary folder for the measurement.

    python bench/tiled_evaluation.py --size 1024x768 --tile 256 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"


class UpstreamNet(torch.nn.Module):
    """The tiled gradient pass's upstream gradients, for export: taps, coefficients, weight maps → grads."""

    def __init__(self, taps: tuple[str, ...], content: str, styles: tuple[str, ...]):
        super().__init__()
        self.taps, self.content, self.styles = taps, content, styles

    @property
    def input_names(self) -> list[str]:
        styles = [n for s in self.styles for n in (f"coef_{s}", f"map_{s}")]
        return [*self.taps, "content_target", "content_map", *styles]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(self.input_names, inputs, strict=True))
        grads = {self.content: (named[self.content] - named["content_target"]) * named["content_map"]}
        for s in self.styles:
            f = named[s]
            flat = f.reshape(f.shape[1], -1)
            grads[s] = (named[f"coef_{s}"] @ flat).view(f.shape) * named[f"map_{s}"]
        return tuple(grads[t] for t in self.taps)


def export_tile_graph(graphs, folder: Path) -> Path:
    import onnx
    from onnx import compose

    from nst_export.onnx_graphs import TRACE_SIZE, dynamic_dims, output_level, quiet_exporter
    from nst_export.sources import locate_source
    from nst_export.torch_vgg import FeatureNet
    from nst_export.weights import load_weights

    net = FeatureNet(load_weights(locate_source("vgg19")), graphs.taps, "max")
    content, styles = graphs.loss_layers
    up = UpstreamNet(graphs.taps, content, styles)
    with torch.no_grad():
        outputs = dict(zip(net.output_names, net(torch.rand(1, 3, *TRACE_SIZE)), strict=True))
    examples = {t: outputs[t] for t in net.taps}
    examples["content_target"] = torch.randn_like(outputs[content])
    examples["content_map"] = torch.rand_like(outputs[content][:, :1])
    for s in styles:
        c = outputs[s].shape[1]
        examples[f"coef_{s}"] = torch.randn(c, c)
        examples[f"map_{s}"] = torch.rand_like(outputs[s][:, :1])
    levels = dynamic_dims(1 + sum(1 for layer in net.plan if layer.kind == "pool"))

    def spec(name: str):
        layer = content if name in ("content_target", "content_map") else name.removeprefix("map_")
        if name.startswith("coef_") or layer not in net.taps:
            return None
        level = levels[output_level(net, layer)]
        return {2: level[0], 3: level[1]}

    with quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            up.eval(), tuple(examples[n] for n in up.input_names), dynamo=True, opset_version=18, verbose=False,
            input_names=up.input_names, output_names=[f"grad_{t}" for t in net.taps],
            dynamic_shapes=(tuple(spec(n) for n in up.input_names),),
        )  # fmt: skip
    feature = compose.add_prefix(onnx.load(str(graphs.feature_path)), "f/", rename_inputs=False, rename_outputs=False)
    upstream = compose.add_prefix(program.model_proto, "u/", rename_inputs=False, rename_outputs=False)
    gradient = compose.add_prefix(onnx.load(str(graphs.gradient_path)), "g/", rename_inputs=False, rename_outputs=False)
    grads = [f"grad_{t}" for t in net.taps]
    first = compose.merge_models(
        feature, upstream, io_map=[(t, t) for t in net.taps], outputs=[*net.output_names, *grads]
    )
    tiled = compose.merge_models(
        first, gradient, io_map=[(i.name, i.name) for i in gradient.graph.input], outputs=["grad_image"]
    )
    path = folder / "tile.onnx"
    onnx.save_model(tiled, str(path))
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of the evaluated image")
    p.add_argument("--tile", type=int, default=256, help="inner tile size for the stitching comparison")
    p.add_argument("--graph-tile", type=int, default=512, help="inner size of the tile timed in comparison 2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip", default="", help="comma-separated: stitching, graph")
    p.add_argument("--json", help="write the raw numbers here")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import photo_array
    from nst_runtime.evaluation.tiled import TiledEvaluator
    from nst_runtime.objective.builder import ObjectiveBuilder
    from nst_runtime.options import make_options
    from nst_runtime.planning.tiles import Tile, split
    from nst_runtime.vgg.features import get_vgg
    from nst_runtime.vgg.sessions import create_session

    width, height = (int(v) for v in args.size.split("x"))
    vgg = get_vgg()
    content = torch.from_numpy(photo_array("golden_gate.jpg", height, width))
    style = torch.from_numpy(photo_array("starry_night.jpg", 384, 486))
    objective = ObjectiveBuilder(vgg, make_options(), content, [style], [1.0]).at(height, width)
    x = torch.from_numpy(photo_array("shipwreck.jpg", height, width))
    results: dict[str, list[float]] = {}
    skip = set(args.skip.split(","))

    if "stitching" not in skip:
        evaluators = {s: TiledEvaluator(vgg, objective, args.tile, s) for s in ("sum", "crop")}
        grads = {}
        for _ in range(args.rounds):
            for name, ev in evaluators.items():
                started = time.perf_counter()
                _, grads[name] = ev(x)
                results.setdefault(f"stitch_{name}", []).append(time.perf_counter() - started)
        diff = float((grads["sum"] - grads["crop"]).norm() / grads["crop"].norm())
        print(f"sum vs crop gradient rel L2 {diff:.2e}; tiles: sum {len(evaluators['sum'].tiles)}, "
              f"crop {len(evaluators['crop'].tiles)}")  # fmt: skip

    if "graph" not in skip:
        t = args.graph_tile
        rows, cols = split(height, t, 80), split(width, t, 80)
        tile = Tile(rows[len(rows) // 2], cols[len(cols) // 2])  # an interior tile, full halo
        ev = TiledEvaluator(vgg, objective, t, "sum")
        from nst_runtime.evaluation.tiled import StyleSum

        styles = [StyleSum(term, ev.geometry.shape[term.layer]) for term in objective.styles]
        for s in styles:  # a stand-in for the statistics: the tile's own Gram sums
            s.sum = s.term.target.double() * 1.1 * s.norm
        coefficients = [s.loss_and_coefficient()[1] for s in styles]
        content_scale = 2.0 * objective.content.weight / objective.content.target.numel()
        image = x[..., tile.rows.start : tile.rows.stop, tile.cols.start : tile.cols.stop].contiguous()

        def two_graphs() -> torch.Tensor:
            taps, saved = vgg.forward(image)
            up = ev.upstream(tile, taps, styles, coefficients, content_scale)
            return vgg.backward(saved, up, tile.height, tile.width)

        with tempfile.TemporaryDirectory() as tmp:
            path = export_tile_graph(vgg.graphs, Path(tmp))
            session, _ = create_session(path, "cpu")
            inputs = {"image": image}
            c_layer = objective.content.layer
            scale = ev.geometry.scale[c_layer]
            inputs["content_target"] = objective.content.target[
                ..., slice(*tile.rows.on(scale)), slice(*tile.cols.on(scale))
            ]
            inputs["content_target"] = inputs["content_target"].contiguous()
            inputs["content_map"] = _inner_map(tile, scale, inputs["content_target"].shape, content_scale)
            for s, coef in zip(styles, coefficients, strict=True):
                sc = ev.geometry.scale[s.term.layer]
                shape = (1, 1, (tile.height) // sc, (tile.width) // sc)
                inputs[f"coef_{s.term.layer}"] = coef.contiguous()
                inputs[f"map_{s.term.layer}"] = _inner_map(tile, sc, shape, 1.0)

            def one_graph() -> torch.Tensor:
                out = {"grad_image": torch.empty_like(image)}
                vgg.run_session(session, inputs, out)
                return out["grad_image"]

            a, b = two_graphs(), one_graph()
            diff = float((a - b).norm() / a.norm())
            print(f"tile {tile.height}×{tile.width}: two-graph vs tile graph rel L2 {diff:.2e}")
            for _ in range(args.rounds):
                for name, fn in (("two_graphs", two_graphs), ("tile_graph", one_graph)):
                    started = time.perf_counter()
                    fn()
                    results.setdefault(name, []).append(time.perf_counter() - started)
    summary = {k: {"median": statistics.median(v), "min": min(v), "runs": v} for k, v in results.items()}
    for k, v in summary.items():
        print(f"{k:>12}: median {v['median']:.2f} s, min {v['min']:.2f} s over {len(v['runs'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": summary}, indent=2) + "\n")
    return 0


def _inner_map(tile, scale: int, shape, value: float) -> torch.Tensor:
    out = torch.zeros(1, 1, shape[2], shape[3])
    rows, cols = tile.local_inner_slices(scale)
    out[..., rows, cols] = value
    return out


if __name__ == "__main__":
    sys.exit(main())
