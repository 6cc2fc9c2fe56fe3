"""Run under torchrun by tests/test_training.py: ``semstyle train`` itself, recording each rank's weights.

    python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py FOLDER train ARGS...

runs the CLI's ``main`` on ``train ARGS...`` with the trainer class wrapped (in this process only) so that each
rank writes FOLDER/rank<R>_start.safetensors once it is built (after DDP's broadcast) and FOLDER/rank<R>.safetensors
when it closes: the decoder's and the discriminator's parameters as this process holds them. The test checks that
DDP kept every rank's copy identical (ranks see different crops and start with different discriminator
initialisations, so ranks that trained alone would differ) and that training moved them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from semstyle.training import trainer as trainer_module


def _params(tr: trainer_module.Trainer) -> dict[str, torch.Tensor]:
    params = {f"decoder.{k}": v for k, v in trainer_module._unwrap(tr.decoder).named_parameters()}
    params.update({f"disc.{k}": v for k, v in trainer_module._unwrap(tr.disc).named_parameters()})
    return {k: v.detach().clone().contiguous() for k, v in params.items()}


def main() -> int:
    folder = Path(sys.argv[1])
    rank = os.environ["RANK"]
    torch.set_num_threads(1)

    class Recording(trainer_module.Trainer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            save_file(_params(self), str(folder / f"rank{rank}_start.safetensors"))

        def close(self) -> None:
            save_file(_params(self), str(folder / f"rank{rank}.safetensors"))
            super().close()

    trainer_module.Trainer = Recording  # the CLI looks the class up per call
    from semstyle.cli.main import main as cli

    return cli(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
