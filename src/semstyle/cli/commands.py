"""The CLI's subcommands. Cheap checks (files exist, outputs are writable) run before the
networks load, so a typo fails in milliseconds."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from semstyle.batch.api import run_batch
from semstyle.batch.distributed import RayOptions, import_ray
from semstyle.batch.jobs import BatchJob, BatchOptions, ReportRow, expand_inputs, is_many, plan, save_label_overlays
from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.errors import InputError
from semstyle.io.files import OUTPUT_FORMATS, check_output_path
from semstyle.io.images import load_image, resize_longest, save_image
from semstyle.io.labels import parse_label, read_names
from semstyle.models.style_model import is_style_model, load_style_model
from semstyle.pipelines import stylize as pipeline
from semstyle.pipelines.requests import check_request
from semstyle.pipelines.transfer import tile_plan
from semstyle.types import ProgressEvent
from semstyle.viz import overlay, side_by_side

log = logging.getLogger(__name__)


def config_from_args(args: argparse.Namespace, styles: Sequence[str] = ()) -> StylizeConfig:
    """The networks and the default options the flags name (flags of other kinds are left out); a style model
    among ``styles`` brings its own decoder (or student) and, unless --alpha is given, its own α."""
    return with_style_model(StylizeConfig.from_values(vars(args)), styles,
                            alpha_given=getattr(args, "alpha", None) is not None)


def with_style_model(cfg: StylizeConfig, styles: Sequence[str], *, alpha_given: bool = True) -> StylizeConfig:
    """``cfg`` with the decoder of the style model among ``styles`` (``semstyle adapt``) — with ``model fast``,
    its student — and its default α unless ``alpha_given``: a model is one style and its networks together, so it
    comes alone and without another ``--decoder``. A model given as ``--decoder`` brings its default α too."""
    models = [s for s in styles if is_style_model(s)]
    if not models:
        if cfg.networks.model == "fast" and is_style_model(cfg.networks.decoder):
            raise InputError(f"the student of '{cfg.networks.decoder}' is made for that model's own style: give the "
                             "model as the style, or leave out --model fast")
        if is_style_model(cfg.networks.decoder) and not alpha_given:
            return cfg.updated(alpha=load_style_model(cfg.networks.decoder).alpha)
        return cfg
    if len(styles) > 1:
        raise InputError(f"style model '{models[0]}' brings its own decoder: give it as the only style")
    model = load_style_model(models[0])
    if cfg.networks.model == "fast" and model.student is None:
        raise InputError(f"style model '{models[0]}' has no student for --model fast; make one with semstyle adapt "
                         "--student, or leave out --model fast")
    mine = str(Path(models[0]).resolve())
    if cfg.networks.decoder not in ("pretrained", models[0], mine):
        raise InputError(f"--decoder {cfg.networks.decoder} and style model '{models[0]}' disagree: the model brings "
                         "its own decoder; leave out --decoder")
    return cfg.updated(decoder=mine, alpha=None if alpha_given else model.alpha)


def _expand(path: Path, what: str) -> list[Path]:
    return expand_inputs(path, what)


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


def plan_jobs(args: argparse.Namespace, label_styles: list[tuple[int, Path]]) -> tuple[list[BatchJob], bool]:
    """Every job (content, styles, output) and whether this is a batch (CONTENT or a STYLE names several
    images: a folder or a glob). A single image's output is checked up front; a batch's existing
    outputs are skipped (a rerun resumes) unless --overwrite."""
    if not args.styles and not label_styles:
        raise InputError("give at least one STYLE image (or --style LABEL=PATH)")
    contents = _expand(Path(args.content), "content")
    extra = [p for _, p in label_styles]
    for p in extra:
        _expand(p, "style")
    styles = [q for s in args.styles for q in _expand(Path(s), "style")]
    out = Path(args.output)
    if is_many(args.content) or any(is_many(s) for s in args.styles):
        return plan(contents, styles, out, region_styles=extra), True
    if out.is_dir():
        out = out / f"{contents[0].stem}__{'+'.join(s.stem for s in styles) or 'regions'}.png"
    check_output_path(out, args.overwrite)
    return [BatchJob(contents[0], (*styles, *extra), out)], False


def _check_flags(args: argparse.Namespace, label_styles: list[tuple[int, Path]], n_pos: int) -> None:
    """What only the command line can get wrong: flags that go together, and the label-map files. The
    request's own rules (weights, label maps per style, regions) are the library's ``check_request``."""
    if args.style_labels and len(args.style_labels) not in (1, n_pos):
        raise InputError(f"got {len(args.style_labels)} --style-labels for {n_pos} STYLE images; give one per STYLE")
    if (args.content_labels or args.style_labels) and args.semantic != "labels":
        raise InputError("--content-labels/--style-labels are used with --semantic labels; add it")
    if args.style_scribbles and len(args.style_scribbles) not in (1, n_pos):
        raise InputError(f"got {len(args.style_scribbles)} --style-scribbles for {n_pos} STYLE images; give one "
                         "per STYLE")
    if (args.content_scribbles or args.style_scribbles) and args.semantic != "scribbles":
        raise InputError("--content-scribbles/--style-scribbles are used with --semantic scribbles; add it")
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
    for p in [args.content_scribbles, *(args.style_scribbles or [])]:
        if p and not Path(p).is_file():
            problem = "is a folder, not an image file" if Path(p).is_dir() else "does not exist"
            raise InputError(f"scribbles '{p}' {problem}")


def _options(args: argparse.Namespace, label_styles: list[tuple[int, Path]], n_pos: int) -> BatchOptions:
    """What every job shares: regions, per-style label maps and weights (the ``--style LABEL=PATH``
    images come after the positional styles and take no part in the interpolation)."""
    style_labels = None
    if args.semantic == "labels":  # one map per positional style; styles named for a label need none
        given = [Path(p) for p in args.style_labels or []]
        style_labels = tuple(given * n_pos if len(given) == 1 else given) + (None,) * len(label_styles)
    style_scribbles = None
    if args.semantic == "scribbles":  # one stroke picture per positional style (one given: every style's)
        strokes = [Path(p) for p in args.style_scribbles or []]
        style_scribbles = tuple(strokes * n_pos if len(strokes) == 1 else strokes)
    weights = args.style_weights
    if label_styles and n_pos:
        weights = tuple(weights or [1.0] * n_pos) + (0.0,) * len(label_styles)
    return BatchOptions(
        overwrite=args.overwrite, mask=Path(args.mask) if args.mask else None,
        content_labels=Path(args.content_labels) if args.content_labels else None,
        region_styles={lab: n_pos + i for i, (lab, _) in enumerate(label_styles)} or None,
        style_labels=style_labels, style_weights=weights,
        content_scribbles=Path(args.content_scribbles) if args.content_scribbles else None,
        style_scribbles=style_scribbles,
        labels_dir=Path(args.save_labels) if args.save_labels else None,
    )


def cmd_stylize(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, [*args.styles, *(spec.partition("=")[2] for spec in args.label_styles or [])])
    label_styles = _label_styles(args.label_styles, args.names)
    jobs, many = plan_jobs(args, label_styles)
    n_pos = len(jobs[0].styles) - len(label_styles)  # positional styles (interpolated)
    _check_flags(args, label_styles, n_pos)
    ray = _ray_options(args, many)
    options = _options(args, label_styles, n_pos)
    if many:  # the library's request rules, once, before any network loads (every job of a batch is alike)
        check_request(options.request(jobs[0].content, jobs[0].styles), cfg.options)
        return _stylize_batch(jobs, cfg, options, args.engine, ray)
    return _stylize_one(jobs[0], cfg, options, args.overwrite)


def _stylize_one(job: BatchJob, cfg: StylizeConfig, options: BatchOptions, overwrite: bool) -> int:
    """One image: decoded and resized once (a bad image fails in milliseconds, before the networks load),
    one request checked once, stylised, written."""
    opts = cfg.options
    content = resize_longest(load_image(job.content, opts.max_pixels, "content image"), opts.size)
    styles = [resize_longest(load_image(s, opts.max_pixels, "style image"), opts.style_size) for s in job.styles]
    req = options.request(content, styles)
    check_request(req, opts)
    tile_plan(opts.tile, content.size, opts.refine)  # --tile with --refine: refused before the networks load
    steps = _StepBar()  # its tiles / refinement rounds
    res = pipeline.Stylizer.from_config(cfg).run(req, opts, callback=steps)
    steps.close()
    if options.labels_dir is not None:
        save_label_overlays(res, options.labels_dir / f"{job.output.stem}_labels.png")
    save_image(res.image, job.output, overwrite=overwrite)
    print(job.output)
    return 0


def _ray_options(args: argparse.Namespace, many: bool) -> RayOptions | None:
    ray_flags = {"--ray-address": args.ray_address, "--cpus-per-worker": args.cpus_per_worker,
                 "--gpus-per-worker": args.gpus_per_worker or None}
    if args.engine != "ray":
        given = [flag for flag, v in ray_flags.items() if v is not None]
        if given:
            raise InputError(f"{given[0]} is a setting of the Ray engine; add --engine ray")
        return None
    if not many:
        raise InputError("--engine ray stylises a folder or a glob of images; for one image leave it out")
    import_ray()  # a missing extra fails now, with the command to install it
    return RayOptions(address=args.ray_address, workers=args.workers, batch_size=args.batch_size,
                      cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker or 0.0)


def _stylize_batch(jobs: list[BatchJob], cfg: StylizeConfig, options: BatchOptions, engine: str,
                   ray: RayOptions | None) -> int:
    """A folder or glob: every job runs, failures are reported per image and in the report file,
    and the exit status is 1 when any failed."""
    bar = _progress(len(jobs))

    def on_row(row: ReportRow) -> None:
        if row.status == "error":  # above the bar
            bar.write(f"semstyle: error: {Path(row.input).name} × {Path(row.style).name}: {row.message}",
                      file=sys.stderr)
        bar.update(1)

    try:
        result = run_batch(jobs, config=cfg, options=options, engine=engine, ray=ray, callback=on_row)
    finally:
        bar.close()
    skipped = f" ({result.skipped} already there)" if result.skipped else ""
    print(f"wrote {result.written} of {len(jobs)} images to {jobs[0].output.parent}{skipped}; "
          f"report: {result.report}")
    return 1 if result.failed else 0


def _progress(total: int) -> tqdm:
    return tqdm(total=total, unit="img", disable=total <= 1, file=sys.stderr, dynamic_ncols=True)


class _StepBar:
    """The pipeline's progress events of one picture as a bar (tiles of a large image, refinement rounds);
    nothing is shown for one-step stages."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.stage = ""

    def __call__(self, ev: ProgressEvent) -> None:
        if ev.total <= 1:
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
    paths = [Path(p) for p in args.images]
    for p in paths:
        _expand(p, "image")
    out = Path(args.output)
    if out.suffix.lower() in OUTPUT_FORMATS:
        raise InputError(f"-o must be a folder, not the file '{out}'")
    targets = [out / f"{p.stem}_segments.png" for p in paths] + [out / "segments.png"]
    for t in targets:
        check_output_path(t, args.overwrite)
    opts = StylizeOptions(size=args.size, max_pixels=args.max_pixels, regions=args.regions, seed=args.seed)
    st = pipeline.Stylizer(NetworkConfig(device=args.device), defaults=opts)
    imgs = [resize_longest(load_image(p, opts.max_pixels, "image"), opts.size) for p in paths]
    c_lab, s_labs = st.cosegment(imgs[0], imgs[1:])
    pics = [overlay(im, lab) for im, lab in zip(imgs, [c_lab, *s_labs], strict=True)]
    for pic, t in zip(pics, targets[:-1], strict=True):
        save_image(pic, t, overwrite=args.overwrite)
    save_image(side_by_side(pics), targets[-1], overwrite=args.overwrite)
    print(targets[-1])
    return 0
