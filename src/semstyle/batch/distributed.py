"""The Ray engine: the jobs as a ``ray.data`` dataset, stylised by ``map_batches`` over a pool of
actors. Each actor (a :class:`StylizeWorker`) builds its Stylizer once and runs the same
:class:`~semstyle.batch.jobs.JobRunner` as the local engine, writing each output atomically itself
(on a cluster, OUTDIR must be a folder every machine sees at the same path).

Faults: Ray Data creates its actors with ``max_restarts=-1`` and ``max_task_retries=-1``, so a
worker process that dies is restarted and its unfinished batch runs again; a job whose output an
earlier attempt already wrote is not redone. Ray is optional (``pip install semstyle[distributed]``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semstyle.batch.jobs import BatchJob, BatchOptions, JobRunner, ReportRow
from semstyle.batch.report import COLUMNS
from semstyle.config import StylizeConfig
from semstyle.errors import InputError
from semstyle.pipelines.stylize import Stylizer

log = logging.getLogger(__name__)
ACTOR_START_S = 600  # how long the workers may take to start (load their networks) before the batch fails


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs."""

    address: str | None = None  # an existing cluster ("auto" or HOST:PORT); None starts a local one
    workers: int = 1  # actors; each loads the networks once and works on one batch at a time
    batch_size: int = 4  # jobs per map_batches call (a worker killed mid-batch redoes only its unwritten jobs)
    cpus_per_worker: float | None = None  # None: the cluster's CPUs shared out (at least 1 each)
    gpus_per_worker: float = 0.0  # e.g. 1 (one GPU each) or 0.5 (two workers per GPU)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.cpus_per_worker is not None and not self.cpus_per_worker > 0:
            raise InputError(f"--cpus-per-worker must be positive, got {self.cpus_per_worker}")
        if not self.gpus_per_worker >= 0:
            raise InputError(f"--gpus-per-worker must be at least 0, got {self.gpus_per_worker}")


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'semstyle[distributed]' (or 'ray[data]')") from None
    return ray


class StylizeWorker:
    """The callable class ``map_batches`` runs on each actor: networks built once, then one row per job."""

    def __init__(self, config: StylizeConfig, options: BatchOptions, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        self.runner = JobRunner(Stylizer.from_config(config), options)
        log.info("worker %d ready (%d threads)", os.getpid(), threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.runner(BatchJob(Path(c), tuple(Path(s) for s in json.loads(st)), Path(o)))
                for c, st, o in zip(batch["content"], batch["styles"], batch["output"])]
        return {name: np.array([getattr(r, name) for r in rows]) for name in COLUMNS}


def _connect(ray: Any, address: str | None) -> bool:
    """Join ``address`` or start a local cluster; True when this call started Ray (and must stop it)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False, "include_dashboard": False}
    if address is None:  # "local": a new cluster, even where one runs already (ray.init() would join it)
        # our own short-lived cluster reports no usage statistics (whatever the Ray version's default), unless the
        # user chose otherwise; its processes inherit the variable
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address="local", **kwargs)
        return True
    kwargs.pop("include_dashboard")  # a property of the cluster, not of a client
    _probe(address)
    _token_auth()
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        hint = "is `ray start --head` running there?"
        raise InputError(f"cannot join the Ray cluster at '{address}': {first} ({hint})") from None
    return True


def _probe(address: str) -> None:
    """Fail in seconds when nothing listens at HOST:PORT (Ray itself retries for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        if address != "auto":
            raise InputError(f"--ray-address must be HOST:PORT (e.g. 10.0.0.5:6379) or auto, got {address!r}")
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise InputError(f"cannot join the Ray cluster at '{address}': {e.strerror or e} "
                         "(is `ray start --head` running there?)") from None


def _token_auth() -> None:
    """``ray start`` turns token authentication on, but a client joining with ``ray.init(address=…)``
    only sends the token when ``RAY_AUTH_MODE=token``: turn that on when a token is at hand
    (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``) and the mode is unset."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _resources(ray: Any, opts: RayOptions) -> tuple[float, float]:
    """CPUs per worker, and check the cluster has room for every worker (else Ray would wait forever)."""
    have = ray.cluster_resources()
    cpus_total, gpus_total = float(have.get("CPU", 0)), float(have.get("GPU", 0))
    cpus = opts.cpus_per_worker or max(1.0, math.floor(cpus_total / opts.workers))
    if opts.workers * cpus > cpus_total:
        raise InputError(f"{opts.workers} workers × {cpus:g} CPUs need {opts.workers * cpus:g} CPUs, but the Ray "
                         f"cluster has {cpus_total:g}; lower --workers or --cpus-per-worker")
    if opts.workers * opts.gpus_per_worker > gpus_total:
        raise InputError(f"{opts.workers} workers × {opts.gpus_per_worker:g} GPUs need "
                         f"{opts.workers * opts.gpus_per_worker:g} GPUs, but the Ray cluster has {gpus_total:g}")
    return cpus, opts.gpus_per_worker


def run_ray(jobs: Sequence[BatchJob], config: StylizeConfig, options: BatchOptions, opts: RayOptions,
            on_row: Callable[[ReportRow], None]) -> None:
    """Stylise ``jobs`` on a Ray cluster; every job ends as one ``on_row`` call (in the calling thread)."""
    ray = import_ray()
    if not jobs:
        return
    started = _connect(ray, opts.address)
    try:
        import ray.data

        cpus, gpus = _resources(ray, opts)
        if log.getEffectiveLevel() > logging.INFO:
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI shows its own bar
        items = [{"content": str(j.content), "styles": json.dumps([str(s) for s in j.styles]),
                  "output": str(j.output)} for j in jobs]
        ds = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / opts.batch_size))
        ds = ds.map_batches(
            StylizeWorker,
            fn_constructor_kwargs={"config": config, "options": options, "threads": int(cpus)},
            batch_size=opts.batch_size,
            # one batch at a time per worker: a busy worker holds no queued batch that an idle one could take
            compute=ray.data.ActorPoolStrategy(size=opts.workers, max_tasks_in_flight_per_actor=1),
            num_cpus=cpus,
            num_gpus=gpus or None,
            batch_format="numpy",
        )
        # every worker is ready before the first batch goes out: by default Ray Data hands batches to whichever
        # worker has loaded its networks first, so on a small batch the others never got any work
        ds.context.wait_for_min_actors_s = ACTOR_START_S
        for r in ds.iter_rows():
            on_row(ReportRow(str(r["input"]), str(r["style"]), str(r["output"]), str(r["status"]), str(r["message"]),
                             float(r["seconds"]), str(r["worker"])))
    finally:
        if started:
            ray.shutdown()


__all__ = ["RayOptions", "StylizeWorker", "import_ray", "run_ray"]
