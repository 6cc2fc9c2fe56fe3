"""Ship a training checkpoint inside the package: fp16 safetensors + MANIFEST.json (sha256, record).

    .venv/bin/python scripts/ship_weights.py runs/finetune [--step N]          # semstyle train
    .venv/bin/python scripts/ship_weights.py runs/distill2 --kind fast         # semstyle distill (2 stages)
    .venv/bin/python scripts/ship_weights.py runs/judge --kind judge           # discriminator-only stage
    .venv/bin/python scripts/ship_weights.py runs/temporal --kind temporal     # the stable-video decoder

Writes src/semstyle/weights/{decoder_finetuned,discriminator}.safetensors (for ``--kind fast``,
fast_{encoder,decoder}.safetensors; for ``--kind judge``, only the discriminator; for ``--kind temporal``,
decoder_temporal.safetensors) and records in the
manifest, next to what it already lists,
the checkpoint's step, config, and the wall time summed from metrics.jsonl — over every stage when
the run was warm-started from another (``init_from``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from semstyle.models.weights import sha256_of
from semstyle.training.checkpoint import checkpoint_of, latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "src" / "semstyle" / "weights"
# kind → (checkpoint role → (manifest key, shipped file), manifest key of the record, command that trained it)
KINDS = {
    "finetune": ({"decoder": ("decoder", "decoder_finetuned.safetensors"),
                  "discriminator": ("discriminator", "discriminator.safetensors")},
                 "record", "semstyle train --config configs/recipe_long.yaml"),
    "judge": ({"discriminator": ("discriminator", "discriminator.safetensors")}, "judge_record",
              "semstyle train --config configs/judge.yaml (decoder fixed: train_generator false)"),
    "fast": ({"fast_encoder": ("fast_encoder", "fast_encoder.safetensors"),
              "fast_decoder": ("fast_decoder", "fast_decoder.safetensors")},
             "fast_record",
             "semstyle distill --config configs/distill.yaml, then --config configs/distill_stage2.yaml"),
    "temporal": ({"decoder": ("decoder_temporal", "decoder_temporal.safetensors")}, "temporal_record",
                 "semstyle train --config configs/temporal.yaml"),
}


def wall_time(run: Path, step: int) -> float:
    """Training seconds up to ``step``, summed over resumed segments (each restarts its clock)."""
    total, last = 0.0, 0.0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["step"] > step:
            break
        if row["time"] < last:  # a new segment after a resume
            total += last
        last = row["time"]
    return round(total + last, 1)


def stages(run: Path, step: int, config: dict[str, object]) -> list[dict[str, object]]:
    """Step and wall time of the run and of each run it was warm-started from (``init_from``), earliest first."""
    chain = [{"run": str(run), "step": step, "wall_time_s": wall_time(run, step)}]
    src = str(config.get("init_from") or "")
    if src:
        ckpt = checkpoint_of(Path(src))
        if ckpt is None:
            raise SystemExit(f"{run} was warm-started from {src}, which has no checkpoint left to record")
        prev = json.loads((ckpt / "state.json").read_text())
        chain = stages(ckpt.parent.parent, int(prev["step"]), prev["config"]) + chain
    return chain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--step", type=int, help="checkpoint step (default: latest)")
    ap.add_argument("--kind", choices=KINDS, help="what the run trained (default: read from the checkpoint's files)")
    args = ap.parse_args()
    ckpt = args.run / "checkpoints" / f"step_{args.step:07d}" if args.step else latest_checkpoint(args.run)
    if ckpt is None or not (ckpt / "state.json").is_file():
        raise SystemExit(f"no checkpoint in {args.run}")
    state = json.loads((ckpt / "state.json").read_text())
    args.kind = args.kind or ("fast" if (ckpt / "fast_encoder.safetensors").is_file() else "finetune")
    files, record_key, command = KINDS[args.kind]
    missing = [f"{role}.safetensors" for role in files if not (ckpt / f"{role}.safetensors").is_file()]
    if missing:
        raise SystemExit(f"{ckpt} has no {', '.join(missing)}: is it a '{args.kind}' run?")
    DEST.mkdir(parents=True, exist_ok=True)
    path = DEST / "MANIFEST.json"
    manifest: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    for role, (key, name) in files.items():
        src = ckpt / f"{role}.safetensors"
        if role == "decoder" and (ckpt / "decoder_ema.safetensors").is_file():
            src = ckpt / "decoder_ema.safetensors"  # a run with `ema` ships the moving average, as it was evaluated
        sd = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(src)).items()}
        fd, tmp = tempfile.mkstemp(dir=DEST, suffix=".safetensors")
        os.close(fd)
        save_file(sd, tmp, metadata={"source": f"semstyle {args.kind}", "step": str(state["step"])})
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; shipped weights must be readable by every user
        os.replace(tmp, DEST / name)
        manifest[key] = {
            "file": name,
            "sha256": sha256_of(DEST / name),
            "dtype": "float16",
            "bytes": (DEST / name).stat().st_size,
        }
    chain = stages(args.run, int(state["step"]), state["config"])
    manifest[record_key] = {
        "step": sum(int(st["step"]) for st in chain),  # optimiser steps over all stages
        "wall_time_s": round(sum(float(st["wall_time_s"]) for st in chain), 1),
        "command": command,
        "config": state["config"],
        "stages": chain,
    }
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"shipped step {state['step']} to {DEST}")


if __name__ == "__main__":
    main()
