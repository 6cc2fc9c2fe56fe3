"""Scale benchmarks: tiled high-resolution memory, seams, batch throughput, ONNX export.

    python benchmarks/bench_scale.py                                  # everything (4096² takes minutes)
    python benchmarks/bench_scale.py --parts tiling --sizes 1024,2048 # peak RSS only
    python benchmarks/bench_scale.py --parts seam,batch,onnx --json /tmp/scale.json

Parts:

- **tiling**: for each size S, a fresh subprocess loads a Stylizer with ``StylizeOptions(size=S, tile=768)`` (the tile
  auto mode uses over 1.5 Mpx, forced so 1024² is tiled too), stylises the bundled astronaut photo scaled
  to S×S with a 512 px painting, and reports the wall time, its RSS with the networks loaded and
  its peak RSS (``VmHWM`` from /proc/self/status). ``--untiled-max`` also runs ``tile=-1`` up to
  that size for comparison.
- **seam**: a 768×768 content in 256 px tiles against the untiled result (mean |Δ|, max |Δ|,
  PSNR) and the seam metric: mean |difference| between adjacent pixel columns/rows at the tile
  borders divided by the median over all other columns/rows (1 = a border looks like anywhere
  else). The same metric for naive tiling (no context margin, no cross-fade) shows it detects seams.
- **batch**: N distinct 512 px contents with one style: the Python API in a loop (warm model;
  load, stylise, save) and ``semstyle stylize FOLDER STYLE`` (its I/O worker prefetches contents
  and saves in the background; the figure includes loading the networks, reported separately).
  Also counts encoder calls (N contents + 1 style expected).
- **onnx**: exports both graphs, then at 512² times (median of ``--repeats`` round-robin calls)
  PyTorch fp32 eager (the same graph), the Stylizer's own path (bf16 where native) and
  onnxruntime; reports max |onnxruntime − PyTorch fp32|.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle.config import NetworkConfig, StylizeOptions

REPO = Path(__file__).resolve().parents[1]
AUTO_TILE = 768  # semstyle.pipelines.transfer.AUTO_TILE: the tile auto mode uses (forced here even under 1.5 Mpx)
PARTS = ("tiling", "seam", "batch", "onnx")


def _status(key: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _assets() -> tuple[list[Path], list[Path]]:
    from semstyle.assets import content_images, style_images

    return content_images(), style_images()


def _scaled(src: Path, side: int, dst: Path, height: int | None = None) -> Path:
    size = (side, height or side)
    Image.open(src).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(dst, compress_level=1)
    return dst


# ---------------------------------------------------------------------- tiling (child process)
def child_tiling(content: str, style: str, size: int, tile: int) -> dict:
    import torch

    from semstyle import Stylizer

    torch.set_num_threads(2)
    st = Stylizer(NetworkConfig(device="cpu"), defaults=StylizeOptions(size=size, style_size=512, tile=tile))
    rss_loaded = _status("VmRSS")
    t0, cpu0 = time.perf_counter(), time.process_time()
    res = st.stylize(content, style)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"size": size, "tile": tile, "out": list(res.image.size), "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "timings": {k: round(v, 1) for k, v in res.timings.items()},
            "rss_loaded_mb": rss_loaded // 2**20, "peak_rss_mb": _status("VmHWM") // 2**20}


def bench_tiling(sizes: list[int], untiled_max: int, tmp: Path) -> list[dict]:
    contents, styles = _assets()
    style = _scaled(styles[0], 512, tmp / "style.png")
    rows = []
    for size in sizes:
        content = _scaled(contents[0], size, tmp / f"content_{size}.png")
        for tile in [AUTO_TILE] + ([-1] if size <= untiled_max else []):
            cmd = [sys.executable, __file__, "--child-tiling", str(content), str(style), str(size), str(tile)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                rows.append({"size": size, "tile": tile, "error": proc.stderr.strip().splitlines()[-1:]})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)
    return rows


# ---------------------------------------------------------------------- seams
def seam_ratio(img: np.ndarray, cols: list[int], rows: list[int]) -> float:
    """Worst border step over the median step elsewhere, for adjacent columns and rows."""
    a = img.astype(np.float64)
    out = []
    for axis, seams in ((1, cols), (0, rows)):
        step = np.abs(np.diff(a, axis=axis)).mean(axis=(1 - axis, 2))  # step[i] = |x[i+1] − x[i]|
        at = [s - 1 for s in seams]
        out.append(step[at].max() / np.median(np.delete(step, at)))
    return float(max(out))


def bench_seam(side: int = 768, tile: int = 256) -> dict:
    from semstyle import Stylizer
    from semstyle.pipelines import transfer as tiling

    contents, styles = _assets()
    content = Image.open(contents[0]).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    st = Stylizer(NetworkConfig(device="cpu"), defaults=StylizeOptions(size=side, style_size=512, tile=-1))
    ref = np.asarray(st.stylize(content, styles[0]).image)
    t0 = time.perf_counter()
    res = st.stylize(content, styles[0], tile=tile)
    seconds = time.perf_counter() - t0
    got = np.asarray(res.image)
    cuts = tiling.cuts(side, tile)[1:-1]
    entry = st.encode_style(styles[0])
    naive, _ = tiling.stylize_array(st.networks, np.asarray(content), tiling.Fuse([entry], [1.0], 1.0),
                                    tiling.TilePlan(tile, margin=0, overlap=0))
    d = np.abs(got.astype(np.float64) - ref)
    mse = float((d**2).mean())
    return {"side": side, "tile": tile, "tiled_seconds": round(seconds, 1), "mean_abs_diff": float(d.mean()),
            "max_abs_diff": float(d.max()), "psnr_db": float("inf") if mse == 0 else 10 * np.log10(255**2 / mse),
            "seam_ratio_tiled": seam_ratio(got, cuts, cuts), "seam_ratio_untiled": seam_ratio(ref, cuts, cuts),
            "seam_ratio_naive": seam_ratio(naive, cuts, cuts)}


# ---------------------------------------------------------------------- batch
def bench_batch(n: int, tmp: Path) -> dict:
    from semstyle import Stylizer
    from semstyle.cli.main import main
    from semstyle.io.images import save_image

    contents, styles = _assets()
    folder = tmp / "batch"
    folder.mkdir(exist_ok=True)
    ops = [None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180]
    paths = []
    for i in range(n):
        im = Image.open(contents[i % len(contents)]).convert("RGB").resize((640, 640), Image.Resampling.BICUBIC)
        op = ops[(i // len(contents)) % len(ops)]
        im = im.transpose(op) if op is not None else im
        paths.append(folder / f"c{i:03d}.jpg")
        im.rotate(7 * (i // (len(contents) * len(ops))), expand=False).save(paths[-1], quality=92)
    style = _scaled(styles[0], 512, tmp / "batch_style.png", 384)  # its own shape: its encodes can be counted

    t0 = time.perf_counter()
    st = Stylizer(NetworkConfig(device="cpu"), defaults=StylizeOptions(size=512, style_size=512))
    load = time.perf_counter() - t0
    calls = []
    encode = st.encode
    st.encode = lambda x, taps=("relu4_1",): calls.append(tuple(x.shape[-2:])) or encode(x, taps)  # type: ignore[method-assign]
    api_out = tmp / "api"
    t0 = time.perf_counter()
    for p in paths:
        save_image(st.stylize(p, style).image, api_out / f"{p.stem}.png", overwrite=True)
    api = time.perf_counter() - t0

    t0 = time.perf_counter()
    rc = main(["stylize", str(folder), str(style), "-o", str(tmp / "cli"), "--size", "512", "--style-size", "512",
               "--device", "cpu", "--overwrite"])
    cli = time.perf_counter() - t0
    return {"n": n, "size": 512, "load_seconds": round(load, 2), "encoder_calls": len(calls),
            "style_encodes": calls.count((384, 512)),
            "api_images_per_s": round(n / api, 3), "cli_rc": rc, "cli_images_per_s": round(n / cli, 3),
            "cli_images_per_s_excl_load": round(n / max(cli - load, 1e-9), 3)}


# ---------------------------------------------------------------------- onnx
def bench_onnx(size: int, repeats: int, tmp: Path) -> dict:
    import torch

    from semstyle import Stylizer
    from semstyle.export import OnnxStylizer, export_onnx
    from semstyle.export.graphs import build_graph
    from semstyle.io.images import to_tensor

    contents, styles = _assets()
    t0 = time.perf_counter()
    full = export_onnx(tmp / "model.onnx", "full", 128)
    style_rep = export_onnx(tmp / "style.onnx", "style", 128)
    export_s = time.perf_counter() - t0
    ox = OnnxStylizer(full.path, style_rep.path, size=size, style_size=size)
    graph = build_graph("full")
    st = Stylizer(NetworkConfig(device="cpu"), defaults=StylizeOptions(size=size, style_size=size))
    content = Image.open(contents[0]).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    mean, std = ox.style_stats(styles[0])
    x = to_tensor(content)
    with torch.inference_mode():
        ref = graph(x, torch.from_numpy(mean), torch.from_numpy(std), torch.tensor(1.0)).numpy()
    got = ox.run(x.numpy(), mean, std, 1.0)
    st.encode_style(styles[0])  # cached: all three time the content pass only

    def torch_fp32() -> None:
        with torch.inference_mode():
            graph(x, torch.from_numpy(mean), torch.from_numpy(std), torch.tensor(1.0))

    runs = {"pytorch_fp32": torch_fp32, "stylizer": lambda: st.stylize(content, styles[0]),
            "onnxruntime": lambda: ox.run(x.numpy(), mean, std, 1.0)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats + 1):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            if r:  # the first round warms up
                times[k].append(time.perf_counter() - t0)
    return {"size": size, "export_seconds": round(export_s, 1), "max_abs_diff": float(np.abs(got - ref).max()),
            "check_max_abs_diff_128": full.max_abs_diff, "style_check_max_abs_diff_128": style_rep.max_abs_diff,
            "stylizer_precision": "bf16" if st.bf16 else "fp32",
            **{f"{k}_median_s": round(statistics.median(v), 3) for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--sizes", default="1024,2048,4096", help="tiling: content sides")
    ap.add_argument("--untiled-max", type=int, default=1024, help="tiling: also run untiled up to this side")
    ap.add_argument("--batch", type=int, default=12, help="batch: number of contents")
    ap.add_argument("--repeats", type=int, default=3, help="onnx: timed rounds")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child-tiling", nargs=4, metavar=("CONTENT", "STYLE", "SIZE", "TILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_tiling:
        c, s, size, tile = args.child_tiling
        print(json.dumps(child_tiling(c, s, int(size), int(tile))))
        return
    import torch

    torch.set_num_threads(2)
    parts = [p for p in args.parts.split(",") if p]
    results: dict[str, object] = {"cpu": os.cpu_count(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "tiling" in parts:
            results["tiling"] = bench_tiling([int(v) for v in args.sizes.split(",")], args.untiled_max, tmp)
        if "seam" in parts:
            results["seam"] = bench_seam()
        if "batch" in parts:
            results["batch"] = bench_batch(args.batch, tmp)
        if "onnx" in parts:
            results["onnx"] = bench_onnx(512, args.repeats, tmp)
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
