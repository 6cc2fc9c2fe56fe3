"""Flags of ``semstyle train`` and ``semstyle distill`` (handlers: ``semstyle.cli.train``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _add_run_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--config", help=f"YAML or JSON file with {what} fields; flags override it")
    p.add_argument("--content-dir", help="folder(s) of content photos, comma-separated")
    p.add_argument("--style-dir", help="folder(s) of style images, comma-separated")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl, …)")
    p.add_argument("--exclude-styles", help="file listing held-out style file names")
    p.add_argument("--steps", type=int)
    p.add_argument("--size", type=int, help="crop side in px (multiple of 8)")
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--precision", choices=("fp32", "bf16"))
    p.add_argument("--seed", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--resume", action="store_true", help="continue exactly from the run's latest checkpoint")
    p.add_argument("--no-progress", action="store_true")


def add_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune the decoder adversarially (resumable; torchrun for DDP)",
        description="Alternating G/D training. Run under `torchrun --nproc_per_node N -m semstyle train ...` for DDP.",
    )
    _add_run_flags(p, "TrainConfig")
    p.add_argument("--lr-d", type=float, help="discriminator learning rate")
    p.add_argument("--d-steps", type=int, help="discriminator updates per generator update")
    p.add_argument("--semantic", choices=("none", "auto"))
    p.add_argument("--image-every", type=int)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config field, e.g. --set weights.adv=0 --set lr_d=2e-4 (repeatable)")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.train:cmd_train")


def add_distill_parser(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "distill",
        help="train the fast model (--model fast) by distilling VGG19 AdaIN (resumable)",
        description="Collaborative distillation of the VGG19 encoder and AdaIN decoder into a quarter-width student.",
    )
    _add_run_flags(p, "DistillConfig")
    add_common(p)
    p.set_defaults(handler="semstyle.cli.train:cmd_distill")
