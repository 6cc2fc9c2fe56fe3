"""Batch stylisation from Python: :func:`stylize_many` (inputs, styles, a folder) and
:func:`run_batch` (a planned list of jobs), on the local engine or on Ray."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from semstyle.batch.distributed import RayOptions, run_ray
from semstyle.batch.jobs import BatchJob, BatchOptions, ReportRow, expand_inputs, pending, plan
from semstyle.batch.local import run_local
from semstyle.batch.report import REPORT_NAME, Report
from semstyle.config import ENGINES, StylizeConfig
from semstyle.pipelines.stylize import Stylizer

log = logging.getLogger(__name__)

PathSpec = str | os.PathLike[str]


@dataclass(frozen=True)
class BatchResult:
    """What a batch did: one row per job, and where the report is."""

    rows: list[ReportRow]  # in the order they finished
    report: Path  # the CSV report (OUTDIR/report.csv unless told otherwise)

    @property
    def failed(self) -> int:
        return sum(r.status == "error" for r in self.rows)

    @property
    def written(self) -> int:
        return sum(r.status == "ok" for r in self.rows)

    @property
    def skipped(self) -> int:
        return sum(r.status == "skipped" for r in self.rows)


def run_batch(
    jobs: Sequence[BatchJob],
    *,
    config: StylizeConfig,
    options: BatchOptions | None = None,
    engine: str = "local",
    ray: RayOptions | None = None,
    stylizer: Stylizer | None = None,
    report: Path | None = None,
    callback: Callable[[ReportRow], None] | None = None,
) -> BatchResult:
    """Run ``jobs``: skip those whose output exists (unless ``options.overwrite``), stylise the rest
    on ``engine``, record every job in the report (rewritten as rows arrive, so an interrupted run
    leaves one), and return the rows. A failed job is a row, never an exception.

    Args:
        stylizer: the local engine's Stylizer (built from ``config`` when None); Ray workers build their own.
        callback: called with each row as its job ends (in this thread).
    """
    # 1. check the request
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if not jobs:
        raise ValueError("run_batch needs at least one job")
    options = options or BatchOptions()
    ray = ray or RayOptions()
    out = Report(report or jobs[0].output.parent / REPORT_NAME)

    def on_row(row: ReportRow) -> None:
        out.add(row)
        if callback is not None:
            callback(row)

    # 2. what is left to do (a rerun resumes)
    todo, done = pending(jobs, options.overwrite)
    for row in done:
        on_row(row)
    # 3. the work, on the chosen engine; the report is written however it ends
    try:
        if todo and engine == "ray":
            run_ray(todo, config, options, ray, on_row)
        elif todo:
            run_local(todo, stylizer or Stylizer.from_config(config), options, on_row)
    finally:
        out.write()
        sweep(todo)
    log.info("batch: %d written, %d skipped, %d failed; report %s", out.count("ok"), out.count("skipped"),
             out.count("error"), out.path)
    return BatchResult(list(out.rows), out.path)


def stylize_many(
    inputs: PathSpec | Sequence[PathSpec],
    styles: PathSpec | Sequence[PathSpec],
    out_dir: PathSpec,
    *,
    config: StylizeConfig | None = None,
    engine: str = "local",
    workers: int = 1,
    batch_size: int = 4,
    ray_address: str | None = None,
    gpus_per_worker: float = 0.0,
    overwrite: bool = False,
    callback: Callable[[ReportRow], None] | None = None,
) -> BatchResult:
    """Stylise every input with every style into ``out_dir`` as ``<input>__<style>.png``.

    >>> stylize_many("photos/*.jpg", "styles/", "out/", engine="ray", workers=2)  # doctest: +SKIP

    Args:
        inputs, styles: a file, a folder, a glob pattern, or a list of those.
        engine: "local" (this process) or "ray" (``workers`` actors on the cluster at ``ray_address``,
            or on a local one started for the call).
        overwrite: redo outputs that exist (default: skip them, so a rerun resumes an interrupted batch).
    Returns:
        a :class:`BatchResult`; ``out_dir/report.csv`` holds the same rows.
    """
    contents = _expand_all(inputs, "content")
    style_paths = _expand_all(styles, "style")
    jobs = plan(contents, style_paths, Path(out_dir))
    return run_batch(
        jobs, config=config or StylizeConfig(), options=BatchOptions(overwrite=overwrite), engine=engine,
        ray=RayOptions(address=ray_address, workers=workers, batch_size=batch_size, gpus_per_worker=gpus_per_worker),
        callback=callback,
    )


def sweep(jobs: Sequence[BatchJob]) -> None:
    """Remove the temporary files of writes that were killed half-way (a Ray worker's process, or
    this one on a previous run); the outputs themselves are only ever renamed into place whole."""
    for job in jobs:
        for tmp in job.output.parent.glob(f".{job.output.stem}.*{job.output.suffix}"):
            tmp.unlink(missing_ok=True)


def _expand_all(spec: PathSpec | Sequence[PathSpec], what: str) -> list[Path]:
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    return [p for s in specs for p in expand_inputs(s, what)]


__all__ = ["BatchResult", "run_batch", "stylize_many"]
