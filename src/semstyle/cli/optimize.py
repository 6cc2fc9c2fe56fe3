"""``semstyle optimize``: Gatys-style optimisation of the output pixels (slow, best quality)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from semstyle.errors import InputError
from semstyle.io.images import check_output_path, save_image
from semstyle.pipelines.optimize import OptimizeConfig, optimize


def cmd_optimize(args: argparse.Namespace) -> int:
    names = set(OptimizeConfig.field_names())
    cfg = OptimizeConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
    for what, path in (
        ("content", args.content),
        ("style", args.style),
        ("content label map", args.content_labels),
        ("style label map", args.style_labels),
    ):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{what} '{path}' does not exist")
    if (args.content_labels is None) != (args.style_labels is None):
        raise InputError("the guided variant needs both --content-labels and --style-labels")
    out = check_output_path(args.output, args.overwrite)
    t0 = time.perf_counter()
    res = optimize(
        args.content,
        args.style,
        cfg,
        content_labels=args.content_labels,
        style_labels=args.style_labels,
        progress=not args.no_progress,
    )
    save_image(res.image, out, overwrite=args.overwrite)
    guided = f", guided over {len(res.guided_labels)} labels" if res.guided_labels else ""
    print(
        f"{out}: {res.image.size[0]}x{res.image.size[1]}, {cfg.steps} {cfg.optimizer} steps{guided}, "
        f"loss {res.history[0]:.4g} → {res.history[-1]:.4g}, {time.perf_counter() - t0:.1f} s"
    )
    return 0
