"""Whole-process time of one-picture ``semstyle stylize`` against the canonical AdaIN script, and where
semstyle's process spends its time before the first convolution.

    python benchmarks/bench_startup.py                      # 512 px, 5 interleaved rounds
    python benchmarks/bench_startup.py --size 128 --rounds 1  # smoke

Both commands run as fresh processes on the same bundled photo and painting at ``--size``
(canonical: ``benchmarks/canonical_adain.py``, pytorch-AdaIN's test.py written out; semstyle:
``semstyle stylize C S -o out.png --size N --style-size N``), alternating, 2 threads each; medians
and their ratio are printed. The breakdown runs the CLI's steps in one fresh process with timers:
importing, building the parser, resolving and verifying the weights (sha256, remembered across
processes once computed), loading them into the networks, reading the images.
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

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SEMSTYLE = str(Path(PY).with_name("semstyle"))

BREAKDOWN = r"""
import json, sys, time
t = {}
t0 = time.perf_counter()
import torch
t["import torch"] = time.perf_counter() - t0; t1 = time.perf_counter()
from semstyle.cli.main import build_parser
from semstyle.config import NetworkConfig
from semstyle.networks import Networks
from semstyle.pipelines.stylize import Stylizer
t["import semstyle"] = time.perf_counter() - t1; t1 = time.perf_counter()
build_parser()
t["build the parser"] = time.perf_counter() - t1; t1 = time.perf_counter()
from semstyle.models import weights as W
for role in ("encoder", "decoder"):
    path, sha, _ = W.resolve("pretrained", role)
    assert W.verified_sha256(path) == sha
t["verify the weights (sha256, remembered)"] = time.perf_counter() - t1; t1 = time.perf_counter()
for role in ("encoder", "decoder"):
    path, sha, _ = W.resolve("pretrained", role)
    W.sha256_of(path)
t["(hashing them afresh, for comparison)"] = time.perf_counter() - t1; t1 = time.perf_counter()
nets = Networks.from_config(NetworkConfig(device="cpu"))
t["build and load the networks"] = time.perf_counter() - t1; t1 = time.perf_counter()
from semstyle.io.images import load_image
load_image(sys.argv[1]); load_image(sys.argv[2])
t["read both images"] = time.perf_counter() - t1
print(json.dumps(t))
"""


def run(cmd: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="auto", help="semstyle's --precision (auto = bf16 where native)")
    args = ap.parse_args()
    from semstyle import assets

    content = str(assets.content_images()[0])
    style = str(assets.style_images()[1])
    with tempfile.TemporaryDirectory() as tmp:
        canonical = [PY, str(REPO / "benchmarks" / "canonical_adain.py"), content, style, f"{tmp}/c.png",
                     "--size", str(args.size)]
        ours = [SEMSTYLE, "stylize", content, style, "-o", f"{tmp}/s.png", "--size", str(args.size),
                "--style-size", str(args.size), "--precision", args.precision, "--overwrite"]
        run(ours)  # warm the file cache and remember the weights' digests once, as any second run would
        run(canonical)
        times: dict[str, list[float]] = {"canonical": [], "semstyle": []}
        for _ in range(args.rounds):
            times["canonical"].append(run(canonical))
            times["semstyle"].append(run(ours))
        proc = subprocess.run([PY, "-c", BREAKDOWN, content, style], check=True, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "2"})
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"whole process at {args.size} px, semstyle --precision {args.precision}, median of {args.rounds} "
          f"interleaved runs (load {os.getloadavg()[0]:.2f}):")
    for k, v in times.items():
        print(f"  {k:10s} {med[k]:6.2f} s   ({', '.join(f'{x:.2f}' for x in v)})")
    print(f"  ratio semstyle / canonical: {med['semstyle'] / med['canonical']:.2f}x")
    print("semstyle before the first convolution (one fresh process):")
    for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items():
        print(f"  {k:42s} {v * 1000:7.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
