"""Every bad input of the CLI: one ``semstyle: error:`` line, exit status 2, no traceback, nothing written.

Most cases run ``semstyle.cli.main.main`` in-process; a few run the installed ``semstyle`` script
in a subprocess to prove that what a user sees really is one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle.cli.main import main


@dataclass
class Case:
    folder: Path  # where the inputs live
    out: Path  # the output folder (exists, holds one earlier result)
    content: Path
    style_a: Path
    style_b: Path


@pytest.fixture
def case(tmp_path: Path, images) -> Case:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for src in (images.content, images.style_a, images.style_b):
        shutil.copy(src, inputs / src.name)
    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out / "earlier.png")
    return Case(inputs, out, inputs / images.content.name, inputs / images.style_a.name, inputs / images.style_b.name)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    try:
        rc = main(["stylize", *args])
    except SystemExit as e:  # argparse's usage errors end the process as the script would
        rc = int(e.code or 0)
    got = capsys.readouterr()
    return rc, got.out, got.err


def assert_refused(rc: int, err: str, words: str | list[str], status: int = 2) -> None:
    assert rc == status, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("semstyle: error: "), err
    for w in [words] if isinstance(words, str) else words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


def _write_truncated(path: Path, fmt: str) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _mask(path: Path, w: int, h: int, labels: int = 2) -> Path:
    """Vertical bands: label 0 on the left, 1 next, … (an 8-bit integer label map)."""
    arr = (np.arange(w)[None, :] * labels // w).repeat(h, axis=0).astype(np.uint8)
    Image.fromarray(arr, mode="L").save(path)
    return path


SMALL = ["--size", "128", "--style-size", "128"]

# (id, build(case) -> (args, words in the one error line))
BAD: list[tuple[str, Callable[[Case], tuple[list[str], str | list[str]]]]] = [
    ("missing-content", lambda c: ([str(c.folder / "nope.jpg"), str(c.style_a)],
                                   ["content", "nope.jpg", "does not exist"])),
    ("missing-style", lambda c: ([str(c.content), str(c.folder / "nope.png")],
                                 ["style", "nope.png", "does not exist"])),
    ("empty-file", lambda c: ([str(_write(c.folder / "empty.jpg", b"")), str(c.style_a)],
                              ["empty.jpg", "is an empty file"])),
    ("truncated-jpeg", lambda c: ([str(_write_truncated(c.folder / "cut.jpg", "JPEG")), str(c.style_a)],
                                  ["cut.jpg", "damaged or truncated"])),
    ("truncated-png-style", lambda c: ([str(c.content), str(_write_truncated(c.folder / "cut.png", "PNG"))],
                                       ["style image", "cut.png", "damaged or truncated"])),
    ("text-as-jpg", lambda c: ([str(_write(c.folder / "notes.jpg", b"shopping list")), str(c.style_a)],
                               ["notes.jpg", "not an image file"])),
    ("empty-folder-as-content", lambda c: ([str(_mkdir(c.folder / "d")), str(c.style_a)],
                                           ["content folder", "holds no images"])),
    ("folder-with-file-output", lambda c: ([str(c.content), str(c.folder)], ["-o must be a folder", "x.png"])),
    ("folder-as-mask", lambda c: ([str(c.content), str(c.style_a), str(c.style_b), "--mask", str(c.folder)],
                                  ["label map", "is a folder"])),
    ("over-max-pixels", lambda c: ([str(c.content), str(c.style_a), "--max-pixels", "10000"],
                                   ["128x128 = 16,384 pixels", "over the limit of 10,000", "--max-pixels"])),
    ("unknown-extension", lambda c: ([str(c.content), str(c.style_a), "-o", str(c.out / "x.xyz")],
                                     ["unknown output extension '.xyz'", ".png"])),
    ("alpha-1.5", lambda c: ([str(c.content), str(c.style_a), "--alpha", "1.5"],
                             "alpha must be in [0, 1.25], got 1.5")),
    ("alpha-not-a-number", lambda c: ([str(c.content), str(c.style_a), "--alpha", "strong"],
                                      ["--alpha", "invalid float value: 'strong'"])),
    ("size-too-small", lambda c: ([str(c.content), str(c.style_a), "--size", "4"], ["size must be 0", "got 4"])),
    ("style-weights-count", lambda c: ([str(c.content), str(c.style_a), str(c.style_b), "--style-weights", "1,2,3"],
                                       "got 3 style weights for 2 styles")),
    ("style-weights-negative", lambda c: ([str(c.content), str(c.style_a), str(c.style_b), "--style-weights", "1,-1"],
                                          "non-negative")),
    ("style-weights-text", lambda c: ([str(c.content), str(c.style_a), "--style-weights", "a,b"],
                                      "comma-separated numbers")),
    ("no-cuda", lambda c: ([str(c.content), str(c.style_a), "--device", "cuda"], "no CUDA GPU")),
]


@pytest.mark.parametrize("build", [b for _, b in BAD], ids=[i for i, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(
    build: Callable[[Case], tuple[list[str], str | list[str]]], case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    args, words = build(case)
    if "no CUDA" in str(words) and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    if "-o" not in args:
        args += ["-o", str(case.out / "x.png")]
    before = _snapshot(case.out)
    rc, out, err = run(capsys, args)
    assert_refused(rc, err, words)
    assert _snapshot(case.out) == before  # no output, no temp file, the earlier result untouched
    assert out == ""


def test_existing_output_is_refused_without_overwrite(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(case.out)
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), "-o", str(case.out / "earlier.png")])
    assert_refused(rc, err, ["earlier.png", "already exists", "--overwrite"])
    assert _snapshot(case.out) == before


def test_wrong_weights_file_is_refused(case: Case, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "decoder.pth"
    torch.save({"weight": torch.zeros(3, 3)}, bad)
    before = _snapshot(case.out)
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), "-o", str(case.out / "x.png"),
                              "--decoder-weights", str(bad), *SMALL])
    assert_refused(rc, err, ["weights in", "decoder.pth", "do not fit the decoder"])
    assert _snapshot(case.out) == before


def test_mask_with_other_aspect_ratio_is_refused(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    mask = _mask(case.folder / "wide_mask.png", 128, 64)
    before = _snapshot(case.out)
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), str(case.style_b), "--mask", str(mask),
                              "-o", str(case.out / "x.png"), *SMALL])
    assert_refused(rc, err, ["mask is 128x64", "128x128", "aspect ratio"])
    assert _snapshot(case.out) == before


def test_mask_regions_must_match_styles(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    mask = _mask(case.folder / "three.png", 128, 128, labels=3)
    before = _snapshot(case.out)
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), str(case.style_b), "--mask", str(mask),
                              "-o", str(case.out / "x.png"), *SMALL])
    assert_refused(rc, err, ["the mask has 3 regions but 2 styles"])
    assert _snapshot(case.out) == before


def test_mask_without_the_named_region_is_refused(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    mask = _mask(case.folder / "two.png", 128, 128, labels=2)  # labels 0 and 1
    before = _snapshot(case.out)
    rc, _, err = run(capsys, [str(case.content), "--style", f"7={case.style_a}", "--mask", str(mask),
                              "-o", str(case.out / "x.png"), *SMALL])
    assert_refused(rc, err, ["no region", "7"])
    assert _snapshot(case.out) == before


def test_missing_output_folder_is_created_and_small_mask_is_resized(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    mask = _mask(case.folder / "half_size.png", 64, 64)  # half the content's size: resized (nearest)
    target = case.folder.parent / "new" / "deeper" / "out.png"
    rc, out, err = run(capsys, [str(case.content), str(case.style_a), str(case.style_b), "--mask", str(mask),
                                "-o", str(target), *SMALL])
    assert rc == 0, err
    assert out.strip() == str(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]
    first = target.read_bytes()
    assert Image.open(target).size == (128, 128)

    # the output exists now: refused without --overwrite, replaced with it
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), "-o", str(target), *SMALL])
    assert_refused(rc, err, "already exists")
    assert target.read_bytes() == first
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), "-o", str(target), "--overwrite", *SMALL])
    assert rc == 0, err
    assert target.read_bytes() != first
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


# ----------------------------------------------------------------------------- real processes
def _semstyle() -> list[str]:
    script = Path(sys.executable).parent / "semstyle"
    return [str(script)] if script.exists() else [sys.executable, "-m", "semstyle"]


def _run_process(args: list[str], cwd: Path, threads: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    return subprocess.run([*_semstyle(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_installed_script_prints_one_line_not_a_traceback(case: Case, kind: str) -> None:
    if kind == "truncated":
        bad = _write_truncated(case.folder / "cut.png", "PNG")
        words = ["cut.png", "damaged or truncated"]
    else:
        bad = case.folder / "readme.png"
        bad.write_text("# not a picture\n")
        words = ["readme.png", "not an image file"]
    before = _snapshot(case.out)
    proc = _run_process(["stylize", str(bad), str(case.style_a), "-o", str(case.out / "x.png")], case.folder)
    assert_refused(proc.returncode, proc.stderr, words)
    assert proc.stdout == ""
    assert _snapshot(case.out) == before


def test_installed_script_usage_error_and_version(case: Case) -> None:
    args = ["stylize", str(case.content), str(case.style_a), "-o", "x.png", "--alpha", "lots"]
    proc = _run_process(args, case.folder)
    assert_refused(proc.returncode, proc.stderr, ["--alpha", "invalid float value"])
    proc = _run_process(["--version"], case.folder)
    assert proc.returncode == 0 and proc.stdout.strip() == "semstyle 0.1.0"
    proc = _run_process(["stylize", "--help"], case.folder)
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--preserve-color" in proc.stdout


def test_installed_script_fast_exit_keeps_the_whole_output(case: Case, capsys: pytest.CaptureFixture[str],
                                                           one_thread: None) -> None:
    """The console entry ends with os._exit after the exit handlers and a flush: the output file is
    complete (same bytes as an in-process run), stdout is flushed and the exit status kept. Both runs in fp32
    on one thread, so the same computation gives the same bytes on any CPU."""
    exact = [*SMALL, "--precision", "fp32"]
    proc = _run_process(["stylize", str(case.content), str(case.style_a), "-o", str(case.out / "p.png"), *exact],
                        case.folder, threads=1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("p.png")  # printed before the fast exit, not lost in a buffer
    rc, _, err = run(capsys, [str(case.content), str(case.style_a), "-o", str(case.out / "q.png"), *exact])
    assert rc == 0, err
    assert (case.out / "p.png").read_bytes() == (case.out / "q.png").read_bytes()
    assert not [p for p in case.out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    proc = _run_process(["stylize", str(case.folder / "none.png"), str(case.style_a), "-o", "y.png"], case.folder)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
