"""``semstyle export``: the networks as an ONNX graph, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from semstyle.errors import InputError
from semstyle.export.graphs import check_opset, export_onnx, require_onnx


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"--format onnx writes a .onnx file, got '{out}'")
    if out.is_dir():
        raise InputError(f"output '{out}' is a folder")
    if out.exists() and not args.overwrite:
        raise InputError(f"output '{out}' already exists; pass --overwrite to replace it")
    if not 16 <= args.size <= 4096:
        raise InputError(f"--size must be between 16 and 4096 px, got {args.size}")
    check_opset(args.opset, "--opset")

    require_onnx()  # before the networks load
    rep = export_onnx(out, args.part, args.size, args.encoder, args.decoder, args.opset, check=not args.no_check)
    print(rep.path)
    if rep.max_abs_diff is not None:
        print(f"checked at {rep.size}x{rep.size}: max |onnxruntime - pytorch| = {rep.max_abs_diff:.2e}; "
              f"onnxruntime {rep.onnx_seconds:.3f} s, pytorch {rep.torch_seconds:.3f} s; {rep.bytes / 1e6:.1f} MB")
    return 0
