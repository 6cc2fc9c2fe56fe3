"""The bundled demo assets, the demo script end to end, and a smoke run of the benchmark."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semstyle.assets import content_images, style_images
from semstyle.config import NetworkConfig, StylizeOptions

REPO = Path(__file__).resolve().parents[1]
PAD = 4  # semstyle.viz.grid's padding between cells


def test_assets_exist_load_and_are_small() -> None:
    contents, styles = content_images(), style_images()
    assert [p.stem for p in contents] == ["astronaut", "chelsea", "coffee"]
    assert sorted(p.stem for p in styles) == ["composition_vii", "starry_night", "the_scream", "wave"]
    for p in contents + styles:
        with Image.open(p) as im:
            im.load()
            assert im.mode == "RGB" and im.format == "JPEG"
            assert max(im.size) == (384 if p in contents else 512)
    assert sum(p.stat().st_size for p in contents + styles) < 1_000_000


def test_assets_are_credited() -> None:
    credits = (REPO / "docs" / "ASSETS.md").read_text(encoding="utf-8")
    for p in content_images() + style_images():
        assert f"`{p.name}`" in credits


def test_demo_script_writes_the_contact_sheet(tmp_path: Path) -> None:
    cell = 48
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--size", "96", "--cell", str(cell),
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    out = tmp_path / "demo_contact_sheet.png"
    assert str(out) in res.stdout and "total time" in res.stdout
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind
    with Image.open(out) as im:
        assert im.format == "PNG"
        sheet = np.asarray(im.convert("RGB")).astype(np.int16)
    n_rows, n_cols = 1 + len(content_images()), 1 + len(style_images())  # originals on the edges
    assert sheet.shape == (n_rows * cell + (n_rows + 1) * PAD, n_cols * cell + (n_cols + 1) * PAD, 3)

    def cell_at(r: int, c: int) -> np.ndarray:
        y, x = PAD + r * (cell + PAD), PAD + c * (cell + PAD)
        return sheet[y:y + cell, x:x + cell]

    assert (cell_at(0, 0) == 255).all()  # the corner is blank
    for r in range(1, n_rows):  # every result differs from its content and from the other styles
        results = [cell_at(r, c) for c in range(1, n_cols)]
        for c, res_cell in enumerate(results):
            assert np.abs(res_cell - cell_at(r, 0)).mean() > 5
            assert np.abs(res_cell - cell_at(0, c + 1)).mean() > 5
        assert np.abs(results[0] - results[1]).mean() > 5


def test_benchmark_smoke(tmp_path: Path) -> None:
    md = tmp_path / "bench.md"
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_stylize.py"), "--sizes", "64", "--repeats", "1",
         "--warmup", "0", "--no-subprocess", "--md", str(md)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "canonical" in res.stdout and "| 64² |" in res.stdout
    text = md.read_text(encoding="utf-8")
    assert "canonical" in text and "PSNR" in text and "torch" in text


@pytest.fixture(scope="module")
def bench_module():
    spec = importlib.util.spec_from_file_location("bench_stylize", REPO / "benchmarks" / "bench_stylize.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_canonical_baseline_matches_semstyle_fp32(bench_module, tmp_path: Path) -> None:
    """The benchmark compares like with like: the inline reference pipeline and semstyle in fp32
    compute the same image (same weights, same AdaIN), up to float rounding."""
    from semstyle import Stylizer

    content, style = bench_module.make_inputs(64, tmp_path)
    ref = bench_module.Canonical(64)(content, style)
    ours = (
        Stylizer(NetworkConfig(precision="fp32", device="cpu"), defaults=StylizeOptions(size=64, style_size=64))
        .stylize(content, style)
        .image
    )
    ref.save(tmp_path / "ref.png")
    ours.save(tmp_path / "ours.png")
    assert ref.size == ours.size == (64, 64)
    assert bench_module.psnr(tmp_path / "ref.png", tmp_path / "ours.png") > 40
    # and it is a real stylisation, not a copy of the content
    assert bench_module.psnr(tmp_path / "ref.png", content) < 25


def test_the_floor_carries_frame_zero_along_the_chained_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench_video.py --floor``'s locked texture: on a pan of 3 px a frame with its exact flow, frame t is frame 0
    moved by 3t px (away from the entering border), and its warping error along that flow is zero."""
    pytest.importorskip("cv2", reason="the video extra (opencv) is installed by `make setup`")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from video_common import carried_through

    from semstyle import motion

    rng = np.random.default_rng(0)
    wide = (rng.random((40, 80, 3)) * 255).astype(np.uint8)
    frames = [wide[:, 20 - 3 * t: 60 - 3 * t] for t in range(4)]  # the camera pans left: content moves right
    back = np.zeros((40, 40, 2), np.float32)
    back[..., 0] = -3.0  # frame t's pixel x was at x − 3 in frame t − 1
    flows = [(back, np.ones((40, 40), bool))] * 3
    outs = carried_through(frames[0], flows)
    assert len(outs) == 4 and outs[0] is frames[0]
    for t in (1, 2, 3):
        assert np.array_equal(outs[t][:, 3 * t:], frames[t][:, 3 * t:])  # the part of frame 0 still in view
        assert motion.carried_error(outs[t - 1], outs[t], *flows[t - 1]) < 1e-9
