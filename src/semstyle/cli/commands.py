"""The CLI's subcommands. Cheap checks (files exist, outputs are writable) run before the
networks load, so a typo fails in milliseconds."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from semstyle.config import StylizeConfig
from semstyle.errors import InputError
from semstyle.io.files import OUTPUT_FORMATS, list_images
from semstyle.io.images import check_output_path
from semstyle.io.labels import parse_label, read_names
from semstyle.types import ProgressEvent

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One output image: a content, its styles (interpolated) and where it goes."""

    content: Path
    styles: list[Path]
    output: Path


def config_from_args(args: argparse.Namespace) -> StylizeConfig:
    names = set(StylizeConfig.field_names())
    return StylizeConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})


def _expand(path: Path, what: str) -> list[Path]:
    if not path.exists():
        raise InputError(f"{what} '{path}' does not exist")
    if path.is_dir():
        found = list_images(path)
        if not found:
            raise InputError(f"{what} folder '{path}' holds no images ({', '.join(sorted(OUTPUT_FORMATS))})")
        return found
    return [path]


def _label_styles(specs: list[str], names_file: str | None) -> list[tuple[int, Path]]:
    by_name = {v.lower(): k for k, v in read_names(names_file).items()} if names_file else {}
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise InputError(f"--style expects LABEL=PATH (e.g. sky=a.jpg), got {spec!r}")
        if label.strip().lower() in by_name:
            key = by_name[label.strip().lower()]
        else:
            try:
                key = parse_label(label, where="--style")
            except InputError:
                hint = f"nor a name in '{names_file}'" if names_file else "nor a name (give a names file with --names)"
                raise InputError(
                    f"--style {spec!r}: '{label}' is neither a label (an integer, #rrggbb or a colour name) {hint}"
                ) from None
        out.append((key, Path(path)))
    return out


def plan_jobs(args: argparse.Namespace, label_styles: list[tuple[int, Path]]) -> list[Job]:
    """Every (content, styles, output) triple, with every output path checked up front."""
    content = Path(args.content)
    style_args = [Path(s) for s in args.styles]
    if not style_args and not label_styles:
        raise InputError("give at least one STYLE image (or --style LABEL=PATH)")
    contents = _expand(content, "content")
    for _, p in label_styles:
        _expand(p, "style")
    out = Path(args.output)
    batch = content.is_dir() or any(s.is_dir() for s in style_args)
    if batch:
        if out.suffix.lower() in OUTPUT_FORMATS:
            raise InputError(f"CONTENT or STYLE is a folder, so -o must be a folder, not the file '{out}'")
        styles = [q for s in style_args for q in _expand(s, "style")]
        jobs = [Job(c, [s], out / f"{c.stem}__{s.stem}.png") for s in styles for c in contents]  # style-major
    else:
        styles = [q for s in style_args for q in _expand(s, "style")]
        if out.is_dir():
            stem = "+".join(s.stem for s in styles) or "regions"
            out = out / f"{content.stem}__{stem}.png"
        jobs = [Job(contents[0], styles, out)]
    for job in jobs:
        check_output_path(job.output, args.overwrite)
    return jobs


def cmd_stylize(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    label_styles = _label_styles(args.label_styles, args.names)
    jobs = plan_jobs(args, label_styles)
    n_pos = len(jobs[0].styles)  # positional styles (interpolated); --style LABEL=PATH ones come after
    if args.semantic == "labels" and (not args.content_labels or (n_pos and not args.style_labels)):
        raise InputError("--semantic labels needs --content-labels and --style-labels (one per STYLE)")
    if args.style_labels and len(args.style_labels) not in (1, n_pos):
        raise InputError(f"got {len(args.style_labels)} --style-labels for {n_pos} STYLE images; give one per STYLE")
    if (args.content_labels or args.style_labels) and args.semantic != "labels":
        raise InputError("--content-labels/--style-labels are used with --semantic labels; add it")
    if label_styles and not (args.mask or args.semantic != "none"):
        raise InputError("--style LABEL=PATH needs regions: add --mask or a --semantic mode")
    if args.save_labels and not (args.mask or args.semantic != "none"):
        raise InputError("--save-labels shows the regions of --mask or a --semantic mode; add one")
    if args.save_labels and Path(args.save_labels).exists() and not Path(args.save_labels).is_dir():
        raise InputError(f"--save-labels must be a folder, but '{args.save_labels}' is a file")
    for p in [args.mask, args.content_labels, *(args.style_labels or [])]:
        if p and not Path(p).is_file():
            problem = "is a folder, not an image file" if Path(p).is_dir() else "does not exist"
            raise InputError(f"label map '{p}' {problem}")

    from semstyle.io.images import load_image, save_image
    from semstyle.pipelines.stylize import Stylizer
    from semstyle.viz import overlay, side_by_side

    if cfg.style_weights is not None and not label_styles and len(cfg.style_weights) != n_pos:
        raise InputError(f"got {len(cfg.style_weights)} style weights for {n_pos} styles; give one weight per style")
    if len(jobs) == 1:  # a bad image fails in milliseconds, before the networks load
        load_image(jobs[0].content, cfg.max_pixels, "content image")
        for s in [*jobs[0].styles, *(p for _, p in label_styles)]:
            load_image(s, cfg.max_pixels, "style image")

    stylizer = Stylizer(cfg)
    failures = 0
    bar = _progress(len(jobs))
    steps = _StepBar(enabled=len(jobs) == 1)  # one picture: its tiles / rounds (folders: the image bar)
    io = _IOWorker(jobs, cfg, args.overwrite, report=lambda msg: bar.write(msg, file=sys.stderr))  # background I/O
    for n, job in enumerate(jobs):
        styles: list[Path] = list(job.styles) + [p for _, p in label_styles]
        region_styles = {lab: len(job.styles) + i for i, (lab, _) in enumerate(label_styles)} or None
        style_labels = None
        if args.semantic == "labels":  # one map per positional style; styles named for a label need none
            given = list(args.style_labels or [])
            style_labels = (given * len(job.styles) if len(given) == 1 else given) + [None] * len(label_styles)
        weights = cfg.style_weights
        if label_styles and job.styles:  # unnamed regions take the positional styles only
            weights = tuple(weights or [1.0] * len(job.styles)) + (0.0,) * len(label_styles)
        try:
            content_img = io.content(n)
            res = stylizer.stylize(
                content_img, [io.style(s) for s in styles], mask=args.mask, region_styles=region_styles,
                content_labels=args.content_labels, style_labels=style_labels,
                style_weights=weights, callback=steps,
            )
            steps.close()
            io.save(res.image, job, styles[0].name)
            if args.save_labels and res.content_labels is not None:
                pics = [overlay(content_img.resize(res.image.size), res.content_labels, res.from_colors)]
                pics += [overlay(im, lab, res.from_colors)
                         for im, lab in zip(res.styles, res.style_labels, strict=True) if lab is not None]
                save_image(side_by_side(pics), Path(args.save_labels) / f"{job.output.stem}_labels.png", overwrite=True)
        except InputError as e:
            if len(jobs) == 1:
                raise
            failures += 1
            bar.write(f"semstyle: error: {job.content.name} × {styles[0].name}: {e}", file=sys.stderr)  # above the bar
        failures += io.wait(keep=2 if len(jobs) > 1 else 0)  # a single image's write finishes (or fails) here
        bar.update(1)
        if len(jobs) == 1:
            print(job.output)
    failures += io.close()
    bar.close()
    if len(jobs) > 1:
        print(f"wrote {len(jobs) - failures} of {len(jobs)} images to {jobs[0].output.parent}")
    return 2 if failures else 0


class _IOWorker:
    """Overlaps image I/O with compute in folder mode: a thread pool decodes (and resizes) the next
    ``ahead`` contents while the current one is stylised, and writes outputs in the background
    (at most ``ahead`` pending). Style images are decoded once and kept (the Stylizer caches their
    encodings). Errors surface per image: in ``content`` (raised) and in ``wait`` (reported, counted)."""

    def __init__(self, jobs: list[Job], cfg: StylizeConfig, overwrite: bool, report: Callable[[str], None],
                 ahead: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.jobs, self.cfg, self.overwrite, self.report, self.ahead = jobs, cfg, overwrite, report, ahead
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="semstyle-io")
        self.loads: dict[int, Future] = {}
        self.saves: list[tuple[str, Future]] = []
        self.styles: dict[Path, object] = {}

    def _load(self, path: Path, size: int, what: str):  # a PIL image
        from semstyle.io.images import load_image, resize_longest

        return resize_longest(load_image(path, self.cfg.max_pixels, what), size)

    def content(self, i: int):  # a PIL image
        for j in range(i, min(i + 1 + self.ahead, len(self.jobs))):
            if j not in self.loads:
                self.loads[j] = self.pool.submit(self._load, self.jobs[j].content, self.cfg.size, "content image")
        return self.loads.pop(i).result()

    def style(self, path: Path):  # a PIL image
        if path not in self.styles:
            if len(self.styles) >= max(1, self.cfg.style_cache):
                self.styles.pop(next(iter(self.styles)))
            self.styles[path] = self._load(path, self.cfg.style_size, "style image")
        return self.styles[path]

    def save(self, image: Image.Image, job: Job, style_name: str) -> None:
        from semstyle.io.images import save_image

        name = f"{job.content.name} × {style_name}"
        self.saves.append((name, self.pool.submit(save_image, image, job.output, overwrite=self.overwrite)))

    def wait(self, keep: int = 0) -> int:
        """Finish writes until at most ``keep`` are pending; report each failed one; return how many failed."""
        failed = 0
        while len(self.saves) > keep:
            name, fut = self.saves.pop(0)
            try:
                fut.result()
            except (InputError, OSError) as e:
                if len(self.jobs) == 1:
                    raise
                failed += 1
                self.report(f"semstyle: error: {name}: cannot write the output: {e}")
        return failed

    def close(self) -> int:
        failed = self.wait(0)
        for fut in self.loads.values():
            fut.cancel()
        self.pool.shutdown(wait=True)
        return failed


def _progress(total: int) -> tqdm:
    return tqdm(total=total, unit="img", disable=total <= 1, file=sys.stderr, dynamic_ncols=True)


class _StepBar:
    """The pipeline's progress events of one picture as a bar (tiles of a large image, refinement rounds);
    nothing is shown for one-step stages."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.stage = ""

    def __call__(self, ev: ProgressEvent) -> None:
        if not self.enabled or ev.total <= 1:
            return
        if self.bar is None or ev.stage != self.stage:
            self.close()
            unit = "round" if ev.stage == "refine" else "tile"
            self.bar = tqdm(total=ev.total, desc=ev.stage, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                            disable=None)  # None: only on a terminal
            self.stage = ev.stage
        self.bar.update(ev.step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_segment(args: argparse.Namespace) -> int:
    from semstyle.io.images import load_image, resize_longest, save_image
    from semstyle.pipelines.stylize import Stylizer
    from semstyle.viz import overlay, side_by_side

    paths = [Path(p) for p in args.images]
    for p in paths:
        _expand(p, "image")
    out = Path(args.output)
    if out.suffix.lower() in OUTPUT_FORMATS:
        raise InputError(f"-o must be a folder, not the file '{out}'")
    targets = [out / f"{p.stem}_segments.png" for p in paths] + [out / "segments.png"]
    for t in targets:
        check_output_path(t, args.overwrite)
    cfg = StylizeConfig(size=args.size, device=args.device, max_pixels=args.max_pixels, regions=args.regions,
                        seed=args.seed)
    st = Stylizer(cfg)
    imgs = [resize_longest(load_image(p, cfg.max_pixels, "image"), cfg.size) for p in paths]
    c_lab, s_labs = st.cosegment(imgs[0], imgs[1:])
    pics = [overlay(im, lab) for im, lab in zip(imgs, [c_lab, *s_labs], strict=True)]
    for pic, t in zip(pics, targets[:-1], strict=True):
        save_image(pic, t, overwrite=args.overwrite)
    save_image(side_by_side(pics), targets[-1], overwrite=args.overwrite)
    print(targets[-1])
    return 0
