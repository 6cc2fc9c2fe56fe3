"""The Ray engine on a local 2-CPU cluster: the same pixels and report as the local engine, a killed
worker retried by Ray, the CLI's ``--engine ray``, and ``--ray-address`` joining a cluster that
``ray start --head`` runs."""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import content_array, warm_style_array
from PIL import Image

from semstyle import StylizeConfig
from semstyle.batch import REPORT_NAME, RayOptions, ReportRow, plan, read_report, run_batch
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.errors import InputError

ray = pytest.importorskip("ray", reason="the distributed extra (ray[data]) is installed by `make setup`")
pytestmark = pytest.mark.slow
# fp32: the local engine and the Ray workers run other thread counts, and compare within a grey level
CFG = StylizeConfig(NetworkConfig(device="cpu", precision="fp32"), StylizeOptions(size=64, style_size=64))


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local cluster for the module (starting one takes seconds); the engine joins it. Its one GPU is
    logical (Ray schedules on it; torch, finding no CUDA, runs on the CPU)."""
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ray_inputs")
    folder = root / "contents"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(content_array(80, 64, seed=40 + i)).save(folder / f"c{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    style = root / "style.png"
    Image.fromarray(warm_style_array(96, 96)).save(style)
    return folder, style


def _jobs(inputs: tuple[Path, Path], out: Path):
    folder, style = inputs
    return plan(sorted(folder.iterdir()), [style], out)


def _pixels(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)).astype(int) for p in sorted(out.glob("*.png"))}


def _same_rows(a: list[ReportRow], b: list[ReportRow]) -> None:
    def key(rows: list[ReportRow]) -> list[tuple[str, str, str]]:
        return sorted((Path(r.output).name, r.status, r.message) for r in rows)

    assert key(a) == key(b)


def test_ray_engine_matches_the_local_engine(cluster: None, inputs: tuple[Path, Path], tmp_path: Path) -> None:
    local = run_batch(_jobs(inputs, tmp_path / "local"), config=CFG)
    far = run_batch(_jobs(inputs, tmp_path / "ray"), config=CFG, engine="ray",
                    ray=RayOptions(workers=2, batch_size=2))
    assert local.written == far.written == 5 and local.failed == far.failed == 1
    _same_rows(local.rows, far.rows)
    _same_rows(read_report(tmp_path / "ray" / REPORT_NAME), far.rows)
    a, b = _pixels(tmp_path / "local"), _pixels(tmp_path / "ray")
    assert a.keys() == b.keys() and len(a) == 5
    for name in a:
        assert np.abs(a[name] - b[name]).max() <= 1, name
    workers = {r.worker for r in far.rows}
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)  # the driver stylised nothing
    # 6 jobs in batches of 2 are 3 batches for 2 workers; both start before the first batch goes out and take one at
    # a time, so the first two batches go to different workers
    assert len(workers) == min(2, math.ceil(6 / 2)) == 2, far.rows
    broken = next(r for r in far.rows if r.status == "error")
    assert "broken.jpg" in broken.input and broken.message and "Traceback" not in broken.message


def test_a_killed_worker_is_restarted_and_its_batch_retried(cluster: None, inputs: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    folder, style = inputs
    jobs = plan([folder / f"c{i}.png" for i in range(5)], [style], tmp_path / "out")
    jobs += plan([folder / f"c{i}.png" for i in range(5)], [style], tmp_path / "out2")  # 10 jobs
    rows: list[ReportRow] = []
    first = threading.Event()

    def on_row(row: ReportRow) -> None:
        rows.append(row)
        first.set()

    done: list[object] = []
    runner = threading.Thread(target=lambda: done.append(run_batch(
        jobs, config=CFG, engine="ray", ray=RayOptions(workers=1, batch_size=2), callback=on_row,
        report=tmp_path / REPORT_NAME)))
    runner.start()
    assert first.wait(180), "the first batch never finished"
    victim = int(rows[0].worker.split(":")[1])
    os.kill(victim, signal.SIGKILL)  # the actor's process, mid-run
    runner.join(300)
    assert not runner.is_alive() and done, "the batch did not finish after its worker was killed"
    assert sorted(Path(r.output).parent.name + "/" + Path(r.output).name for r in rows) == \
        sorted(j.output.parent.name + "/" + j.output.name for j in jobs)  # every job exactly once
    assert all(r.status == "ok" for r in rows), [r.message for r in rows if r.status != "ok"]
    assert {int(r.worker.split(":")[1]) for r in rows} - {victim}, "no restarted worker took over"
    for job in jobs:
        assert Image.open(job.output).size == (64, 51)
    leftovers = [p.name for d in ("out", "out2") for p in (tmp_path / d).iterdir() if p.name.startswith(".")]
    assert not leftovers  # a write killed half-way leaves its temporary file; the batch sweeps it at the end


def test_cli_engine_ray_writes_the_report_and_exits_1_on_a_bad_input(
    cluster: None, inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, style = inputs
    out = tmp_path / "out"
    argv = ["stylize", str(folder / "*"), str(style), "-o", str(out), "--size", "64", "--style-size", "64",
            "--engine", "ray", "--workers", "1", "--batch-size", "3"]
    assert main(argv) == 1
    got = capsys.readouterr()
    errors = [ln for ln in got.err.splitlines() if ln.startswith("semstyle: error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0]
    assert "wrote 5 of 6 images" in got.out and "Traceback" not in got.err
    assert {r.status for r in read_report(out / REPORT_NAME)} == {"ok", "error"}
    assert main(argv) == 1  # a rerun skips the five written and retries only the broken one
    assert sorted(r.status for r in read_report(out / REPORT_NAME)) == ["error"] + ["skipped"] * 5
    with pytest.raises(InputError, match="need 3 CPUs, but the Ray cluster has 2"):
        run_batch(_jobs(inputs, tmp_path / "x"), config=CFG, engine="ray", ray=RayOptions(workers=3))


def test_gpus_per_worker_are_requested_from_the_cluster(cluster: None, inputs: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    seen: list[str] = []
    res = run_batch(_jobs(inputs, tmp_path / "gpu")[1:3], config=CFG, engine="ray",
                    ray=RayOptions(workers=1, gpus_per_worker=1, cpus_per_worker=1),
                    callback=lambda r: seen.append(r.worker))
    assert res.written == 2 and len(set(seen)) == 1
    with pytest.raises(InputError, match="2 workers × 1 GPUs need 2 GPUs, but the Ray cluster has 1"):
        run_batch(_jobs(inputs, tmp_path / "gpu2"), config=CFG, engine="ray",
                  ray=RayOptions(workers=2, gpus_per_worker=1, cpus_per_worker=1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ray_address_joins_a_cluster_started_by_ray_start(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    if ray.is_initialized():
        ray.shutdown()  # this test drives its own cluster, from other processes
    folder, style = inputs
    port = _free_port()
    bindir = Path(sys.executable).parent
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    head = subprocess.Popen(
        [str(bindir / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--node-ip-address=127.0.0.1", "--include-dashboard=false", f"--temp-dir={temp}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "semstyle", "stylize", str(folder / "c[01].png"), str(style), "-o", str(out),
               "--size", "64", "--style-size", "64", "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"]
        deadline = time.monotonic() + 120
        while True:  # the head takes a few seconds to come up
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env)
            if proc.returncode == 0 or time.monotonic() > deadline or "cannot join" not in proc.stderr:
                break
            time.sleep(3)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "wrote 2 of 2 images" in proc.stdout
        rows = read_report(out / REPORT_NAME)
        assert [r.status for r in rows] == ["ok", "ok"]
        cmd[cmd.index(str(out))] = str(tmp_path / "out2")  # new outputs: with nothing left to do Ray is never asked
        bad = subprocess.run([*cmd[:-1], f"127.0.0.1:{_free_port()}"], capture_output=True, text=True, timeout=120,
                             env=env)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and "cannot join the Ray cluster" in lines[-1], bad.stderr[-2000:]
    finally:
        head.send_signal(signal.SIGINT)  # Ctrl-C, as `ray start --block` asks: ~1 s (SIGTERM waits ~30 s to stop)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def no_usage_stats() -> Iterator[None]:
    """Ray's usage statistics off for every cluster and Ray Data run of this module (an autouse fixture: it is set
    up before ``cluster``, wherever it is defined)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        yield


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_without_an_address_the_engine_starts_and_stops_its_own_cluster(
    inputs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ray.is_initialized():
        ray.shutdown()  # the module's cluster: the engine must start its own
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED")  # the engine turns usage statistics off itself ...
    seen: list[tuple[object, str | None]] = []
    real_init = ray.init

    def init(*args: object, **kwargs: object) -> object:
        seen.append((kwargs.get("address"), os.environ.get("RAY_USAGE_STATS_ENABLED")))
        return real_init(*args, **kwargs)

    monkeypatch.setattr(ray, "init", init)
    folder, style = inputs
    jobs = plan([folder / "c0.png", folder / "c1.png"], [style], tmp_path / "out")
    res = run_batch(jobs, config=CFG, engine="ray", ray=RayOptions(batch_size=2))
    assert seen == [("local", "0")]  # ... before its cluster starts
    assert res.written == 2 and [r.status for r in res.rows] == ["ok", "ok"]
    assert {Image.open(j.output).size for j in jobs} == {(64, 51)}
    assert not ray.is_initialized()  # stopped at the end
    worker = int(res.rows[0].worker.split(":")[1])
    assert worker != os.getpid() and _gone(worker, 60), "the engine's worker outlived its cluster"
