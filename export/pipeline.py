"""The export step end to end: locate weights, build, export, verify, then publish atomically.

Nothing appears in the output folder until both graphs exist and passed verification; the
manifest is written last, so a folder with a manifest always holds a complete, checked set.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .architecture import DEFAULT_LAYERS, POOLINGS, parse_layers
from .errors import ExportError
from .manifest import (
    DEFAULT_OPSET,
    FEATURE_FILE,
    FUSED_FILE,
    GRADIENT_FILE,
    GUIDED_FILE,
    LOSS_OUTPUTS,
    GraphKey,
    exporter_versions,
    is_current,
    read_manifest,
    write_manifest,
)
from .paths import graphs_dir
from .sources import SOURCES, SourceFile, arch_of, locate_source, sha256_file
from .staging import make_staging, sweep

if TYPE_CHECKING:
    from .torch_vgg import FeatureNet, GradientNet
    from .weights import VGGWeights

MIN_OPSET = 18  # the torch exporter needs it


@dataclass(frozen=True)
class ExportRequest:
    weights: str = "vgg19"
    weights_file: str | None = None
    preprocessing: str = "torchvision"  # only for weights_file
    source_file: str | None = None
    layers: tuple[str, ...] | str | None = None
    pooling: str = "max"
    opset: int = DEFAULT_OPSET
    out: str | Path | None = None
    force: bool = False


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    manifest: dict
    reused: bool
    seconds: float


def layers_label(layers: tuple[str, ...]) -> str:
    if layers == DEFAULT_LAYERS:
        return "default"
    return hashlib.sha1(",".join(layers).encode()).hexdigest()[:10]


def default_folder(label: str, pooling: str, layers: tuple[str, ...]) -> Path:
    return graphs_dir() / f"{label}-{pooling}-{layers_label(layers)}"


def _check_request(req: ExportRequest) -> None:
    if req.weights_file is None and req.weights not in SOURCES:
        raise ExportError(f"unknown weight source {req.weights!r} (expected one of {', '.join(SOURCES)})")
    if req.pooling not in POOLINGS:
        raise ExportError(f"unknown pooling {req.pooling!r} (expected max or avg)")
    if req.opset < MIN_OPSET:
        raise ExportError(f"opset {req.opset} is too old: the exporter needs ≥ {MIN_OPSET}")


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ExportError(f"output directory is not writable: {folder} ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class _Resolved:
    src: SourceFile
    layers: tuple[str, ...]
    folder: Path
    key: GraphKey
    weights: VGGWeights | None  # already read when the architecture had to be learnt from the file


def _resolve(req: ExportRequest) -> _Resolved:
    _check_request(req)
    arch = arch_of(req.weights) if req.weights_file is None else None
    layers = parse_layers(req.layers, arch) if arch else None
    src = locate_source(
        req.weights, source_file=req.source_file, weights_file=req.weights_file, preprocessing=req.preprocessing
    )
    weights = None
    if layers is None:  # a user file: its architecture is known only once it is read
        from .weights import load_weights

        weights = load_weights(src)
        layers = parse_layers(req.layers, weights.arch)
    folder = Path(req.out) if req.out is not None else default_folder(src.label, req.pooling, layers)
    return _Resolved(src, layers, folder, GraphKey(src.source, src.sha256, layers, req.pooling, req.opset), weights)


def current_graphs(req: ExportRequest) -> ExportResult | None:
    """The graph set ``req`` describes if it is already exported and intact; never exports."""
    started = time.perf_counter()
    r = _resolve(req)
    if is_current(r.folder, r.key):
        return ExportResult(r.folder, read_manifest(r.folder), True, time.perf_counter() - started)
    return None


def sweep_litter(folder: Path) -> list[Path]:
    """Remove what killed exports left (stale staging folders) in ``folder`` and every cached graph set."""
    try:
        cached = [p for p in graphs_dir().iterdir() if p.is_dir()]
    except OSError:
        cached = []
    return sweep([folder, *cached])


def export_graphs(req: ExportRequest, log: Callable[[str], None] = lambda _msg: None) -> ExportResult:
    """Export (or reuse) the graph set ``req`` describes; raise ExportError on any user problem."""
    started = time.perf_counter()
    r = _resolve(req)
    src, layers, folder, key = r.src, r.layers, r.folder, r.key
    sweep_litter(folder)
    if not req.force and is_current(folder, key):
        return ExportResult(folder, read_manifest(folder), True, time.perf_counter() - started)
    _ensure_writable(folder)

    # The exporter and verifier are heavy imports; a reuse (the common case) never needs them.
    from .onnx_graphs import export_feature_graph, export_fused_graph, export_gradient_graph, export_guided_graph
    from .torch_vgg import FeatureNet, GradientNet
    from .verify import verify_fused, verify_graphs, verify_guided, verify_int32
    from .weights import load_weights

    weights = r.weights or load_weights(src)
    log(f"exporting {weights.arch} graphs ({src.label}, {req.pooling} pooling, {len(layers)} taps) to {folder}")
    net = FeatureNet(weights, layers, req.pooling)
    grad_net = GradientNet(net)
    staging = make_staging(folder)
    try:
        export_feature_graph(net, staging / FEATURE_FILE, req.opset)
        export_gradient_graph(net, grad_net, staging / GRADIENT_FILE, req.opset)
        fused_inputs = export_fused_graph(
            net, staging / FEATURE_FILE, staging / GRADIENT_FILE, staging / FUSED_FILE, req.opset
        )
        guided_inputs = export_guided_graph(
            net, staging / FEATURE_FILE, staging / GRADIENT_FILE, staging / GUIDED_FILE, req.opset
        )
        checks = verify_graphs(net, grad_net, staging / FEATURE_FILE, staging / GRADIENT_FILE)
        checks.update(verify_fused(net, staging / FUSED_FILE))
        checks.update(verify_guided(net, staging / GUIDED_FILE))
        names = {"feature": FEATURE_FILE, "gradient": GRADIENT_FILE, "fused": FUSED_FILE, "guided": GUIDED_FILE}
        checks.update(verify_int32({role: staging / name for role, name in names.items()}))
        manifest = _manifest(key, src, weights, net, grad_net, (fused_inputs, guided_inputs), staging, checks)
        for name in (FEATURE_FILE, GRADIENT_FILE, FUSED_FILE, GUIDED_FILE):
            (staging / name).replace(folder / name)
        write_manifest(folder, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(folder, manifest, False, time.perf_counter() - started)


def _manifest(
    key: GraphKey,
    src: SourceFile,
    weights: VGGWeights,
    net: FeatureNet,
    grad_net: GradientNet,
    loss_inputs: tuple[list[str], list[str]],  # the fused and the guided graph's
    staging: Path,
    checks: dict,
) -> dict:
    def graph_entry(name: str, inputs: list[str], outputs: list[str]) -> dict:
        path = staging / name
        stat = path.stat()  # a rename into place keeps size and mtime, so they identify the published file
        return {
            "file": name,
            "sha256": sha256_file(path),
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "inputs": inputs,
            "outputs": outputs,
        }

    from .torch_loss import loss_layers

    content_layer, style_layers = loss_layers(key.layers)
    pre = weights.preprocessing
    return {
        "key": key.to_json(),
        "arch": weights.arch,
        "weights": {
            "source": src.source,
            "description": weights.description,
            "file": str(src.path),
            "sha256": src.sha256,
            **weights.extra,
        },
        "layers": list(key.layers),
        "pooling": key.pooling,
        "opset": key.opset,
        "preprocessing": {
            "input": "image: float32 [1, 3, H, W], RGB in [0, 1], H and W ≥ 16",
            "weights_expect": pre.describe(),
            "weights_expect_params": pre.to_json(),
            "folded": "channel order and scale folded into conv1_1; the graph subtracts the mean itself",
        },
        "graphs": {
            "feature": graph_entry(FEATURE_FILE, ["image"], net.output_names),
            "gradient": graph_entry(GRADIENT_FILE, grad_net.input_names, ["grad_image"]),
            "fused": graph_entry(FUSED_FILE, loss_inputs[0], list(LOSS_OUTPUTS)),
            "guided": graph_entry(GUIDED_FILE, loss_inputs[1], list(LOSS_OUTPUTS)),
        },
        "loss": {
            "content_layer": content_layer,
            "style_layers": list(style_layers),
            "formula": "content_weight·mean((F−T)²) + Σ style_weights[l]·mean((FFᵀ/hw − A_l)²)",
            "guided_formula": "content_weight·mean((F−T)²) + Σ_r Σ_l style_weights[r, l]·mean((G_rl − A_rl)²), "
            "G_rl = (F⊙m_rl)(F⊙m_rl)ᵀ/Σm_rl² (mask_<l>: [R, h_l, w_l], gram_<l>: [R, C, C])",
        },
        "saved": [{"name": s.name, "layer": s.layer, "kind": s.kind} for s in net.saved],
        "verification": checks,
        "exporter": exporter_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
