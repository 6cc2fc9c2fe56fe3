"""``semstyle export``: the networks as an ONNX graph, checked against PyTorch."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

EXAMPLES = """examples:
  semstyle export --format onnx -o model.onnx                 # encoder + AdaIN + decoder
  semstyle export --format onnx --part style -o style.onnx    # encoder + style statistics
"""


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "export",
        help="export the networks as an ONNX graph",
        description="Export encoder + AdaIN (style mean/std and alpha as inputs) + decoder, or the style "
        "statistics graph, with dynamic height and width; checked against PyTorch with onnxruntime.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default %(default)s)")
    p.add_argument("-o", "--output", required=True, help="output file (.onnx)")
    p.add_argument("--part", choices=("full", "style"), default="full",
                   help="full = content + style statistics + alpha → image; style = style image → statistics")
    p.add_argument("--size", type=int, default=256,
                   help="side of the example input for tracing and the check (default %(default)s)")
    p.add_argument("--encoder-weights", dest="encoder", default="pretrained", help="'pretrained', a file or a URL")
    p.add_argument("--decoder", "--decoder-weights", dest="decoder", default="pretrained",
                   help="pretrained | finetuned | a .pth/.safetensors file | a URL (default %(default)s)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default %(default)s)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.export:cmd_export")


def cmd_export(args: argparse.Namespace) -> int:
    from semstyle.errors import InputError

    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"--format onnx writes a .onnx file, got '{out}'")
    if out.is_dir():
        raise InputError(f"output '{out}' is a folder")
    if out.exists() and not args.overwrite:
        raise InputError(f"output '{out}' already exists; pass --overwrite to replace it")
    if not 16 <= args.size <= 4096:
        raise InputError(f"--size must be between 16 and 4096 px, got {args.size}")
    if not 11 <= args.opset <= 21:
        raise InputError(f"--opset must be between 11 and 21, got {args.opset}")

    from semstyle.export.graphs import export_onnx, require_onnx

    require_onnx()  # before the networks load
    rep = export_onnx(out, args.part, args.size, args.encoder, args.decoder, args.opset, check=not args.no_check)
    print(rep.path)
    if rep.max_abs_diff is not None:
        print(f"checked at {rep.size}x{rep.size}: max |onnxruntime - pytorch| = {rep.max_abs_diff:.2e}; "
              f"onnxruntime {rep.onnx_seconds:.3f} s, pytorch {rep.torch_seconds:.3f} s; {rep.bytes / 1e6:.1f} MB")
    return 0
