"""Run under torchrun by tests/test_training.py: train a few steps, then save this rank's weights.

argv: a JSON TrainConfig mapping and a folder; writes <folder>/rank<R>.safetensors with the decoder's
and the discriminator's parameters as this process holds them after training, so the test can check
that DDP kept every rank's copy identical (ranks see different crops and start with different
discriminator initialisations, so ranks that trained alone would differ).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from semstyle.training.config import TrainConfig
from semstyle.training.trainer import Trainer, _unwrap


def main() -> None:
    cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
    folder = Path(sys.argv[2])
    torch.set_num_threads(1)
    tr = Trainer(cfg)
    tr.fit(progress=False)
    params = {f"decoder.{k}": v for k, v in _unwrap(tr.decoder).named_parameters()}
    params.update({f"disc.{k}": v for k, v in _unwrap(tr.disc).named_parameters()})
    save_file({k: v.detach().contiguous() for k, v in params.items()},
              str(folder / f"rank{os.environ['RANK']}.safetensors"))
    tr.close()


if __name__ == "__main__":
    main()
