"""``semstyle train`` that can freeze itself at a chosen point of a checkpoint write (tests/test_train_kill.py).

    python tests/train_kill_worker.py [--stop STEP:STAGE] train ARGS...

runs the real console entry point (``semstyle.cli.main.run``) on ``train ARGS...``. With ``--stop`` the
writer of checkpoint ``STEP`` prints ``STOPPED STEP:STAGE`` on stdout and sends itself SIGSTOP at:

* ``tmp``: two files written into the checkpoint's temporary folder, the rest not yet;
* ``renamed``: the folder renamed into place, ``latest`` still naming the previous checkpoint;
* ``pointed``: ``latest`` names the new checkpoint, older ones not yet pruned.

The test then kills the frozen process with SIGKILL, so "killed during a checkpoint write" happens at
exactly that point instead of at whatever moment a timer hits. Only the names ``save_file`` and ``os``
inside ``semstyle.training.checkpoint`` are wrapped, in this process only; the writer itself is unchanged.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

STAGES = ("tmp", "renamed", "pointed")


def _freeze(step: int, stage: str) -> None:
    print(f"STOPPED {step}:{stage}", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)


def install(step: int, stage: str) -> None:
    """Wrap the checkpoint writer's ``save_file`` and ``os.replace`` to freeze at ``stage`` of checkpoint ``step``."""
    from semstyle.training import checkpoint as ck

    name = f"step_{step:07d}"
    real_save = ck.save_file

    def save_file(tensors: Any, path: str, *args: Any, **kwargs: Any) -> None:
        real_save(tensors, path, *args, **kwargs)
        folder = Path(path).parent
        if stage == "tmp" and folder.name.startswith(f".{name}.") and len(list(folder.iterdir())) == 2:
            _freeze(step, stage)

    class _Os:  # the os module, but replace() may freeze right after it has done its work
        def __getattr__(self, attr: str) -> Any:
            return getattr(os, attr)

        def replace(self, src: str | Path, dst: str | Path) -> None:
            os.replace(src, dst)
            dst = Path(dst)
            if stage == "renamed" and dst.name == name:
                _freeze(step, stage)
            if stage == "pointed" and dst.name == "latest" and dst.read_text().strip() == name:
                _freeze(step, stage)

    vars(ck)["save_file"] = save_file
    vars(ck)["os"] = _Os()


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--stop"]:
        step, stage = argv[1].split(":")
        if stage not in STAGES:
            raise SystemExit(f"unknown stage {stage!r}; known: {STAGES}")
        install(int(step), stage)
        argv = argv[2:]
    from semstyle.cli.main import run

    sys.argv = [sys.argv[0], *argv]
    run()


if __name__ == "__main__":
    main()
