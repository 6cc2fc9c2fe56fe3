"""``semstyle train`` (adversarial fine-tuning of the decoder) and ``semstyle distill`` (the fast model)."""

from __future__ import annotations

import argparse

from semstyle.training import trainer as trainer_module  # looked up per call (tests stand in a fake)
from semstyle.training.config import TrainConfig, apply_overrides, read_mapping
from semstyle.training.distill import DistillConfig, Distiller

# flags both training commands share; each maps onto the config field of the same name
SHARED_KEYS: tuple[str, ...] = ("content_dir", "style_dir", "out", "exclude_styles", "steps", "size", "batch", "lr",
                                "precision", "seed", "ckpt_every", "log_every")


def cmd_train(args: argparse.Namespace) -> int:
    data = read_mapping(args.config) if args.config else {}
    cfg = TrainConfig.from_dict(apply_overrides(data, args.set or []))
    keys = (*SHARED_KEYS, "lr_d", "d_steps", "semantic", "image_every")
    cfg = cfg.updated(**{k: getattr(args, k) for k in keys})
    trainer = trainer_module.Trainer(cfg, resume=args.resume)
    try:
        trainer.fit(progress=not args.no_progress)
    finally:
        trainer.close()
    if trainer.d.rank == 0:
        print(f"trained to step {trainer.step}; checkpoints in {trainer.run / 'checkpoints'}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    cfg = DistillConfig.load(args.config) if args.config else DistillConfig()
    run = Distiller(cfg.updated(**{k: getattr(args, k) for k in SHARED_KEYS}), resume=args.resume)
    run.fit(progress=not args.no_progress)
    print(f"distilled to step {run.step}; checkpoints in {run.run / 'checkpoints'}")
    return 0
