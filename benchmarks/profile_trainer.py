"""Where a training step's time goes, per variant of the trainer, measured in one run on the shared data.

    python benchmarks/profile_trainer.py                         # 128 px, batch 4, 12 timed steps per variant
    python benchmarks/profile_trainer.py --steps 3 --warmup 1    # smoke

Each variant is a real ``Trainer`` on BSDS500 train contents and 16 training styles
(``../shared/data``), TV off; it runs ``--warmup`` untimed steps, then ``--steps`` timed ones, and the
table gives the median seconds per part of a step (``Trainer.profile``: data = sampling the crops,
encode = VGG passes on the content (and the style crops, or the cached whole-style targets),
generator = decoder forward, objective (VGG on the output, adversarial term), backward and Adam,
discriminator = its update(s) and the logged scores) and per whole step, with the 1-minute load average,
so a figure taken while other jobs share the cores reads as such. Run it alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from semstyle.losses import LossWeights
from semstyle.networks import native_bf16
from semstyle.training.config import TrainConfig
from semstyle.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PARTS = ("data", "encode", "generator", "discriminator")
VARIANTS: dict[str, dict[str, object]] = {
    "crop targets, fp32": {"style_targets": "crop", "precision": "fp32"},
    "crop targets, bf16 (the shipped recipe's)": {"style_targets": "crop", "precision": "bf16"},
    "whole targets (cached), fp32": {"style_targets": "whole", "precision": "fp32"},
    "whole targets (cached), bf16": {"style_targets": "whole", "precision": "bf16"},
    "whole targets, channels_last, fp32": {"style_targets": "whole", "channels_last": True},
}
# the feature-space discriminator and the content cache were profiled here too (docs/TRAINING.md) and removed with
# their code after 0eafc31: git show 0eafc31:benchmarks/profile_trainer.py
STYLES = 16  # style images in the profile's bank (a step's cost does not depend on how many there are)
CONTENTS = 48  # content photos in the profile's bank (the same)


def subset(out: Path, kind: str) -> Path:
    """A folder of links to the first ``STYLES`` training styles (held-out ones excluded) or the first
    ``CONTENTS`` BSDS500 training photos."""
    held = set((REPO / "configs" / "heldout_styles.txt").read_text().split())
    folder = out / kind
    folder.mkdir(exist_ok=True)
    root = DATA / "style" if kind == "styles" else DATA / "content" / "BSDS500" / "train"
    picked = [p for p in sorted(root.rglob("*.jpg")) if str(p.relative_to(root)) not in held]
    for i, p in enumerate(picked[: STYLES if kind == "styles" else CONTENTS]):
        link = folder / f"{i:02d}_{p.name}"
        if not link.exists():
            link.symlink_to(p)
    return folder


def profile(name: str, changes: dict[str, object], args: argparse.Namespace, out: Path) -> dict[str, float]:
    cfg = TrainConfig(
        content_dir=str(subset(out, "contents")), style_dir=str(subset(out, "styles")),
        out=str(out / name.replace(" ", "_")),
        steps=args.warmup + args.steps, size=args.size, batch=args.batch, lr=1e-4, log_every=10_000,
        ckpt_every=10_000, image_every=0, weights=LossWeights(tv=0.0), **changes,  # type: ignore[arg-type]
    )
    tr = Trainer(cfg)
    fill = 0.0
    if tr.whole is not None:  # steady state: every style image's targets cached (a long run's after ~40 steps)
        t0 = time.perf_counter()
        tr.whole.get(list(range(len(tr.styles))))
        fill = time.perf_counter() - t0
    rows: list[dict[str, float]] = []
    for i in range(cfg.steps):
        t0 = time.perf_counter()
        tr.train_step()
        if i >= args.warmup:
            rows.append({**dict(tr.profile), "step": time.perf_counter() - t0})
    tr.close()
    return {**{k: statistics.median(r.get(k, 0.0) for r in rows) for k in (*PARTS, "step")}, "fill": fill,
            "styles": float(len(tr.styles))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (the whole-style cache fills)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="profile only the variants whose name contains this text")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, changes in VARIANTS.items():
            if args.only not in name:
                continue
            if changes.get("precision") == "bf16" and not native_bf16(torch.device("cpu")):
                print(f"{name}: skipped — this CPU has no native bf16 (autocast would emulate it, slower than fp32)")
                continue
            results[name] = profile(name, changes, args, Path(tmp))
    print(f"seconds per step, median of {args.steps} ({args.size} px crops, batch {args.batch}, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f}):\n")
    print("| variant | " + " | ".join(PARTS) + " | whole step | filling the style cache once |\n|---|"
          + "---:|" * (len(PARTS) + 2))
    for name, r in results.items():
        fill = f"{r['fill']:.0f} s for {r['styles']:.0f} styles" if r["fill"] else "—"
        print(f"| {name} | " + " | ".join(f"{r[p]:.3f}" for p in PARTS) + f" | **{r['step']:.3f}** | {fill} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
