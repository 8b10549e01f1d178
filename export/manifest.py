"""The manifest written next to the graphs, and the check the runtime makes before trusting them.

A graph set is identified by what went into it (weights bytes, layers, pooling, opset, graph
format). The runtime refuses a set whose manifest disagrees with what it asked for, or whose
files no longer hash to what the manifest recorded.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import ExportError
from .sources import sha256_file

#: Bumped whenever the graphs' inputs, outputs or meaning change; old exports are then redone.
#: 4: the guided graph; 5: pooled ReLU masks; 6: per-layer style_losses; 7: max-pool routes (bool, on the
#: pool input's grid) instead of MaxPool indices and MaxUnpool, sizes multiplied in float (issue 23)
GRAPH_FORMAT = "nst-graphs/7"
LOSS_OUTPUTS = ("loss", "content_loss", "style_loss", "style_losses", "grad_image")  # the fused and guided graphs
MANIFEST = "manifest.json"
FEATURE_FILE = "feature.onnx"
GRADIENT_FILE = "gradient.onnx"
FUSED_FILE = "fused.onnx"
GUIDED_FILE = "guided.onnx"
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class GraphKey:
    """What a graph set is made from; two exports with equal keys produce the same graphs."""

    source: str
    source_sha256: str
    layers: tuple[str, ...]
    pooling: str
    opset: int

    def to_json(self) -> dict:
        return {
            "format": GRAPH_FORMAT,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "layers": list(self.layers),
            "pooling": self.pooling,
            "opset": self.opset,
        }


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def exporter_versions() -> dict[str, str]:
    return {
        "nst": package_version("nst"),
        "torch": package_version("torch"),
        "onnx": package_version("onnx"),
        "onnxscript": package_version("onnxscript"),
        "python": sys.version.split()[0],
    }


def read_manifest(folder: Path) -> dict | None:
    """The manifest in ``folder``, or None if there is none or it is unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)


def is_current(folder: Path, key: GraphKey) -> bool:
    """True when ``folder`` already holds intact graphs made from ``key``."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("key") != key.to_json():
        return False
    try:
        check_files(folder, manifest)
    except ExportError:
        return False
    return True


def check_files(folder: Path, manifest: dict, thorough: bool = False) -> None:
    """Raise unless every graph file is present and hashes to what the manifest recorded.

    Hashing 200 MB costs a noticeable part of a run's start, so unless ``thorough``, a file whose
    size and modification time are exactly those recorded at export is taken as unchanged.
    """
    if manifest.get("key", {}).get("format") != GRAPH_FORMAT:
        raise ExportError(
            f"graphs in {folder} are format {manifest.get('key', {}).get('format')!r}, "
            f"this version needs {GRAPH_FORMAT!r}: re-run nst-export"
        )
    for role, entry in manifest.get("graphs", {}).items():
        path = folder / entry["file"]
        if not path.is_file():
            raise ExportError(f"{role} graph is missing: {path}")
        stat = path.stat()
        if not thorough and stat.st_size == entry.get("bytes") and stat.st_mtime_ns == entry.get("mtime_ns"):
            continue
        if stat.st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            raise ExportError(f"{role} graph does not match its manifest (modified or truncated): {path}")
