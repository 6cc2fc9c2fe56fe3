"""What glibc's allocator costs: each workload with glibc's default thresholds and with ``keep_freed_memory``.

    python benchmarks/bench_allocator.py                              # three rounds, about 6 minutes
    python benchmarks/bench_allocator.py --model painting.safetensors  # + that style model's student
    python benchmarks/bench_allocator.py --only networks --compile     # the networks under torch.compile
    python benchmarks/bench_allocator.py --rounds 1 --frames 3         # smoke

Every measurement runs in a fresh process (the setting is process-wide), the two settings alternating round by
round, so both see the same machine; the table gives each workload's median over the rounds, their ratio, the
minor page faults per call and the peak resident memory. Workloads: the fast model's networks (a frame tensor in,
a picture out) at 640×272 — the real-time student's shape and size; with ``--model``, that model's student; VGG19
``Stylizer.stylize`` of a bundled photo at 512 px; adaptation training steps (``semstyle adapt``'s recipe on the
bundled photos); one tiled VGG19 stylisation at 2048 px, for its peak memory. bf16 where the CPU has it natively,
as the product runs. Run it alone: it measures speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from semstyle.allocator import KEEP_BYTES

WORKLOADS = ("fast networks 640×272", "student networks 640×272", "VGG19 stylize 512 px", "adapt step",
             "VGG19 stylize 2048 px, tiled")
BIG = 2048  # the tiled workload's side: one call, for its peak memory


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(call: Callable[[], object], n: int, warmup: int = 2) -> tuple[float, float]:
    """(median seconds per call, minor page faults per call) over ``n`` calls after ``warmup``."""
    for _ in range(warmup):
        call()
    times, f0 = [], _faults()
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (_faults() - f0) / n


def networks_call(student: str | None, compile_: bool) -> Callable[[], object]:
    """One frame through the fast model's (or a style model's student's) encoder, AdaIN and decoder;
    ``compile_``: the networks through ``torch.compile`` (``--compile``)."""
    from semstyle import functional as FN
    from semstyle.config import NetworkConfig
    from semstyle.networks import Networks

    if student:
        from semstyle.models.style_model import load_style_model

        cfg = NetworkConfig(model="fast", decoder=student, compile=compile_)
        nets = Networks.from_config(cfg, load_style_model(student))
    else:
        nets = Networks.from_config(NetworkConfig(model="fast", compile=compile_))
    x = torch.rand(1, 3, 272, 640, generator=torch.Generator().manual_seed(0))
    mean, std = torch.full((1, nets.channels, 1, 1), 0.5), torch.full((1, nets.channels, 1, 1), 0.7)

    def call() -> torch.Tensor:
        with torch.inference_mode():
            f = nets.encode(x)["relu4_1"]
            return nets.decode(FN.adain_from_stats(f, mean, std))

    return call


def stylize_call(side: int) -> Callable[[], object]:
    """VGG19 ``Stylizer.stylize`` of the first bundled photo at ``side`` px (tiled past the auto threshold)."""
    from semstyle import Stylizer, assets
    from semstyle.io.images import load_image

    st = Stylizer()
    stats = st.encode_style(assets.style_images()[0])
    photo = load_image(assets.content_images()[0])
    photo = photo.resize((side, side * photo.height // photo.width))
    return lambda: st.stylize(photo, stats, size=0, max_pixels=side * side)


def adapt_steps(n: int) -> tuple[float, float]:
    """Seconds and faults per training step of the adaptation's recipe on the bundled photos."""
    from semstyle import assets
    from semstyle.training.adapt import adapt_config
    from semstyle.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        run, contents = Path(tmp) / "run", Path(tmp) / "contents"
        (run / "style").mkdir(parents=True)
        contents.mkdir()
        (run / "style" / "style.jpg").symlink_to(assets.style_images()[0])
        for p in assets.content_images():
            (contents / p.name).symlink_to(p)
        cfg = adapt_config(run, str(contents), steps=n + 2)
        tr = Trainer(cfg)
        try:
            return timed(tr.train_step, n)
        finally:
            tr.close()


def child(workload: str, keep: bool, frames: int, model: str | None, compile_: bool, limit: int) -> dict[str, float]:
    from semstyle.allocator import keep_freed_memory

    applied = keep_freed_memory(limit) if keep else False
    torch.set_num_threads(2)
    if workload == "adapt step":
        sec, faults = adapt_steps(max(2, frames // 5))
    elif workload == "VGG19 stylize 512 px":
        sec, faults = timed(stylize_call(512), max(3, frames // 4))
    elif workload.startswith("VGG19 stylize"):
        sec, faults = timed(stylize_call(BIG), 1, warmup=0)
    else:
        sec, faults = timed(networks_call(model if workload.startswith("student") else None, compile_), frames)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sec": sec, "faults": faults, "peak_mb": peak_mb, "applied": float(applied)}


def measure(workload: str, keep: bool, args: argparse.Namespace) -> dict[str, float]:
    model = args.model
    cmd = [sys.executable, __file__, "--child", workload, "--frames", str(args.frames)]
    cmd += ["--keep"] if keep else []
    cmd += ["--compile"] if args.compile else []
    cmd += ["--limit", str(args.limit)] if args.limit else []
    cmd += ["--model", model] if model else []
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per workload and setting")
    ap.add_argument("--frames", type=int, default=30, help="timed calls of the networks (fewer for the others)")
    ap.add_argument("--model", help="a style model with a student (semstyle adapt --student)")
    ap.add_argument("--compile", action="store_true", help="the networks workloads through torch.compile")
    ap.add_argument("--limit", type=int, help="keep_freed_memory's limit in bytes (default: its own)")
    ap.add_argument("--only", default="", help="only the workloads whose name contains this text")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.keep, args.frames, args.model, args.compile,
                                      args.limit or KEEP_BYTES)))
        return 0
    load = os.getloadavg()[0]
    rows = []
    for workload in WORKLOADS:
        if (workload.startswith("student") and not args.model) or args.only not in workload:
            continue
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for keep in (False, True):
                runs[keep].append(measure(workload, keep, args))
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("sec", "faults", "peak_mb")}
               for k, v in runs.items()}
        if not all(r["applied"] for r in runs[True]):
            print(f"{workload}: keep_freed_memory did not apply here (not glibc, or SEMSTYLE_MALLOC=default)")
        rows.append((workload, med[False], med[True]))
    print(f"median of {args.rounds} processes each, settings alternating; 2 threads"
          f"{'; the networks through torch.compile' if args.compile else ''}; load average {load:.2f} at "
          f"the start, {os.getloadavg()[0]:.2f} at the end\n")
    print("| workload | glibc defaults | kept freed memory | speed-up | page faults per call | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, d, k in rows:
        per_call = name == "adapt step" or name.startswith("VGG19 stylize 2048")  # seconds, not calls per second
        unit = (lambda s: f"{s:.2f} s") if per_call else (lambda s: f"{1 / s:.2f} /s")
        print(f"| {name} | {unit(d['sec'])} | {unit(k['sec'])} | {d['sec'] / k['sec']:.2f}× | "
              f"{d['faults']:.0f} → {k['faults']:.0f} | {d['peak_mb']:.0f} → {k['peak_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
