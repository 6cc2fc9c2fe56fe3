"""Batch throughput (issue 17): images per second at 512 px, local engine vs Ray with 1 and 2 workers.

Every engine stylises the same N BSDS500 test photos (``../shared/data/content/BSDS500/test``,
research use only) with one style, into a fresh folder, ``--repeats`` times (medians quoted).
Per run it splits the wall time into

- **start**: the Ray engine's local cluster coming up (``ray.init``; 0 for local);
- **first**: from the batch's start to its first written image (actors starting, torch imported,
  networks loaded, the style encoded — the local engine pays only the last two);
- **steady**: images per second after the first written batch, up to the last image: the number
  that scales with machines;

and checks every engine's images against the local engine's (max grey-level difference).

    python benchmarks/bench_batch.py                 # 16 photos, 3 repeats
    python benchmarks/bench_batch.py --images 8 --repeats 1 --size 256
    python benchmarks/bench_batch.py --ray-address 10.0.0.5:6379 --workers 2,4,8 --images 200  # a cluster
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle.batch import RayOptions, plan, run_batch
from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
STYLE = DATA / "style" / "pytorch-AdaIN" / "la_muse.jpg"


def one_run(contents: list[Path], out: Path, cfg: StylizeConfig, engine: str, workers: int,
            batch_size: int, address: str | None) -> dict[str, float]:
    import ray

    times: list[float] = []
    t0 = time.perf_counter()
    start = 0.0
    if engine == "ray":  # a local cluster started for the run, or the given one joined
        ray.init(address=address or "local", **({} if address else {"num_cpus": os.cpu_count()}),
                 include_dashboard=None if address else False, log_to_driver=False, configure_logging=False)
        start = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = run_batch(plan(contents, [STYLE], out), config=cfg, engine=engine,
                    ray=RayOptions(workers=workers, batch_size=batch_size),
                    callback=lambda _r: times.append(time.perf_counter()))
    end = time.perf_counter()
    if engine == "ray":
        ray.shutdown()
    assert res.failed == 0, [r.message for r in res.rows if r.status == "error"]
    n = len(times)
    k = sum(t - times[0] < 1e-3 for t in times)  # the first batch's rows arrive together on Ray
    return {"start": start, "first": times[0] - t1, "steady": (n - k) / (times[-1] - times[0]) if n > k else 0.0,
            "overall": n / (end - t0), "workers": float(len({r.worker for r in res.rows}))}


def max_diff(a: Path, b: Path) -> int:
    worst = 0
    for p in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(p)).astype(int)
        y = np.asarray(Image.open(b / p.name)).astype(int)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--workers", default="1,2", help="Ray worker counts to measure (default 1,2)")
    ap.add_argument("--ray-address", help="measure on this cluster (after `ray start --head`) instead of a local one")
    args = ap.parse_args()
    contents = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))[: args.images]
    if len(contents) < args.images or not STYLE.exists():
        raise SystemExit(f"need {args.images} photos in {DATA / 'content/BSDS500/test'} and {STYLE}")
    cfg = StylizeConfig(NetworkConfig(device="cpu"), StylizeOptions(size=args.size, style_size=args.size))
    counts = [int(w) for w in args.workers.split(",")]
    setups = [("local", "local", 1)] + [(f"ray, {w} worker{'s' if w > 1 else ''}", "ray", w) for w in counts]
    print(f"{len(contents)} photos × 1 style at {args.size} px, {args.repeats} repeats, batch size "
          f"{args.batch_size}; {os.cpu_count()} CPUs; load average before {os.getloadavg()[0]:.2f}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in setups}
    try:
        for rep in range(args.repeats):
            for name, engine, workers in setups:
                out = tmp / f"{engine}{workers}_{rep}"
                results[name].append(one_run(contents, out, cfg, engine, workers, args.batch_size,
                                             args.ray_address))
        print("\n| engine | cluster start s | to first image s | steady img/s | overall img/s | × local "
              "(overall) | workers used | max diff vs local |\n|---|---:|---:|---:|---:|---:|---:|---:|")
        base = statistics.median(r["overall"] for r in results["local"])
        for name, engine, workers in setups:
            med = {k: statistics.median(r[k] for r in results[name]) for k in results[name][0]}
            diff = max_diff(tmp / "local1_0", tmp / f"{engine}{workers}_0")
            print(f"| {name} | {med['start']:.1f} | {med['first']:.1f} | {med['steady']:.3f} | "
                  f"{med['overall']:.3f} | {med['overall'] / base:.2f} | {med['workers']:.0f} | {diff} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
