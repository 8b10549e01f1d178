"""nst's export step: real ImageNet VGG weights → verified ONNX feature and gradient graphs."""

from .architecture import DEFAULT_LAYERS
from .errors import ExportError
from .pipeline import ExportRequest, ExportResult, export_graphs

__all__ = ["DEFAULT_LAYERS", "ExportError", "ExportRequest", "ExportResult", "export_graphs"]
