"""The local engine: one process, one Stylizer, image I/O overlapped with compute.

A thread pool decodes (and resizes) the contents of the next ``ahead`` jobs while the current one
is stylised, and writes outputs in the background (at most ``ahead`` pending). Style images are
decoded once and kept (the Stylizer caches their encodings too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from semstyle.batch.jobs import BatchJob, BatchOptions, JobRunner, ReportRow, describe
from semstyle.config import StylizeOptions
from semstyle.io import images as io_images  # looked up per call (tests spy on it)
from semstyle.pipelines.stylize import Stylizer

log = logging.getLogger(__name__)


class Prefetcher:
    """Background decoding of the contents ahead of ``jobs[i]`` and background writing of outputs."""

    def __init__(self, jobs: Sequence[BatchJob], cfg: StylizeOptions, cache: int, ahead: int = 2) -> None:
        self.jobs, self.cfg, self.cache, self.ahead = list(jobs), cfg, cache, ahead
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="semstyle-io")
        self.loads: dict[Path, Future[Image.Image]] = {}
        self.styles: dict[Path, Image.Image] = {}
        self.index = 0  # the job being stylised

    def _read(self, path: Path, size: int, what: str) -> Image.Image:
        return io_images.resize_longest(io_images.load_image(path, self.cfg.max_pixels, what), size)

    def start(self, i: int) -> None:
        """Job ``i`` begins: queue the decoding of its content and of the next ``ahead`` ones."""
        self.index = i
        for job in self.jobs[i:i + 1 + self.ahead]:
            if job.content not in self.loads:
                self.loads[job.content] = self.pool.submit(self._read, job.content, self.cfg.size, "content image")

    def load(self, path: Path, what: str) -> Image.Image:
        if what == "content":
            fut = self.loads.pop(path, None) or self.pool.submit(self._read, path, self.cfg.size, "content image")
            return fut.result()
        if path not in self.styles:
            if len(self.styles) >= max(1, self.cache):
                self.styles.pop(next(iter(self.styles)))
            self.styles[path] = self._read(path, self.cfg.style_size, "style image")
        return self.styles[path]

    def save(self, image: Image.Image, job: BatchJob, overwrite: bool) -> Future[object]:
        return self.pool.submit(io_images.save_image, image, job.output, overwrite=overwrite)

    def close(self) -> None:
        for fut in self.loads.values():
            fut.cancel()
        self.pool.shutdown(wait=True)


def run_local(jobs: Sequence[BatchJob], stylizer: Stylizer, options: BatchOptions,
              on_row: Callable[[ReportRow], None], ahead: int = 2) -> None:
    """Stylise ``jobs`` in order; every job ends as one ``on_row`` call (in the calling thread)."""
    io = Prefetcher(jobs, stylizer.defaults, stylizer.config.style_cache, ahead)
    runner = JobRunner(stylizer, options, load=io.load)
    saves: list[tuple[BatchJob, float, Future[object]]] = []

    def settle(keep: int) -> None:
        while len(saves) > keep:
            job, t0, fut = saves.pop(0)
            try:
                fut.result()
            except Exception as e:
                why = (e.strerror or str(e)) if isinstance(e, OSError) else describe(e)
                on_row(ReportRow.of(job, "error", f"cannot write the output: {why}", time.perf_counter() - t0))
            else:
                on_row(ReportRow.of(job, "ok", "", time.perf_counter() - t0))

    try:
        for i, job in enumerate(jobs):
            io.start(i)
            t0 = time.perf_counter()
            try:
                image = runner.stylize(job)
            except Exception as e:  # one bad input never stops the batch
                log.debug("job %s failed", job.content, exc_info=True)
                on_row(ReportRow.of(job, "error", describe(e), time.perf_counter() - t0))
            else:
                saves.append((job, t0, io.save(image, job, options.overwrite)))
            settle(keep=ahead)
    finally:  # also on Ctrl-C: the writes already started finish (each is atomic) and are reported
        try:
            settle(keep=0)
        finally:
            io.close()


__all__ = ["Prefetcher", "run_local"]
