"""The package version (a leaf: the CLI and the ONNX metadata read it without importing torch)."""

__version__ = "0.1.0"
