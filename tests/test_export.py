"""ONNX export: the CLI, the graphs' agreement with PyTorch and with the Stylizer, one-line errors."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort  # the export extra, installed by scripts/setup.sh
import pytest
import torch
from conftest import content_array, warm_style_array
from PIL import Image

from semstyle.cli.main import main


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Both graphs exported once through the CLI (traced at 64 px); the CLI's report kept."""
    folder = tmp_path_factory.mktemp("onnx")
    full, style = folder / "model.onnx", folder / "style.onnx"
    out = []
    for path, part in ((full, "full"), (style, "style")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["export", "--format", "onnx", "-o", str(path), "--size", "64", "--part", part])
        assert rc == 0
        out.append(buf.getvalue())
    return full, style, "".join(out)


def test_cli_reports_the_check(graphs) -> None:
    full, style, report = graphs
    assert full.stat().st_size > 20e6 and style.stat().st_size > 10e6  # the weights are inside
    lines = [ln for ln in report.splitlines() if "max |onnxruntime - pytorch|" in ln]
    assert len(lines) == 2
    diffs = [float(ln.split("= ")[1].split(";")[0]) for ln in lines]
    assert all(d < 1e-4 for d in diffs)  # measured ≈ 2e-6 (full) and ≈ 5e-7 (style)


def test_full_graph_matches_pytorch_at_another_size(graphs) -> None:
    """Dynamic H and W, not multiples of 8: the graph pads and crops like the Stylizer."""
    from semstyle.export.graphs import build_graph

    sess = ort.InferenceSession(str(graphs[0]), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    x = torch.from_numpy(content_array(101, 75, seed=3)).permute(2, 0, 1)[None].float() / 255
    mean = torch.rand(1, 512, 1, 1, generator=gen)
    std = torch.rand(1, 512, 1, 1, generator=gen) + 0.2
    alpha = torch.tensor(0.7)
    with torch.inference_mode():
        ref = build_graph("full")(x, mean, std, alpha).numpy()
    got = sess.run(None, {"content": x.numpy(), "style_mean": mean.numpy(), "style_std": std.numpy(),
                          "alpha": alpha.numpy()})[0]
    assert got.shape == (1, 3, 75, 101)
    assert np.abs(got - ref).max() < 1e-4  # output in [0, 1]; measured ≈ 2e-6


def test_onnx_pipeline_reproduces_the_stylizer(graphs) -> None:
    """style graph → statistics → full graph gives the Stylizer's fp32 output (to 8-bit rounding)."""
    from semstyle import Stylizer
    from semstyle.export import OnnxStylizer

    content = Image.fromarray(content_array(96, 72, seed=4))
    style = Image.fromarray(warm_style_array(80, 80))
    st = Stylizer(size=96, style_size=80, device="cpu", precision="fp32", tile=-1)
    want = np.asarray(st.stylize(content, style, alpha=0.8).image).astype(np.int16)
    entry = st.encode_style(style)
    ox = OnnxStylizer(graphs[0], graphs[1], size=96, style_size=80)
    mean, std = ox.style_stats(style)
    assert np.abs(mean - entry.mean.numpy()).max() < 1e-3 and np.abs(std - entry.std.numpy()).max() < 1e-3
    got = np.asarray(ox.stylize(content, style, alpha=0.8)).astype(np.int16)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1


def test_missing_onnx_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    rc = main(["export", "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "pip install semstyle[export]" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("argv, message", [
    (["-o", "{tmp}/m.png"], "writes a .onnx file"),
    (["-o", "{tmp}/m.onnx", "--size", "8"], "--size must be between"),
    (["-o", "{tmp}/m.onnx", "--format", "tflite"], "invalid choice"),
    (["-o", "{tmp}/exists.onnx"], "already exists"),
])
def test_bad_arguments_fail_fast(argv: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exists.onnx").write_bytes(b"x")
    with pytest.raises(SystemExit, match="^2$") if "--format" in argv else contextlib.nullcontext():
        rc = main(["export", *[a.format(tmp=tmp_path) for a in argv]])
        assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("semstyle: error:") and err.count("\n") == 1

