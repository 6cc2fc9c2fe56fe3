"""End to end with the real weights at 128 px: the output takes the style, alpha, interpolation,
per-region styles, aspect ratio, colour preservation, the CLI's folder mode and the docstring example."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from semstyle import functional as FN
from semstyle import networks as networks_module
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.pipelines import stylize as stylize_module
from semstyle.pipelines.stylize import StylizeResult

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
Stats = dict[str, tuple[torch.Tensor, torch.Tensor]]

# real weights (still part of the default suite); one thread: this module compares code paths within a grey level
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread_module")]


@pytest.fixture(scope="module")
def stylizer(_stylizer_fp32):
    return _stylizer_fp32


def vgg_stats(st, im: Image.Image) -> Stats:
    """Channel mean/std of an image at relu1_1..relu4_1, measured in fp32 with the real encoder."""
    x, _ = FN.pad_to_multiple(to_tensor(im))
    with torch.inference_mode():
        feats = st.encoder(x.to(st.device), LAYERS)
    return {k: FN.mean_std(v.float()) for k, v in feats.items()}


def stat_distance(a: Stats, b: Stats) -> float:
    """Sum over layers of the squared mean/std differences, relative to b's magnitude."""
    total = 0.0
    for k in LAYERS:
        (am, asd), (bm, bsd) = a[k], b[k]
        num = ((am - bm) ** 2).mean() + ((asd - bsd) ** 2).mean()
        total += float(num / ((bm**2).mean() + (bsd**2).mean()))
    return total


def mean_rgb(im: Image.Image | np.ndarray) -> np.ndarray:
    return np.asarray(im, dtype=np.float64).reshape(-1, 3).mean(axis=0)


@pytest.fixture(scope="module")
def pics(images) -> dict[str, Image.Image]:
    return {k: load_image(getattr(images, k)) for k in ("content", "content_wide", "style_a", "style_b")}


@pytest.fixture(scope="module")
def out_a(stylizer, pics) -> Image.Image:
    return stylizer.stylize(pics["content"], pics["style_a"]).image


@pytest.fixture(scope="module")
def out_b(stylizer, pics) -> Image.Image:
    return stylizer.stylize(pics["content"], pics["style_b"]).image


def test_result_type_and_size(stylizer, images, out_a) -> None:
    res = stylizer.stylize(str(images.content), images.style_a)  # str and Path inputs
    assert isinstance(res, StylizeResult)
    assert res.image.mode == "RGB" and res.image.size == (128, 128)
    assert res.content_labels is None and res.style_labels == []
    assert {"encode", "decode"} <= set(res.timings)
    assert np.array_equal(np.asarray(res.image), np.asarray(out_a))  # deterministic, inputs of any kind


@pytest.mark.parametrize("which", ["a", "b"])
def test_output_statistics_move_to_the_style(stylizer, pics, out_a, out_b, which: str) -> None:
    style = pics[f"style_{which}"]
    out = out_a if which == "a" else out_b
    s_style = vgg_stats(stylizer, resize_longest(style, 128))
    d_out = stat_distance(vgg_stats(stylizer, out), s_style)
    d_content = stat_distance(vgg_stats(stylizer, pics["content"]), s_style)
    assert d_out < 0.5 * d_content, (d_out, d_content)  # measured: ~1.25 vs 3.0–4.1


def test_alpha_zero_is_the_plain_reconstruction(stylizer, pics) -> None:
    content = pics["content"]
    out = to_tensor(stylizer.stylize(content, pics["style_a"], alpha=0.0).image)
    x, (h, w) = FN.pad_to_multiple(to_tensor(content))
    with torch.inference_mode():
        rec = stylizer.decode(stylizer.encode(x)["relu4_1"])[..., :h, :w].clamp(0, 1).cpu()
    assert float((out - rec).abs().max()) <= 1.0 / 255 + 1e-6  # only the 8-bit rounding differs
    assert float((out - to_tensor(content)).abs().mean()) < 0.08  # and it looks like the content


def test_alpha_trades_off_content_and_style(stylizer, pics, out_a) -> None:
    content, style = pics["content"], pics["style_a"]
    outs = [stylizer.stylize(content, style, alpha=0.0).image, stylizer.stylize(content, style, alpha=0.5).image, out_a]
    s_style = vgg_stats(stylizer, style)
    to_style = [stat_distance(vgg_stats(stylizer, o), s_style) for o in outs]
    c_feat = stylizer.encode(FN.pad_to_multiple(to_tensor(content))[0])["relu4_1"]
    to_content = [float(FN.content_loss(stylizer.encode(to_tensor(o))["relu4_1"], c_feat)) for o in outs]
    # more alpha: further from the content's features, nearer the style's statistics
    assert to_content[0] < to_content[1] < to_content[2], to_content
    assert to_style[0] > 2 * to_style[1] and to_style[0] > 2 * to_style[2], to_style


def test_interpolation_weights(stylizer, pics, out_a, out_b) -> None:
    a, b, c = pics["style_a"], pics["style_b"], pics["content"]
    one_zero = stylizer.stylize(c, [a, b], style_weights=[1.0, 0.0]).image
    diff = np.abs(np.asarray(one_zero, dtype=int) - np.asarray(out_a, dtype=int))
    assert diff.max() <= 1, diff.max()
    zero_one = stylizer.stylize(c, [a, b], style_weights=[0.0, 2.0]).image
    assert np.abs(np.asarray(zero_one, dtype=int) - np.asarray(out_b, dtype=int)).max() <= 1

    half = stylizer.stylize(c, [a, b], style_weights=[0.5, 0.5]).image
    equal = stylizer.stylize(c, [a, b]).image  # default: equal weights
    assert np.array_equal(np.asarray(half), np.asarray(equal))
    s_a, s_b, s_half = vgg_stats(stylizer, a), vgg_stats(stylizer, b), vgg_stats(stylizer, half)
    # the mix is nearer to each style than the other style's pure result is
    assert stat_distance(s_half, s_a) < stat_distance(vgg_stats(stylizer, out_b), s_a)
    assert stat_distance(s_half, s_b) < stat_distance(vgg_stats(stylizer, out_a), s_b)
    # and its mean colour lies between the two pure results, channel by channel
    lo = np.minimum(mean_rgb(out_a), mean_rgb(out_b))
    hi = np.maximum(mean_rgb(out_a), mean_rgb(out_b))
    assert ((lo <= mean_rgb(half)) & (mean_rgb(half) <= hi)).all(), (lo, mean_rgb(half), hi)


def test_per_region_styles_from_a_mask(stylizer, pics) -> None:
    mask = np.zeros((128, 128), np.uint8)
    mask[:, 64:] = 1  # left half label 0 → style A, right half label 1 → style B
    out = np.asarray(stylizer.stylize(pics["content"], [pics["style_a"], pics["style_b"]], mask=mask).image, float)
    left, right = mean_rgb(out[:, :56]), mean_rgb(out[:, 72:])  # leave out the feathered border
    m_a, m_b = mean_rgb(pics["style_a"]), mean_rgb(pics["style_b"])
    assert np.linalg.norm(left - right) > 60  # the halves differ
    assert np.linalg.norm(left - m_a) < np.linalg.norm(left - m_b)
    assert np.linalg.norm(right - m_b) < np.linalg.norm(right - m_a)

    # the same regions named explicitly (label → style index) give the same image
    swapped = stylizer.stylize(pics["content"], [pics["style_b"], pics["style_a"]], mask=mask,
                               region_styles={0: 1, 1: 0}).image
    assert np.abs(np.asarray(swapped, dtype=int) - out.astype(int)).max() <= 1


def test_aspect_ratio_is_preserved(stylizer, pics) -> None:
    wide = pics["content_wide"]
    assert wide.size == (200, 90)
    expected = resize_longest(wide, 128).size
    assert expected == (128, 58)  # 90 · 128/200 = 57.6, rounded
    assert stylizer.stylize(wide, pics["style_a"]).image.size == expected
    tall = wide.transpose(Image.Transpose.ROTATE_90)
    assert stylizer.stylize(tall, pics["style_a"]).image.size == (58, 128)

    # no distortion or shift: at alpha = 0 the picture lines up with the resized content
    rec = stylizer.stylize(wide, pics["style_a"], alpha=0.0).image

    def lum(im: Image.Image) -> np.ndarray:
        return np.asarray(im.convert("L").filter(ImageFilter.GaussianBlur(3)), dtype=np.float64).ravel()

    ref = resize_longest(wide, 128)
    assert np.corrcoef(lum(rec), lum(ref))[0, 1] > 0.9  # a 3-px shift gives ~0.75, squashing ~0.8
    assert np.abs(np.asarray(rec, float) - np.asarray(ref, float)).mean() < 25


def test_size_zero_keeps_sizes_and_odd_sizes_are_cropped_back(stylizer, pics) -> None:
    keep = stylize_module.Stylizer(  # the same networks with other default options
        stylizer.config, defaults=stylizer.defaults.updated(size=0, style_size=0), networks=stylizer.networks)
    content = pics["content_wide"].resize((101, 61))  # not multiples of 8: padded, then cropped back
    style = pics["style_a"].resize((72, 40))
    assert keep.stylize(content, style).image.size == (101, 61)
    assert keep.encode_style(style).image.size == (72, 40)  # the style keeps its own size too
    assert stylizer.encode_style(style).image.size == (128, 71)  # while the session's is resized


def test_preserve_color_keeps_the_content_chroma(stylizer, pics, out_a) -> None:
    kept = stylizer.stylize(pics["content"], pics["style_a"], preserve_color=True).image
    uv = [FN.rgb_to_yuv(to_tensor(im))[:, 1:] for im in (pics["content"], kept, out_a)]
    assert float((uv[1] - uv[0]).abs().mean()) < 0.01  # measured ~2e-4
    assert float((uv[2] - uv[0]).abs().mean()) > 0.1  # while plain transfer changes it (~0.33)
    assert not np.array_equal(np.asarray(kept), np.asarray(pics["content"]))  # and it is still stylised


def test_style_is_encoded_once_and_reused(stylizer, pics, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    fresh_style = Image.fromarray(rng.integers(0, 256, (96, 160, 3), dtype=np.uint8))  # not seen before
    calls: list[tuple[int, ...]] = []
    real = stylizer.networks.encode

    def counting(img, taps=("relu4_1",)):
        calls.append(tuple(img.shape[-2:]))
        return real(img, taps)

    monkeypatch.setattr(stylizer.networks, "encode", counting)  # every encoder pass goes through it
    first = stylizer.stylize(pics["content"], fresh_style).image
    assert sorted(calls) == [(80, 128), (128, 128)]  # the style at its own size (160x96 → 128x77, padded)
    calls.clear()
    again = stylizer.stylize(pics["content"], fresh_style).image
    assert calls == [(128, 128)]  # only the content
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert stylizer.encode_style(fresh_style) is stylizer.encode_style(fresh_style.copy())


def test_cli_folder_mode_writes_every_pair(images, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contents, styles, out = tmp_path / "contents", tmp_path / "styles", tmp_path / "results"
    contents.mkdir()
    styles.mkdir()
    shutil.copy(images.content, contents / "scene.png")
    shutil.copy(images.content_wide, contents / "wide.png")
    (contents / "notes.txt").write_text("not an image, not listed")
    shutil.copy(images.style_a, styles / "warm.png")
    shutil.copy(images.style_b, styles / "cool.png")
    rc = main(["stylize", str(contents), str(styles), "-o", str(out), "--size", "64", "--style-size", "64"])
    got = capsys.readouterr()
    assert rc == 0, got.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["report.csv", "scene__cool.png", "scene__warm.png", "wide__cool.png", "wide__warm.png"]
    assert Image.open(out / "wide__warm.png").size == (64, 29)
    assert "wrote 4 of 4 images" in got.out
    assert "Traceback" not in got.err

    # a second run finds every output there and stylises nothing (a batch resumes; --overwrite redoes it)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    rc = main(["stylize", str(contents), str(styles), "-o", str(out)])
    again = capsys.readouterr().out
    assert rc == 0 and "wrote 0 of 4 images" in again and "(4 already there)" in again
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == before


def test_docstring_example_runs() -> None:
    finder = doctest.DocTestFinder()
    tests = [t for t in finder.find(stylize_module) if t.examples]
    assert any(t.name.endswith("Stylizer") for t in tests)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= 4


# ----------------------------------------------------------------------------- precision
def _cpu_flags() -> set[str]:
    """The CPU feature flags as Linux reports them (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


@pytest.mark.parametrize(
    ("cuda", "cuda_bf16", "avx512_bf16", "amx", "override", "want"),
    [
        (False, False, False, False, "", False),  # AVX2 only, or AVX-512 without BF16 (Skylake-SP … Ice Lake)
        (False, False, True, False, "", True),  # AVX512-BF16 (Zen 4, Cooper Lake)
        (False, False, False, True, "", True),  # AMX (Sapphire Rapids and later)
        (False, False, True, True, "", True),
        (True, True, False, False, "", True),  # a CUDA device with bf16: its own answer, not the CPU's
        (True, False, True, True, "", False),
        (False, False, True, True, "0", False),  # SEMSTYLE_BF16 forces either way
        (False, False, True, True, "off", False),
        (False, False, False, False, "1", True),
        (False, False, False, False, " ON ", True),
    ],
)
def test_bf16_rule(cuda: bool, cuda_bf16: bool, avx512_bf16: bool, amx: bool, override: str, want: bool) -> None:
    got = networks_module.bf16_rule(cuda=cuda, cuda_bf16=cuda_bf16, avx512_bf16=avx512_bf16, amx_bf16=amx,
                                    override=override)
    assert got is want


def test_bf16_override_must_be_on_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.errors import InputError

    with pytest.raises(InputError, match="SEMSTYLE_BF16 must be 1/on or 0/off"):
        networks_module.bf16_rule(cuda=False, cuda_bf16=False, avx512_bf16=True, amx_bf16=False, override="maybe")
    for value, want in (("0", False), ("1", True)):
        monkeypatch.setenv(networks_module.BF16_ENV, value)
        assert networks_module.resolve_bf16("auto", torch.device("cpu")) is want
        assert networks_module.resolve_bf16("fp32", torch.device("cpu")) is False  # explicit precisions win
        assert networks_module.resolve_bf16("bf16", torch.device("cpu")) is True


def test_this_cpus_flags_decide_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = _cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo: cannot tell independently whether this CPU has native bf16")
    monkeypatch.delenv(networks_module.BF16_ENV, raising=False)
    native = bool(flags & {"avx512_bf16", "amx_bf16"})  # x86; read independently of the code's own probe
    assert networks_module.native_bf16(torch.device("cpu")) == native


def test_fp32_and_bf16_agree_within_40_db(pics) -> None:
    # both precisions run here whatever the CPU (where it lacks bf16 instructions, oneDNN emulates them).
    # The bound, from bf16's arithmetic: inputs and weights of each of the 18 convolutions are rounded to 8
    # significant bits (relative error up to 2^-9, RMS ~2^-9/sqrt(3) each), products are summed in fp32; as
    # independent errors over 18 layers that is ~sqrt(18)·0.11 % ≈ 0.5 % of the activations' scale, about
    # 1.3 grey levels RMS in the output (PSNR ≈ 46 dB). 40 dB (RMS 2.55 grey levels) leaves a factor 2.
    out, dtypes = {}, {}
    for prec in ("fp32", "bf16"):
        st = stylize_module.Stylizer(NetworkConfig(device="cpu", precision=prec),
                                     defaults=StylizeOptions(size=128, style_size=128))
        assert st.bf16 is (prec == "bf16")
        seen: set[torch.dtype] = set()
        hook = st.networks.decoder.layers[1].register_forward_hook(lambda _m, _i, o, s=seen: s.add(o.dtype))
        out[prec] = np.asarray(st.stylize(pics["content"], pics["style_a"]).image, dtype=np.float64)
        hook.remove()
        dtypes[prec] = seen
    assert dtypes == {"fp32": {torch.float32}, "bf16": {torch.bfloat16}}  # each precision really ran
    mse = float(((out["fp32"] - out["bf16"]) ** 2).mean())
    assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 40
