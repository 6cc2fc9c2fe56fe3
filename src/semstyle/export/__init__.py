"""Exporting the stylisation networks (ONNX) and running the exported graphs.

``export_onnx`` writes the ``full`` graph (encoder + AdaIN with style statistics as inputs +
decoder) or the ``style`` graph (encoder + channel statistics); ``OnnxStylizer`` runs them with
onnxruntime. Both need the optional ``export`` extra: ``pip install semstyle[export]``.
"""

from __future__ import annotations

from semstyle.export.graphs import FORMATS, PARTS, ExportReport, build_graph, export_onnx
from semstyle.export.runtime import OnnxStylizer

__all__ = ["FORMATS", "PARTS", "ExportReport", "OnnxStylizer", "build_graph", "export_onnx"]
