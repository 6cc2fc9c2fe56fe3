"""What a batch is made of: its jobs (one output each), the options every job shares, the row each
job leaves in the report, and the code that turns one job into one written file.

Everything here is plain data (paths, numbers, strings) so a job travels to a Ray worker as it
is; both engines run :func:`run_job`, so they produce the same pixels.
"""

from __future__ import annotations

import glob
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from semstyle.errors import InputError
from semstyle.io.files import IMAGE_SUFFIXES, OUTPUT_FORMATS, list_images
from semstyle.io.images import check_output_path, load_image, resize_longest, save_image
from semstyle.pipelines.stylize import Stylizer
from semstyle.types import Callback, StylizeRequest, StylizeResult
from semstyle.viz import overlay, side_by_side

log = logging.getLogger(__name__)

STATUSES = ("ok", "skipped", "error")  # written; its output existed already; failed (message says why)
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class BatchJob:
    """One output image: a content, its styles (interpolated, then the region styles) and its path."""

    content: Path  # the content image
    styles: tuple[Path, ...]  # the styles it is interpolated from (positional first, then ``--style LABEL=PATH``)
    output: Path  # where the result goes (written atomically)


@dataclass(frozen=True)
class BatchOptions:
    """What every job of a batch shares besides the :class:`~semstyle.config.StylizeConfig` (networks, options)."""

    overwrite: bool = False  # replace existing outputs (default: skip them, so a rerun resumes)
    mask: Path | None = None  # one label map for every content (region i takes style i)
    content_labels: Path | None = None  # ``semantic="labels"``: the content's label map (same for every job)
    region_styles: dict[int, int] | None = None  # label → index into BatchJob.styles (``--style LABEL=PATH``)
    style_labels: tuple[Path | None, ...] | None = None  # ``semantic="labels"``: one map per style of a job
    style_weights: tuple[float, ...] | None = None  # interpolation weights over BatchJob.styles
    labels_dir: Path | None = None  # also write each job's colourised label maps here (``--save-labels``)
    content_scribbles: Path | None = None  # ``semantic="scribbles"``: strokes over the content (same for every job)
    style_scribbles: tuple[Path, ...] | None = None  # ``semantic="scribbles"``: one stroke picture per style

    def request(self, content: Any, styles: Sequence[Any]) -> StylizeRequest:
        """The request of one job: its (decoded) content and styles with the options every job shares."""
        return StylizeRequest(content, tuple(styles), self.style_weights, self.mask, self.region_styles,
                              self.content_labels, self.style_labels, self.content_scribbles, self.style_scribbles)


@dataclass(frozen=True)
class ReportRow:
    """One line of the batch report."""

    input: str  # the content image
    style: str  # its (first) style image
    output: str  # the output path
    status: str  # one of STATUSES
    message: str = ""  # why it failed, or what was skipped
    seconds: float = 0.0  # time spent on this job (load, stylise, write)
    worker: str = ""  # host:pid that did it

    @classmethod
    def of(cls, job: BatchJob, status: str, message: str = "", seconds: float = 0.0) -> ReportRow:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        return cls(str(job.content), str(job.styles[0]) if job.styles else "", str(job.output), status, message,
                   round(seconds, 3), worker_name())


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def expand_inputs(spec: str | os.PathLike, what: str = "content") -> list[Path]:
    """The images a CLI argument names: a file, a folder's images (sorted) or a glob's matches (sorted)."""
    path = Path(spec)
    if path.is_dir():
        found = list_images(path)
        if not found:
            raise InputError(f"{what} folder '{path}' holds no images ({', '.join(sorted(OUTPUT_FORMATS))})")
        return found
    if path.exists():
        return [path]
    if GLOB_CHARS & set(str(spec)):
        hits = sorted(Path(p) for p in glob.glob(str(spec), recursive=True))
        found = [p for p in hits if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not found:
            raise InputError(f"{what} pattern '{spec}' matches no images")
        return found
    raise InputError(f"{what} '{path}' does not exist")


def is_many(spec: str | os.PathLike) -> bool:
    """Whether a CONTENT/STYLE argument names several images (a folder or a glob)."""
    path = Path(spec)
    return path.is_dir() or (not path.exists() and bool(GLOB_CHARS & set(str(spec))))


def plan(contents: Sequence[Path], styles: Sequence[Path], out_dir: Path,
         region_styles: Sequence[Path] = ()) -> list[BatchJob]:
    """Every content × every style, style-major, as ``OUT/<content>__<style>.png``; ``region_styles``
    (``--style LABEL=PATH`` images) are appended to every job. Two jobs never share an output."""
    if out_dir.suffix.lower() in OUTPUT_FORMATS:
        raise InputError(f"a batch writes a folder of images, so -o must be a folder, not the file '{out_dir}'")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder '{out_dir}' is a file")
    if not contents:
        raise InputError("the batch has no content images")
    extra = tuple(region_styles)
    if not styles and not extra:
        raise InputError("give at least one STYLE image (or --style LABEL=PATH)")
    pairs: list[tuple[Path, tuple[Path, ...], str]] = []
    if styles:
        pairs = [(c, (s, *extra), f"{c.stem}__{s.stem}.png") for s in styles for c in contents]
    else:
        pairs = [(c, extra, f"{c.stem}__regions.png") for c in contents]
    jobs: list[BatchJob] = []
    seen: dict[Path, Path] = {}
    for content, job_styles, name in pairs:
        out = out_dir / name
        if out in seen:
            raise InputError(f"'{seen[out]}' and '{content}' would both write '{out}'; give inputs distinct names")
        seen[out] = content
        jobs.append(BatchJob(content, job_styles, out))
    return jobs


@dataclass
class JobRunner:
    """Stylises one job with a Stylizer built once; ``load`` decodes and resizes an image (the local
    engine hands in its prefetching loader). Image I/O and stylisation errors become report rows."""

    stylizer: Stylizer
    options: BatchOptions = field(default_factory=BatchOptions)
    load: Callable[[Path, str], Image.Image] | None = None  # (path, "content" | "style") → PIL image

    def _load(self, path: Path, what: str) -> Image.Image:
        if self.load is not None:
            return self.load(path, what)
        cfg = self.stylizer.defaults
        return resize_longest(load_image(path, cfg.max_pixels, f"{what} image"),
                              cfg.size if what == "content" else cfg.style_size)

    def stylize(self, job: BatchJob, callback: Callback | None = None) -> Image.Image:
        """The output picture of ``job`` (raises InputError and the like; nothing is written but the
        label maps of ``options.labels_dir``); ``callback`` gets the pipeline's progress events."""
        opts = self.options
        content = self._load(job.content, "content")
        styles = [self._load(s, "style") for s in job.styles]
        res = self.stylizer.run(opts.request(content, styles), callback=callback)
        if opts.labels_dir is not None:
            save_label_overlays(res, opts.labels_dir / f"{job.output.stem}_labels.png")
        return res.image

    def __call__(self, job: BatchJob) -> ReportRow:
        """Stylise and write ``job``; a failure is its row's message, never an exception."""
        t0 = time.perf_counter()
        if job.output.exists() and not self.options.overwrite:  # a retried task: an earlier attempt wrote it
            return ReportRow.of(job, "ok", "written by an earlier attempt", time.perf_counter() - t0)
        try:
            save_image(self.stylize(job), job.output, overwrite=self.options.overwrite)
        except Exception as e:  # one bad input never stops the batch
            log.debug("job %s failed", job.content, exc_info=True)
            return ReportRow.of(job, "error", describe(e), time.perf_counter() - t0)
        return ReportRow.of(job, "ok", "", time.perf_counter() - t0)


def save_label_overlays(res: StylizeResult, path: Path) -> None:
    """The regions a result used (``--save-labels``): content and styles with their labels coloured, side by side."""
    if res.content_labels is None or res.content is None:
        return
    pics = [overlay(res.content.resize(res.image.size), res.content_labels, res.from_colors)]
    pics += [overlay(im, lab, res.from_colors) for im, lab in zip(res.styles, res.style_labels) if lab is not None]
    save_image(side_by_side(pics), path, overwrite=True)


def describe(e: BaseException) -> str:
    """A failure as one line: the message of our own errors, the type too for anything else."""
    text = str(e).splitlines()[0] if str(e) else ""
    if isinstance(e, (InputError, ValueError)):
        return text
    if isinstance(e, OSError):
        return f"cannot read or write: {text}"
    if isinstance(e, MemoryError):
        return "out of memory; try a smaller --size"
    return f"{type(e).__name__}: {text}"


def pending(jobs: Sequence[BatchJob], overwrite: bool) -> tuple[list[BatchJob], list[ReportRow]]:
    """Split ``jobs`` into those still to do and the rows of those whose output exists (a rerun resumes)."""
    todo, done = [], []
    for job in jobs:
        if job.output.exists() and not overwrite:
            if job.output.is_dir():
                done.append(ReportRow.of(job, "error", f"output '{job.output}' is a folder"))
            else:
                done.append(ReportRow.of(job, "skipped", "output exists (pass --overwrite to redo it)"))
        else:
            check_output_path(job.output, overwrite=True)
            todo.append(job)
    return todo, done


__all__ = ["BatchJob", "BatchOptions", "JobRunner", "ReportRow", "STATUSES", "describe", "expand_inputs",
           "is_many", "pending", "plan", "save_label_overlays", "worker_name"]
