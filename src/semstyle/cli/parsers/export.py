"""Flags of ``semstyle export`` (handler: ``semstyle.cli.export``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

EXAMPLES = """examples:
  semstyle export --format onnx -o model.onnx                 # encoder + AdaIN + decoder
  semstyle export --format onnx --part style -o style.onnx    # encoder + style statistics
  semstyle export --part student --decoder wave.safetensors -o wave.onnx   # a style model's real-time student
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
    p.add_argument("--part", choices=("full", "style", "student"), default="full",
                   help="full = content + style statistics + alpha → image; style = style image → statistics; "
                        "student = content + alpha → image, a style model's student (--decoder MODEL)")
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
