"""An evaluation's report: a Markdown summary table, a picture grid and two plots.

The plots need matplotlib (``pip install 'semstyle[bench]'``); without it the CSVs, the summary
and the grid are still written and a message says what is missing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from semstyle.evaluation.pairs import Pair
from semstyle.evaluation.records import METHODS, EvalResult
from semstyle.io.images import load_image
from semstyle.viz import grid

Rows = dict[str, list[dict[str, str]]]
# (CSV column, header, how it reads): ↓ lower is better, ↑ higher is better
COLUMNS: tuple[tuple[str, str], ...] = (
    ("content_loss", "content loss ↓"),
    ("gram_style", "Gram style ↓"),
    ("meanstd_style", "mean/std style ↓"),
    ("region_style", "region style ↓"),
    ("ssim", "SSIM ↑"),
    ("cfsd", "CFSD ↓"),
    ("checkerboard", "checkerboard"),
)
MARKERS = "osD^vP*Xh<>"


def _look(method: str, i: int) -> tuple[str, str]:
    """(colour, marker) of a method, the same in every plot."""
    k = METHODS.index(method) if method in METHODS else len(METHODS) + i
    return f"C{k % 10}", MARKERS[k % len(MARKERS)]


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def ok_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r.get("status") == "ok"]


def summarize(rows: Rows) -> dict[str, dict[str, float]]:
    """Per method: n, the mean of every metric (over pairs where it is defined), median seconds and peak MiB."""
    out: dict[str, dict[str, float]] = {}
    for m, rs in rows.items():
        good = ok_rows(rs)
        if not good:
            continue
        s: dict[str, float] = {"n": len(good), "errors": len(rs) - len(good)}
        for col, _ in COLUMNS:
            vals = [v for v in (_num(r.get(col)) for r in good) if not math.isnan(v)]
            s[col] = statistics.fmean(vals) if vals else math.nan
        for col in ("seconds", "peak_mb"):
            vals = [v for v in (_num(r.get(col)) for r in good) if not math.isnan(v)]
            s[col] = statistics.median(vals) if vals else math.nan
        out[m] = s
    return out


def _cell(v: float, digits: int = 3) -> str:
    if math.isnan(v):
        return "–"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.{digits}g}"


def summary_table(summary: dict[str, dict[str, float]]) -> str:
    """The Markdown table: one row per method."""
    cols = [c for c, _ in COLUMNS if any(not math.isnan(s.get(c, math.nan)) for s in summary.values())]
    heads = [h for c, h in COLUMNS if c in cols]
    lines = [
        "| method | pairs | " + " | ".join(heads) + " | median s | peak MiB |",
        "|---|---:|" + "---:|" * len(heads) + "---:|---:|",
    ]
    for m, s in summary.items():
        vals = " | ".join(_cell(s[c]) for c in cols)
        lines.append(f"| {m} | {int(s['n'])} | {vals} | {_cell(s['seconds'])} | {_cell(s['peak_mb'])} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- pictures
def picture_grid(
    out: Path, rows: Rows, pairs: Sequence[Pair], methods: Sequence[str], n: int, cell: int = 160
) -> Image.Image | None:
    """Rows = the first ``n`` pairs with any result; columns = content, style, each method."""
    by_key = {m: {(r["content"], r["style"]): r for r in ok_rows(rows.get(m, []))} for m in methods}
    shown = [m for m in methods if by_key[m]]
    grid_rows: list[list[Image.Image | None]] = []
    for p in pairs:
        found = [by_key[m].get(p.key) for m in shown]
        if not any(found):
            continue
        cells: list[Image.Image | None] = [load_image(p.content), load_image(p.style)]
        cells += [Image.open(out / r["image"]).convert("RGB") if r else None for r in found]
        grid_rows.append(cells)
        if len(grid_rows) >= n:
            break
    if not grid_rows:
        return None
    return grid(grid_rows, cell=cell, titles=["content", "style", *shown])


def _pyplot_free_figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def plot_style_content(path: Path, rows: Rows, style_col: str = "gram_style", title: str = "") -> Path:
    """Scatter of style loss against content loss, one colour per method, method means as large markers."""
    fig = _pyplot_free_figure(6.2, 4.6)
    ax = fig.add_subplot()
    for i, (m, rs) in enumerate(rows.items()):
        pts = [(_num(r.get("content_loss")), _num(r.get(style_col))) for r in ok_rows(rs)]
        pts = [(x, y) for x, y in pts if not (math.isnan(x) or math.isnan(y))]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        color, marker = _look(m, i)
        ax.scatter(xs, ys, s=14, alpha=0.45, color=color, marker=marker)
        ax.scatter(
            [statistics.fmean(xs)],
            [statistics.fmean(ys)],
            s=140,
            color=color,
            edgecolor="black",
            marker=marker,
            label=f"{m} (n={len(pts)})",
        )
    ax.set_xlabel("content loss (relu4_1 MSE to the content) ↓")
    names = {"gram_style": "Gram style loss (relu1_1..relu4_1)", "region_style": "region style distance (label maps)"}
    ax.set_ylabel(names.get(style_col, style_col) + " ↓")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "style vs content: lower-left is better", fontsize=10)
    fig.savefig(path)
    return path


def plot_timings(path: Path, timings: dict[str, dict[str, float]], title: str = "") -> Path:
    """Bar chart of median seconds per method; ``timings`` = {label: {"seconds": s, "peak_mb": m}}."""
    fig = _pyplot_free_figure(6.2, 0.9 + 0.42 * max(1, len(timings)))
    ax = fig.add_subplot()
    labels = list(timings)
    secs = [timings[k].get("seconds", math.nan) for k in labels]
    bars = ax.barh(range(len(labels)), secs, color=[_look(k, i)[0] for i, k in enumerate(labels)])
    for b, s, k in zip(bars, secs, labels, strict=True):
        mb = timings[k].get("peak_mb", math.nan)
        note = f"{s:.2f} s" + ("" if math.isnan(mb) else f", {mb:.0f} MiB")
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, " " + note, va="center", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median seconds per image (log scale)")
    ax.set_xlim(right=max([s for s in secs if not math.isnan(s)] or [1]) * 8)
    ax.set_title(title or "speed", fontsize=10)
    fig.savefig(path)
    return path


def plot_timings_by_size(path: Path, seconds: dict[str, dict[int, float]], title: str = "") -> Path:
    """Median seconds per image against image size, one line per method (log-log)."""
    fig = _pyplot_free_figure(6.2, 4.2)
    ax = fig.add_subplot()
    for i, (m, by_size) in enumerate(seconds.items()):
        pts = sorted((k, v) for k, v in by_size.items() if not math.isnan(v))
        if pts:
            xs, ys = zip(*pts, strict=True)
            color, marker = _look(m, i)
            ax.plot(xs, ys, marker=marker, color=color, label=m)
    sizes = sorted({k for by in seconds.values() for k in by})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("longest side of content and style (px)")
    ax.set_ylabel("median seconds per image ↓")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "time per image against size", fontsize=10)
    fig.savefig(path)
    return path


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


MISSING_MPL = "matplotlib is not installed, so no plots were drawn; pip install 'semstyle[bench]' (or matplotlib)"


def write_report(
    res: EvalResult, pairs: Sequence[Pair], methods: Sequence[str], grid_rows: int, say: Callable[[str], None]
) -> list[Path]:
    """summary.md, grid.png, style_vs_content.png and timings.png in ``res.out``."""
    out = res.out
    files: list[Path] = []
    summary = summarize(res.rows)
    img = picture_grid(out, res.rows, pairs, methods, grid_rows)
    if img is not None:
        img.save(out / "grid.png")
        files.append(out / "grid.png")
    if have_matplotlib() and summary:
        files.append(plot_style_content(out / "style_vs_content.png", {m: res.rows[m] for m in summary}))
        files.append(plot_timings(out / "timings.png", summary))
    elif summary:
        say(MISSING_MPL)
    lines = [
        "# Evaluation summary",
        "",
        f"{len(pairs)} pairs; means over pairs, median time and peak memory per image.",
        "Metrics are defined in docs/METRICS.md.",
        "",
        summary_table(summary) if summary else "(no results yet)",
        "",
    ]
    for m, why in res.unavailable.items():
        lines.append(f"- **{m}** not run: {why}")
    for m, k in res.no_labels.items():
        lines.append(f"- **{m}**: {k} pair(s) without label maps skipped")
    for m, s in summary.items():
        if s["errors"]:
            lines.append(f"- **{m}**: {int(s['errors'])} pair(s) failed (status column of {m}.csv)")
    lines += ["", *[f"![{f.stem}]({f.name})" for f in files]]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return [out / "summary.md", *files]
