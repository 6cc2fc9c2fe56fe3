"""Training survives kill -9 (issue 17, item 6).

``semstyle train`` runs in a subprocess on the tiny synthetic folders of tests/test_training.py and is
killed with SIGKILL twice, resuming with ``--resume`` after each kill, in an order the seeded RNG
fixes. Every kill waits for an event, never for a clock: one lands inside a checkpoint write, where
tests/train_kill_worker.py freezes the trainer (SIGSTOP) with the folder renamed into place but
``latest`` still naming the previous checkpoint, so the resumed run starts from that one and must
later replace the orphan; the other lands as soon as the metrics row of a step past the last
checkpoint appears (in the TensorBoard write or the next step, wherever the trainer then is), so the
resumed run must drop that row. An uninterrupted run of the same config runs alongside. Then:

(a) the final checkpoints are identical: every module (decoder, discriminator, EMA decoder) and both
    optimisers' tensors are bitwise equal, and so are the optimisers' scalars and the torch RNG state.
    Exact equality holds because every step is a pure function of (weights, optimiser state, seed,
    step) on one CPU thread, and the checkpoint stores all of it losslessly;
(b) the loss curve is the same: metrics.jsonl has one row per step 1…N, none duplicated or missing,
    with the same values (only the wall-clock ``time`` differs), and TensorBoard holds the same
    scalars at the same steps;
(c) each resume starts from the step the last checkpoint holds, and that step is at most one
    checkpoint interval behind the last step the killed trainer had finished;
and the checkpoint folder is left as clean as the uninterrupted run's (no stray temporary folders).

What a kill at each point of a checkpoint write leaves behind (a half-written temporary folder; a
renamed folder that ``latest`` does not name yet; ``latest`` updated, old checkpoints not pruned) is
checked on its own, in a forked writer killed at each point, without a trainer.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from test_training import SIZE, make_data
from torch import nn
from train_kill_worker import STAGES, install

from semstyle.training.checkpoint import (
    append_metrics,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    trim_metrics,
)
from semstyle.training.config import TrainConfig
from semstyle.training.trainer import Trainer

WORKER = Path(__file__).with_name("train_kill_worker.py")
STEPS, EVERY = 8, 2  # a checkpoint every 2; SEED's plan kills in checkpoint 4, then after step 5: 3 steps to spare
KINDS = ["logged", "renamed"]  # one life per kill, shuffled by the seeded RNG
SEED = 17
TIMEOUT = 120.0  # seconds any one life may take before the test gives up on it


@dataclass
class Life:
    kind: str  # how it ended: logged / renamed kill, or "done"
    started_at: int  # the step it resumed from (0: a fresh start)
    target: int  # logged: the step whose metrics row triggers the kill; renamed: the checkpoint frozen in
    finished: int = 0  # the last step with a metrics row when it was killed


def _config(data: Path, out: Path) -> dict[str, Any]:
    return dict(content_dir=str(data / "content"), style_dir=str(data / "style"), out=str(out), steps=STEPS,
                size=SIZE, batch=2, lr=1e-4, log_every=1, ckpt_every=EVERY, keep_last=2, ema=0.9, image_every=0,
                precision="fp32")


def _start(cfg: Path, log: Path, resume: bool, stop: str | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(WORKER), *(["--stop", stop] if stop else []),
           "train", "--config", str(cfg), "--no-progress", "-v", *(["--resume"] if resume else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # same arithmetic in every process
    with open(log, "w") as err:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)


def _fail(proc: subprocess.Popen[str], log: Path, why: str) -> None:
    proc.kill()
    proc.wait()
    pytest.fail(f"{why} (exit status {proc.returncode}); its stderr ends:\n{log.read_text()[-3000:]}")


def _rows(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def _last_row(run: Path) -> int:
    """The last step with a complete metrics row (a line being appended, or torn by the kill, does not count)."""
    path = run / "metrics.jsonl"
    steps = [0]
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            steps.append(int(json.loads(line)["step"]))
        except json.JSONDecodeError:
            pass
    return max(steps)


def _wait_for_stop(proc: subprocess.Popen[str], log: Path, expect: str) -> None:
    """Block until the worker reports it froze itself at ``expect``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == f"STOPPED {expect}":
                return
            if not line:
                _fail(proc, log, f"the trainer ended before freezing at {expect}")
    _fail(proc, log, f"the trainer did not freeze at {expect} within {TIMEOUT:.0f} s")


def _wait_for_row(proc: subprocess.Popen[str], log: Path, run: Path, resume: int, step: int) -> None:
    """Block until this life has written the metrics row of ``step``. A resumed life first says so on
    stderr, after it has dropped the rows its predecessor wrote past the checkpoint; only then can a
    row of ``step`` be its own."""
    deadline = time.monotonic() + TIMEOUT
    while (resume and f" at step {resume}" not in log.read_text()) or _last_row(run) < step:
        if proc.poll() is not None or time.monotonic() > deadline:
            _fail(proc, log, f"the trainer never logged step {step}")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def _checkpoint_step(run: Path) -> int:
    ckpt = latest_checkpoint(run)
    return 0 if ckpt is None else int(json.loads((ckpt / "state.json").read_text())["step"])


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard's view of the run's scalars: every event file read in order, purges applied."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    ev.Reload()
    return {tag: [(e.step, e.value) for e in ev.Scalars(tag)] for tag in ev.Tags()["scalars"]}


def _assert_same_checkpoint(got: Path, want: Path) -> None:
    files = sorted(p.name for p in want.iterdir())
    assert sorted(p.name for p in got.iterdir()) == files
    assert {"decoder.safetensors", "decoder_ema.safetensors", "discriminator.safetensors",
            "optim_g.safetensors", "optim_d.safetensors", "state.json"} == set(files)
    for name in files:
        if name.endswith(".safetensors"):
            a, b = load_file(str(got / name)), load_file(str(want / name))
            assert a.keys() == b.keys(), name
            for k in b:
                assert torch.equal(a[k], b[k]), f"{name}: {k} differs from the uninterrupted run"
    sa, sb = (json.loads((p / "state.json").read_text()) for p in (got, want))
    sa["config"].pop("out")
    sb["config"].pop("out")
    assert sa == sb  # step, optimiser scalars (lr, betas, ...), torch RNG state, config


def _live(tmp_path: Path, run: Path, i: int, kind: str) -> tuple[Life, subprocess.Popen[str]]:
    """Life ``i`` of the killed run: started (resumed after the first), then killed at its event (``kind``), or
    left to finish (``done``). Checks (c) for it."""
    at = _checkpoint_step(run)
    log = tmp_path / f"life{i}.log"
    assert (at > 0) == (i > 0)  # the first kill comes after the first checkpoint: every later life resumes
    proc: subprocess.Popen[str] | None = None
    try:
        if kind == "logged":  # a row past a checkpoint: the checkpoint at + EVERY is complete, then one more step
            life = Life(kind, at, at + EVERY + 1)
            proc = _start(tmp_path / "killed.json", log, resume=at > 0)
            _wait_for_row(proc, log, run, at, life.target)  # the event; the kill follows at once
            assert proc.poll() is None, "the trainer finished before the kill"
            _kill(proc)
        elif kind != "done":
            life = Life(kind, at, max(2 * EVERY, (at // EVERY + 1) * EVERY))  # the next checkpoint it writes
            proc = _start(tmp_path / "killed.json", log, resume=at > 0, stop=f"{life.target}:{kind}")
            _wait_for_stop(proc, log, f"{life.target}:{kind}")
            _kill(proc)
        else:
            life = Life(kind, at, STEPS)
            proc = _start(tmp_path / "killed.json", log, resume=True)
            stdout, _ = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, log.read_text()[-3000:]
            assert f"trained to step {STEPS}" in stdout
    except BaseException:
        if proc is not None and proc.poll() is None:  # a failed check leaves no trainer behind
            proc.kill()
            proc.wait()
        raise
    assert proc is not None
    assert life.target < STEPS or kind == "done"  # every kill lands before the end
    if at:  # (c) the trainer itself says where it resumed
        assert re.search(rf"resumed from \S+step_{at:07d} at step {at}\b", log.read_text()), log.read_text()
    life.finished = _last_row(run)
    resumed = _checkpoint_step(run)
    if kind == "renamed":  # complete but not yet named by `latest`: the previous one is used
        assert (run / "checkpoints" / f"step_{life.target:07d}" / "state.json").is_file()
        assert resumed == life.target - EVERY
    if kind != "done":  # (c) at most one checkpoint interval of work is lost
        assert life.finished >= life.target
        assert resumed >= life.finished - EVERY, life
    return life, proc


def _assert_same_curve(run: Path, ref: Path) -> None:
    """(b) the same loss curve, in metrics.jsonl and in TensorBoard."""
    got, want = _rows(run), _rows(ref)
    assert [r["step"] for r in got] == [r["step"] for r in want] == list(range(1, STEPS + 1))
    for a, b in zip(got, want):
        a.pop("time")
        b.pop("time")
        assert a == b, f"step {b['step']}"
    tb_got, tb_want = _scalars(run), _scalars(ref)
    assert tb_got.keys() == tb_want.keys() and "g/total" in tb_want
    for tag, events in tb_want.items():
        assert [s for s, _ in events] == list(range(1, STEPS + 1)), tag
        assert tb_got[tag] == events, tag


def test_training_killed_repeatedly_ends_exactly_like_an_uninterrupted_run(tmp_path: Path) -> None:
    data = make_data(tmp_path, ((48, 40), (40, 44), (44, 40), (40, 48)))
    ref, run = tmp_path / "ref", tmp_path / "killed"
    for name, out in (("ref", ref), ("killed", run)):
        (tmp_path / f"{name}.json").write_text(json.dumps(_config(data, out)))
    reference = _start(tmp_path / "ref.json", tmp_path / "ref.log", resume=False)  # runs alongside the kills

    rng = random.Random(SEED)
    kinds = rng.sample(KINDS, len(KINDS))
    lives: list[Life] = []
    proc = reference
    try:
        for i, kind in enumerate([*kinds, "done"]):
            life, proc = _live(tmp_path, run, i, kind)
            lives.append(life)
        assert reference.wait(timeout=TIMEOUT) == 0, (tmp_path / "ref.log").read_text()[-3000:]
    finally:
        for p in (reference, proc):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert sum(life.started_at > 0 for life in lives) == len(KINDS)  # every kill was followed by a resume

    # (a) identical final state
    _assert_same_checkpoint(run / "checkpoints" / f"step_{STEPS:07d}", ref / "checkpoints" / f"step_{STEPS:07d}")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == \
        sorted(p.name for p in (ref / "checkpoints").iterdir()) == ["latest", "step_0000006", "step_0000008"]
    _assert_same_curve(run, ref)  # (b)


# ---------------------------------------------------------------- what a kill leaves behind, one piece at a time
def test_a_torn_metrics_line_is_dropped_on_resume(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        append_metrics(tmp_path, {"step": step, "g/total": float(step)})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "g/to')  # the process died in the middle of this append
    trim_metrics(tmp_path, 2)
    append_metrics(tmp_path, {"step": 3, "g/total": 3.5})
    assert _rows(tmp_path) == [{"step": 1, "g/total": 1.0}, {"step": 2, "g/total": 2.0}, {"step": 3, "g/total": 3.5}]


def test_the_next_save_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    lin = nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters())
    save_checkpoint(tmp_path, 1, {"m": lin}, {"o": opt}, {})
    root = tmp_path / "checkpoints"
    (root / ".step_0000002.k1ll3d").mkdir()  # killed while writing checkpoint 2 ...
    (root / ".step_0000002.k1ll3d" / "m.safetensors").write_bytes(b"half")
    (root / ".latest.k1ll3d").write_text("step_00")  # ... and while replacing `latest` once
    assert latest_checkpoint(tmp_path) == root / "step_0000001"
    save_checkpoint(tmp_path, 2, {"m": lin}, {"o": opt}, {})
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_0000001", "step_0000002"]


def _wait_stopped(pid: int) -> None:
    """Block until the forked writer ``pid`` has frozen itself (SIGSTOP): an event, not a delay."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WUNTRACED | os.WNOHANG)
        if done and os.WIFSTOPPED(status):
            return
        if done:
            pytest.fail(f"the writer ended (status {status:#x}) before freezing")
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the writer did not freeze within {TIMEOUT:.0f} s")


@pytest.mark.parametrize("stage", STAGES)
def test_a_checkpoint_write_killed_at_each_point_leaves_a_run_that_resumes(stage: str, tmp_path: Path) -> None:
    """A writer forked from this process saves checkpoint 6 over checkpoints 2 and 4 (keeping 2), freezes itself at
    ``stage`` (tests/train_kill_worker.py) and is killed there with SIGKILL, so it leaves exactly what kill -9 at
    that point leaves. The run then loads the checkpoint it must, and the next save leaves the folder clean."""
    lin = nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters())
    weights = {}
    for step in (2, 4, 6):
        lin.weight.data += 1
        weights[step] = lin.weight.detach().clone()
        if step < 6:
            save_checkpoint(tmp_path, step, {"m": lin}, {"o": opt}, {"note": step}, keep_last=2)
    pid = os.fork()
    if pid == 0:  # the writer; it never returns to pytest
        try:
            install(6, stage)
            save_checkpoint(tmp_path, 6, {"m": lin}, {"o": opt}, {"note": 6}, keep_last=2)
        finally:
            os._exit(3)  # reached only when it did not freeze
    _wait_stopped(pid)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

    root = tmp_path / "checkpoints"
    at = {"tmp": 4, "renamed": 4, "pointed": 6}[stage]  # only a complete checkpoint named by `latest` counts
    assert latest_checkpoint(tmp_path) == root / f"step_{at:07d}"
    left = sorted(p.name for p in root.iterdir())
    if stage == "tmp":  # half written: two files of the temporary folder
        (tmp,) = root.glob(".step_0000006.*")
        assert len(list(tmp.iterdir())) == 2 and left == sorted(["latest", "step_0000002", "step_0000004", tmp.name])
    else:  # renamed: step 6 complete but not named; pointed: named, step 2 not yet pruned
        assert left == ["latest", "step_0000002", "step_0000004", "step_0000006"]
    fresh = nn.Linear(3, 2)
    state = load_checkpoint(latest_checkpoint(tmp_path), {"m": fresh}, {"o": torch.optim.Adam(fresh.parameters())})
    assert state["note"] == at and torch.equal(fresh.weight, weights[at])
    # the resumed run's next save: over an orphan step 6 (renamed), past the junk (tmp), pruning (pointed)
    nxt = at + 2
    fresh.weight.data += 10
    save_checkpoint(tmp_path, nxt, {"m": fresh}, {"o": torch.optim.Adam(fresh.parameters())}, {"note": nxt},
                    keep_last=2)
    assert sorted(p.name for p in root.iterdir()) == ["latest", f"step_{at:07d}", f"step_{nxt:07d}"]
    again = nn.Linear(3, 2)
    state = load_checkpoint(latest_checkpoint(tmp_path), {"m": again}, {"o": torch.optim.Adam(again.parameters())})
    assert state["note"] == nxt and torch.equal(again.weight, fresh.weight)


def test_the_cuda_loss_scale_is_checkpointed_and_restored(tmp_path: Path) -> None:
    # the trainer makes a GradScaler only on CUDA; a CPU one stands in for it here
    data = make_data(tmp_path, ((48, 40), (40, 44), (44, 40), (40, 48)))
    cfg = TrainConfig.from_dict({**_config(data, tmp_path / "run"), "steps": 2, "ema": 0.0})
    tr = Trainer(cfg)
    tr.scaler = torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=1)  # doubles at every update
    tr.fit(progress=False)
    tr.close()
    want = tr.scaler.state_dict()
    assert want["scale"] == 256.0 * 2**4  # 2 steps, each updating G and D
    resumed = Trainer(cfg, resume=True)
    resumed.scaler = torch.amp.GradScaler("cpu")
    resumed._resume()  # again, now that it has a scaler
    resumed.close()
    assert resumed.step == 2 and resumed.scaler.state_dict() == want
