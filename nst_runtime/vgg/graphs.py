"""Finding the exported graphs a run needs, exporting them on first use, and refusing bad ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nst_export import DEFAULT_LAYERS, ExportError, ExportRequest, export_graphs
from nst_export.architecture import Layer, truncated_plan
from nst_export.manifest import FEATURE_FILE, FUSED_FILE, GRADIENT_FILE, GUIDED_FILE, check_files, read_manifest
from nst_export.pipeline import current_graphs

from ..errors import NSTError

#: The graphs of each scale's detail pass, cut after relu3_1: about a third of a full evaluation.
DETAIL_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


def style_part(layer: str) -> str:
    """The name of one style layer's share in an evaluation's parts (``VGG.loss_and_grad``)."""
    return f"style_{layer}"


@dataclass(frozen=True)
class GraphSet:
    """A checked pair of graphs and what the manifest says about them."""

    folder: Path
    manifest: dict

    @property
    def feature_path(self) -> Path:
        return self.folder / FEATURE_FILE

    @property
    def gradient_path(self) -> Path:
        return self.folder / GRADIENT_FILE

    @property
    def fused_path(self) -> Path:
        return self.folder / FUSED_FILE

    @property
    def guided_path(self) -> Path:
        return self.folder / GUIDED_FILE

    def has(self, role: str) -> bool:
        """Whether this set holds the graph ``role`` ("fused", "guided", …)."""
        return role in self.manifest.get("graphs", {})

    def inputs_of(self, role: str) -> list[str]:
        return list(self.manifest["graphs"][role]["inputs"])

    @property
    def loss_layers(self) -> tuple[str | None, tuple[str, ...]]:
        """(content layer, style layers) of the fused graph's built-in loss."""
        loss = self.manifest["loss"]
        return loss["content_layer"], tuple(loss["style_layers"])

    @property
    def fused_inputs(self) -> list[str]:
        return list(self.manifest["graphs"]["fused"]["inputs"])

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(self.manifest["layers"])

    @property
    def plan(self) -> list[Layer]:
        return truncated_plan(self.manifest["arch"], self.taps)

    @property
    def feature_outputs(self) -> list[str]:
        return list(self.manifest["graphs"]["feature"]["outputs"])

    @property
    def gradient_inputs(self) -> list[str]:
        return list(self.manifest["graphs"]["gradient"]["inputs"])


def ensure_graphs(
    weights: str = "vgg19",
    pooling: str = "max",
    layers: tuple[str, ...] = DEFAULT_LAYERS,
    folder: str | Path | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> GraphSet:
    """The graph set for this configuration: an explicit ``folder`` is checked and never rewritten;
    otherwise the per-user cache is used and (re-)exported when missing or stale."""
    if folder is not None:
        return _checked(Path(folder), layers)

    def announce(message: str) -> None:
        log("exporting the VGG graphs once (about 30 s): " + message.split(" to ", 1)[0])

    try:
        result = export_graphs(ExportRequest(weights=weights, layers=layers, pooling=pooling), log=announce)
    except ExportError as exc:
        raise NSTError(str(exc)) from None
    return GraphSet(result.folder, result.manifest)


def existing_graphs(
    weights: str = "vgg19",
    pooling: str = "max",
    layers: tuple[str, ...] = DEFAULT_LAYERS,
    folder: str | Path | None = None,
) -> GraphSet | None:
    """What ``ensure_graphs`` would return if that needs no export; else None (never raises)."""
    try:
        if folder is not None:
            return _checked(Path(folder), layers)
        result = current_graphs(ExportRequest(weights=weights, layers=layers, pooling=pooling))
    except (ExportError, NSTError):
        return None
    return GraphSet(result.folder, result.manifest) if result else None


def _checked(folder: Path, layers: tuple[str, ...]) -> GraphSet:
    """A folder the user chose decides weights and pooling; it must be intact and hold the taps."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise NSTError(f"no graph manifest in {folder}: export graphs there with nst-export --out {folder}")
    try:
        check_files(folder, manifest)
    except ExportError as exc:
        raise NSTError(str(exc)) from None
    missing = [layer for layer in layers if layer not in manifest.get("layers", [])]
    if missing:
        raise NSTError(f"graphs in {folder} lack the layers {', '.join(missing)}")
    return GraphSet(folder, manifest)
