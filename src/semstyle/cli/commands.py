"""The CLI's subcommands. Cheap checks (files exist, outputs are writable) run before the
networks load, so a typo fails in milliseconds."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from semstyle.config import StylizeConfig
from semstyle.errors import InputError
from semstyle.io.images import OUTPUT_FORMATS, check_output_path, list_images
from semstyle.io.labels import parse_label, read_names

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
        key = by_name[label.lower()] if label.lower() in by_name else parse_label(label, where="--style")
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
        jobs = [Job(c, [s], out / f"{c.stem}__{s.stem}.png") for c in contents for s in styles]
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
    if args.semantic == "labels" and (not args.content_labels or not args.style_labels):
        raise InputError("--semantic labels needs --content-labels and --style-labels")
    if (args.content_labels or args.style_labels) and args.semantic != "labels":
        raise InputError("--content-labels/--style-labels are used with --semantic labels; add it")
    if label_styles and not (args.mask or args.semantic != "none"):
        raise InputError("--style LABEL=PATH needs regions: add --mask or a --semantic mode")
    for p in [args.mask, args.content_labels, *(args.style_labels or [])]:
        if p and not Path(p).is_file():
            raise InputError(f"label map '{p}' does not exist")

    from semstyle.pipelines.stylize import Stylizer
    from semstyle.viz import overlay, side_by_side
    from semstyle.io.images import save_image

    stylizer = Stylizer(cfg)
    failures = 0
    bar = _progress(len(jobs))
    for job in jobs:
        styles: list[Path] = list(job.styles) + [p for _, p in label_styles]
        region_styles = {lab: len(job.styles) + i for i, (lab, _) in enumerate(label_styles)} or None
        style_labels = args.style_labels
        if style_labels and len(style_labels) == 1 and len(styles) > 1:
            style_labels = style_labels * len(styles)
        try:
            res = stylizer.stylize(
                job.content, [str(s) for s in styles], mask=args.mask, region_styles=region_styles,
                content_labels=args.content_labels, style_labels=style_labels,
                style_weights=cfg.style_weights,
            )
            save_image(res.image, job.output, overwrite=args.overwrite)
            if args.save_labels and res.content_labels is not None:
                pics = [overlay(res.image, res.content_labels, res.from_colors)]
                pics += [overlay(stylizer.encode_style(str(s)).image, lab, res.from_colors)
                         for s, lab in zip(styles, res.style_labels) if lab is not None]
                save_image(side_by_side(pics), Path(args.save_labels) / f"{job.output.stem}_labels.png", overwrite=True)
        except InputError as e:
            if len(jobs) == 1:
                raise
            failures += 1
            print(f"semstyle: error: {job.content.name} × {styles[0].name}: {e}", file=sys.stderr)
        bar.update(1)
        if len(jobs) == 1:
            print(job.output)
    bar.close()
    if len(jobs) > 1:
        print(f"wrote {len(jobs) - failures} of {len(jobs)} images to {jobs[0].output.parent}")
    return 2 if failures else 0


def _progress(total: int):  # noqa: ANN202 - tqdm or a no-op
    from tqdm import tqdm

    return tqdm(total=total, unit="img", disable=total <= 1, file=sys.stderr, dynamic_ncols=True)


def cmd_segment(args: argparse.Namespace) -> int:
    from semstyle.io.images import load_image, resize_longest, save_image
    from semstyle.pipelines.stylize import Stylizer
    from semstyle.segmentation.auto import cosegment
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
    cfg = StylizeConfig(size=args.size, device=args.device, max_pixels=args.max_pixels, regions=args.regions, seed=args.seed)
    st = Stylizer(cfg)
    imgs = [resize_longest(load_image(p, cfg.max_pixels, "image"), cfg.size) for p in paths]
    c_lab, s_labs = cosegment(st.encode, imgs[0], imgs[1:], cfg.regions, cfg.seed)
    pics = [overlay(im, lab) for im, lab in zip(imgs, [c_lab, *s_labs])]
    for pic, t in zip(pics, targets):
        save_image(pic, t, overwrite=args.overwrite)
    save_image(side_by_side(pics), targets[-1], overwrite=args.overwrite)
    print(targets[-1])
    return 0
