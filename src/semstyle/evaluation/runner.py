"""The evaluation loop: every pair × every method → an image, timings and metrics, one CSV row each.

Resumable: each method's CSV (``OUT/<method>.csv``) is appended to and flushed after every pair,
and a pair whose row is already there is not run again. Pairs are the outer loop and methods the
inner one, so the content's and the style's features are computed once per pair and every method
meets the same machine load.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from semstyle import metrics as M
from semstyle.errors import SemstyleError
from semstyle.evaluation.methods import StylizerPool, build_method
from semstyle.evaluation.pairs import Pair
from semstyle.evaluation.records import FIELDS, LABEL_METHODS, EvalConfig, EvalResult, MethodSettings, Unavailable
from semstyle.evaluation.report import write_report
from semstyle.io.images import load_image, resize_longest, save_image, to_tensor
from semstyle.io.labels import fit_to, harmonize, load_labels

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- CSV
def csv_path(out: Path, method: str) -> Path:
    return out / f"{method}.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    """Complete rows of a method's CSV (a line cut short by a crash is ignored)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("image") is not None and r.get("status")]


def _append(path: Path, row: dict[str, object]) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    if not new:  # a line cut short by a crash must not swallow this row
        with open(path, "rb") as f:
            f.seek(-1, 2)
            cut = f.read(1) != b"\n"
    with open(path, "a", newline="") as f:
        if not new and cut:
            f.write("\r\n")
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: _fmt(v) for k, v in row.items()})
        f.flush()


def _fmt(v: object) -> object:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


# ----------------------------------------------------------------------------- scoring
@dataclass
class _Refs:
    """A pair's resized images, their features and (when given) ground-truth labels at their sizes."""

    content: Image.Image
    style: Image.Image
    c_feats: M.Feats
    s_feats: M.Feats
    c_lab: np.ndarray | None = None
    s_lab: np.ndarray | None = None


def _refs(pair: Pair, s: MethodSettings, encoder: torch.nn.Module) -> _Refs:
    c = resize_longest(load_image(pair.content, what="content image"), s.size)
    y = resize_longest(load_image(pair.style, what="style image"), s.style_size)
    refs = _Refs(c, y, M.vgg_features(encoder, to_tensor(c)), M.vgg_features(encoder, to_tensor(y)))
    if pair.content_labels is not None and pair.style_labels is not None:
        c_lm = fit_to(load_labels(pair.content_labels, what="content label map"), c.size, "content label map")
        s_lm = fit_to(load_labels(pair.style_labels, what="style label map"), y.size, "style label map")
        c_lm, s_lm = harmonize(c_lm, s_lm)
        refs.c_lab, refs.s_lab = c_lm.labels, s_lm.labels
    return refs


def score(out: Image.Image, refs: _Refs, encoder: torch.nn.Module) -> dict[str, float]:
    """Every metric of ``out`` against its pair (docs/METRICS.md)."""
    if out.size != refs.content.size:
        out = out.resize(refs.content.size, Image.Resampling.BICUBIC)
    o = to_tensor(out)
    fo = M.vgg_features(encoder, o)
    c = to_tensor(refs.content)
    region = math.nan
    if refs.c_lab is not None and refs.s_lab is not None:
        region = M.region_style_distance(fo, refs.s_feats, refs.c_lab, refs.s_lab)
    return {
        "content_loss": M.content_loss(fo, refs.c_feats),
        "gram_style": M.gram_style_loss(fo, refs.s_feats),
        "meanstd_style": M.mean_std_style_loss(fo, refs.s_feats),
        "ssim": M.ssim_gray(o, c),
        "cfsd": M.self_similarity_distance(fo, refs.c_feats),
        "region_style": region,
        "checkerboard": M.checkerboard_ratio(o, c),
    }


# ----------------------------------------------------------------------------- the loop
def _warm(fn: Callable, size: int) -> None:
    img = Image.fromarray((np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8))
    try:
        fn(Pair(Path("warmup"), Path("warmup")), img, img)
    except Exception as e:  # the real run reports real failures
        log.debug("warm-up failed: %s", e)


def run_eval(
    pairs: list[Pair], cfg: EvalConfig, progress: bool = True, say: Callable[[str], None] = log.warning
) -> EvalResult:
    """Run ``cfg.methods`` on ``pairs`` (resuming), score, write CSVs and (``cfg.report``) the report."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = pairs[: cfg.limit] if cfg.limit else list(pairs)
    res = EvalResult(out)
    done = {m: {(r["content"], r["style"]) for r in read_rows(csv_path(out, m))} for m in cfg.methods}
    res.resumed = sum(p.key in done[m] for m in cfg.methods for p in pairs if m not in LABEL_METHODS or p.has_labels)
    pool = StylizerPool(cfg.settings)
    methods: dict[str, Callable] = {}
    for name in cfg.methods:
        runnable = [p for p in pairs if name not in LABEL_METHODS or p.has_labels]
        if name in LABEL_METHODS and len(runnable) < len(pairs):
            res.no_labels[name] = len(pairs) - len(runnable)
            say(f"{name}: {len(pairs) - len(runnable)} of {len(pairs)} pairs have no label maps: skipped")
        if all(p.key in done[name] for p in runnable):
            continue  # nothing left to do: don't even load it
        try:
            methods[name] = build_method(name, pool)
        except Unavailable as e:
            res.unavailable[name] = str(e)
            say(f"{name}: skipped — {e}")
            continue
        if cfg.warmup and name not in LABEL_METHODS and not name.startswith("optimize"):
            _warm(methods[name], min(cfg.settings.size, 128))
    todo = [(p, m) for p in pairs for m in methods if (m not in LABEL_METHODS or p.has_labels)]
    todo = [(p, m) for p, m in todo if p.key not in done[m]]
    bar = tqdm(total=len(todo), desc="eval", unit="run", disable=not progress)
    try:
        by_pair: dict[Pair, list[str]] = {}
        for p, m in todo:
            by_pair.setdefault(p, []).append(m)
        for pair, names in by_pair.items():
            encoder = pool.networks().encoder  # the metrics' VGG19 (loaded only when there is work)
            try:
                refs = _refs(pair, cfg.settings, encoder)
            except SemstyleError as e:
                say(f"{pair.content.name} × {pair.style.name}: cannot be read ({e}); skipped")
                bar.update(len(names))
                continue
            for name in names:
                bar.set_postfix_str(f"{name} {pair.content.name}", refresh=False)
                _one(pair, name, methods[name], refs, encoder, out, res, say)
                bar.update()
    finally:
        bar.close()
        for fn in methods.values():
            close = getattr(fn, "close", None)
            if close:
                close()
    res.rows = {m: read_rows(csv_path(out, m)) for m in cfg.methods}
    if cfg.report:
        res.files = write_report(res, pairs, list(cfg.methods), cfg.grid_rows, say)
    return res


def _one(
    pair: Pair,
    name: str,
    fn: Callable,
    refs: _Refs,
    encoder: torch.nn.Module,
    out: Path,
    res: EvalResult,
    say: Callable[[str], None],
) -> None:
    row: dict[str, object] = {"content": pair.key[0], "style": pair.key[1]}
    try:
        with M.measure() as usage:
            result = fn(pair, refs.content, refs.style)
        rel = Path("images") / name / f"{pair.slug}.png"
        save_image(result.image, out / rel, overwrite=True)
        row.update(
            status="ok",
            image=str(rel),
            width=result.image.size[0],
            height=result.image.size[1],
            seconds=result.seconds if result.seconds is not None else usage.seconds,
            peak_mb=result.peak_mb if result.peak_mb is not None else usage.peak_mb,
        )
        row.update(score(result.image, refs, encoder))
    except (SemstyleError, ValueError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        row.update(status=f"error: {msg}", image="")
        res.errors[name] = res.errors.get(name, 0) + 1
        say(f"{name} failed on {pair.content.name} × {pair.style.name}: {msg}")
    _append(csv_path(out, name), row)
    res.new += 1
