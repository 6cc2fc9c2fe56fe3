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
from semstyle.config import NetworkConfig, StylizeOptions


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
    st = Stylizer(
        NetworkConfig(device="cpu", precision="fp32"), defaults=StylizeOptions(size=96, style_size=80, tile=-1)
    )
    want = np.asarray(st.stylize(content, style, alpha=0.8).image).astype(np.int16)
    entry = st.encode_style(style)
    ox = OnnxStylizer(graphs[0], graphs[1], size=96, style_size=80)
    mean, std = ox.style_stats(style)
    assert np.abs(mean - entry.mean.numpy()).max() < 1e-3 and np.abs(std - entry.std.numpy()).max() < 1e-3
    got = np.asarray(ox.stylize(content, style, alpha=0.8)).astype(np.int16)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1


def test_missing_onnx_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    rc = main(["export", "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "pip install semstyle[export]" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "{tmp}/m.png"], "writes a .onnx file"),
        (["-o", "{tmp}/m.onnx", "--size", "8"], "--size must be between"),
        (["-o", "{tmp}/m.onnx", "--format", "tflite"], "invalid choice"),
        (["-o", "{tmp}/exists.onnx"], "already exists"),
    ],
)
def test_bad_arguments_fail_fast(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exists.onnx").write_bytes(b"x")
    with pytest.raises(SystemExit, match="^2$") if "--format" in argv else contextlib.nullcontext():
        rc = main(["export", *[a.format(tmp=tmp_path) for a in argv]])
        assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("semstyle: error:") and err.count("\n") == 1


# ---------------------------------------------------------------- opset, batches, OnnxStylizer's errors
HALF_GREY = 0.5 / 255  # the outputs become 8-bit: agreeing within half a grey level gives the same pixels but for
# values on a rounding edge; fp32 kernels of two runtimes differ by orders of magnitude less (≈ 1e-6 measured)


@pytest.mark.parametrize("opset", [10, 22])
def test_an_opset_out_of_range_is_refused_in_one_line(
    opset: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semstyle.errors import InputError
    from semstyle.export import export_onnx

    rc = main(["export", "--format", "onnx", "-o", str(tmp_path / "m.onnx"), "--opset", str(opset)])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"semstyle: error: --opset must be between 11 and 21, got {opset}\n"
    with pytest.raises(InputError, match=f"opset must be between 11 and 21, got {opset}"):  # the library's own check
        export_onnx(tmp_path / "m.onnx", "style", 16, opset=opset)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("opset", [11, 21])
def test_the_opsets_at_the_ends_of_the_range_export_and_run(opset: int, tmp_path: Path) -> None:
    import onnx

    from semstyle.export import export_onnx

    rep = export_onnx(tmp_path / "s.onnx", "style", 16, opset=opset)  # checked against PyTorch by onnxruntime
    assert rep.max_abs_diff is not None and rep.max_abs_diff < 1e-3  # relu4_1 statistics are O(1)
    assert [o.version for o in onnx.load(str(rep.path), load_external_data=False).opset_import] == [opset]


def test_a_batch_of_two_matches_pytorch_image_by_image(graphs, one_thread: None) -> None:  # onnxruntime: threads=1
    """The graphs claim a dynamic batch: two contents with one style (broadcast) or one style each, and two styles
    through the style graph, give each image what PyTorch gives it alone."""
    from semstyle.export import OnnxStylizer
    from semstyle.export.graphs import build_graph

    ox = OnnxStylizer(graphs[0], graphs[1], threads=1)
    a = torch.from_numpy(content_array(72, 56, seed=5)).permute(2, 0, 1).float() / 255
    b = torch.from_numpy(content_array(72, 56, seed=6)[::-1].copy()).permute(2, 0, 1).float() / 255
    s1 = torch.from_numpy(warm_style_array(64, 64)).permute(2, 0, 1).float() / 255
    s2 = torch.from_numpy(content_array(64, 64, seed=7)).permute(2, 0, 1).float() / 255
    full, stats = build_graph("full"), build_graph("style")
    alpha = torch.tensor(0.8)
    with torch.inference_mode():
        ref_stats = [stats(s[None]) for s in (s1, s2)]
        got_mean, got_std = ox.style_session.run(None, {"style": torch.stack([s1, s2]).numpy()})
        for i, (m, s) in enumerate(ref_stats):
            assert np.abs(got_mean[i] - m[0].numpy()).max() < 1e-3 and np.abs(got_std[i] - s[0].numpy()).max() < 1e-3
        m1, sd1 = ref_stats[0]
        pair = torch.stack([a, b]).numpy()
        broadcast = ox.run(pair, m1.numpy(), sd1.numpy(), 0.8)
        each = ox.run(pair, torch.cat([m1, ref_stats[1][0]]).numpy(), torch.cat([sd1, ref_stats[1][1]]).numpy(), 0.8)
        assert broadcast.shape == each.shape == (2, 3, 56, 72)
        for i, x in enumerate((a, b)):
            alone = full(x[None], m1, sd1, alpha)[0].numpy()
            assert np.abs(broadcast[i] - alone).max() < HALF_GREY, i
        second = full(b[None], *ref_stats[1], alpha)[0].numpy()
        assert np.abs(each[0] - broadcast[0]).max() < HALF_GREY and np.abs(each[1] - second).max() < HALF_GREY
        assert np.abs(each[1] - broadcast[1]).mean() > 0.02  # the second style was used for the second image


def _one_line(exc: pytest.ExceptionInfo[BaseException], *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 300, msg
    for n in needles:
        assert n in msg, msg


def test_onnx_stylizer_errors_are_clear_one_liners(graphs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.errors import InputError, SemstyleError
    from semstyle.export import OnnxStylizer

    full, style = graphs[0], graphs[1]
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(InputError) as e:
        OnnxStylizer(tmp_path / "missing.onnx")
    _one_line(e, "missing.onnx", "not found")
    with pytest.raises(InputError) as e:
        OnnxStylizer(tmp_path / "junk.onnx")
    _one_line(e, "junk.onnx", "not an ONNX graph")
    with pytest.raises(InputError) as e:
        OnnxStylizer(style)  # the graphs the wrong way round
    _one_line(e, "style.onnx", "'style' graph", "--part full")
    with pytest.raises(InputError) as e:
        OnnxStylizer(full, full)
    _one_line(e, "model.onnx", "'full' graph", "--part style")

    ox = OnnxStylizer(full, size=64)
    content = Image.fromarray(content_array(80, 60, seed=8))
    with pytest.raises(SemstyleError) as e:
        ox.stylize(content, content)  # a style image, but no style graph
    _one_line(e, "--part style")
    ok = (np.zeros((1, 512, 1, 1), np.float32), np.ones((1, 512, 1, 1), np.float32))
    for bad in ((ok[0][0], ok[1][0]), (ok[0][:, :256], ok[1][:, :256]), (ok[0], ok[1][:, :, :, :0])):
        with pytest.raises(InputError) as e:
            ox.stylize(content, bad)
        _one_line(e, "style statistics", "(1, 512, 1, 1)")
    with pytest.raises(InputError) as e:
        ox.stylize(content, ok, alpha=1.5)
    _one_line(e, "alpha must be in [0, 1.25], got 1.5")
    with pytest.raises(InputError) as e:
        ox.stylize(Image.new("RGB", (200, 10)), ok)  # 64×3 after resizing
    _one_line(e, "content image is 64x3 after resizing", "16 px")
    with pytest.raises(InputError) as e:
        ox.run(np.zeros((3, 32, 32), np.float32), *ok)
    _one_line(e, "content must be", "(N, 3, H, W)")
    with pytest.raises(InputError) as e:
        ox.stylize(tmp_path / "nowhere.png", ok)
    _one_line(e, "nowhere.png")
    assert np.asarray(ox.stylize(content, ok)).shape == (48, 64, 3)  # and a good call still works

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SemstyleError) as e:
        OnnxStylizer(full)
    _one_line(e, "pip install semstyle[export]")
