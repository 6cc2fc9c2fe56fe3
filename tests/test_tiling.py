"""Tiled stylisation: the plan, the blending weights, equivalence with the untiled pipeline, seams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import content_array, cool_style_array, warm_style_array
from PIL import Image

from semstyle import functional as FN
from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.errors import InputError
from semstyle.pipelines import transfer as tiling
from semstyle.pipelines.fusion import feature_masks
from semstyle.segmentation import regions as R
from semstyle.types import ProgressEvent

W, H, TILE = 256, 256, 128  # 2 × 2 tiles; each crop (224 px) is a real part of the image


def test_tile_plan_auto_explicit_and_off() -> None:
    assert tiling.tile_plan(0, (1024, 1024)) is None  # 1.05 Mpx: under the auto threshold
    plan = tiling.tile_plan(0, (1600, 1200))
    assert plan is not None and plan.tile == tiling.AUTO_TILE
    assert tiling.tile_plan(-1, (8000, 8000)) is None
    assert tiling.tile_plan(300, (300, 200)) is None  # fits in one tile
    assert tiling.tile_plan(300, (301, 200)).tile == 296  # rounded down to a multiple of 8
    assert tiling.tile_plan(0, (1600, 1200), refine=2) is None  # refinement needs the whole image
    with pytest.raises(InputError, match="cannot be tiled"):
        tiling.tile_plan(256, (1600, 1200), refine=2)


@pytest.mark.parametrize("value", [-2, 8, 63, 20000])
def test_config_rejects_bad_tile(value: int) -> None:
    with pytest.raises(ValueError, match="tile must be"):
        StylizeConfig(NetworkConfig(), StylizeOptions(tile=value))


def test_cli_flag_reaches_the_config() -> None:
    from semstyle.cli.commands import config_from_args
    from semstyle.cli.main import build_parser

    args = build_parser().parse_args(["stylize", "a.png", "b.png", "-o", "o.png", "--tile", "512"])
    assert config_from_args(args).options.tile == 512


@pytest.mark.parametrize("length, tile", [(320, 128), (4096, 768), (72, 64), (1000, 96)])
def test_cuts_and_ramps_form_a_partition_of_unity(length: int, tile: int) -> None:
    length -= length % 8
    cuts = tiling.cuts(length, tile)
    assert cuts[0] == 0 and cuts[-1] == length and all(c % 8 == 0 for c in cuts)
    assert all(16 <= b - a <= tile + 8 for a, b in zip(cuts, cuts[1:]))
    total = np.zeros(length)
    half = tiling.OVERLAP // 2
    for a, b in zip(cuts, cuts[1:]):
        lo, hi = max(0, a - half), min(length, b + half)
        total[lo:hi] += tiling.ramp(lo, hi, a, b, half, length)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_one_tile_shortcut_rounds_as_the_canvas() -> None:
    """An untiled run returns the decoded picture directly; it must equal the cross-fading canvas's result
    for its one tile bit for bit, for values outside [0, 1] and on the rounding boundaries too."""
    h, w = 37, 50  # the picture; the decoded tile is padded to multiples of 8
    hp, wp = 40, 56
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, hp, wp, generator=g) * 1.4 - 0.2
    img[0, 0, 0, :6] = torch.tensor([0.0, 1.0, 0.5 / 255, 1.5 / 255, 254.5 / 255, 128.5 / 255])
    (tile,) = tiling._grid(hp, wp, tiling.whole((w, h)))
    canvas = tiling._Canvas(h, w, wp)
    tiling._blend(canvas, img.clone(), tile, tiling.OVERLAP // 2, hp, wp)
    expected = canvas.finish()
    got = tiling._to_uint8(img.clone(), h, w)
    assert got.shape == (h, w, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


def test_region_masks_equal_the_full_resolution_one_hot_reference() -> None:
    # the one label→mask builder works one region at a time; it must equal the textbook construction
    # (a (K, H, W) one-hot, area-averaged to feature resolution, blurred, renormalised)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.repeat(rng.integers(0, 4, (12, 10)), 8, 0), 8, 1)
    labels[5:40, 7:33] = 9  # a region whose borders straddle feature pixels
    ids = [int(v) for v in np.unique(labels)]
    onehot = torch.from_numpy(np.stack([labels == i for i in ids])).float()[None]  # (1, K, H, W)
    area = torch.nn.functional.interpolate(onehot, size=(12, 10), mode="area")
    for feather in (0.0, 1.0):
        want = FN.gaussian_blur(area, feather) if feather else area
        want = want / want.sum(1, keepdim=True)
        got = feature_masks(labels, ids, feather)
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
        np.testing.assert_allclose(got.sum(1).numpy(), 1.0, atol=1e-6)
    unnormalised = R.region_masks(labels, ids[:2], (12, 10), normalize=False)  # a subset: area shares
    np.testing.assert_allclose(unnormalised.numpy(), area[:, :2].numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def tiled_run(_stylizer_fp32):
    """The same content stylised untiled and in 128 px tiles, in fp32 on one thread (the comparisons below are
    within a grey level); every encoder/decoder input size recorded."""
    st = _stylizer_fp32
    content = Image.fromarray(content_array(W, H, seed=5))
    style = Image.fromarray(warm_style_array(128, 128))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        untiled = np.asarray(st.stylize(content, style, size=0, tile=-1).image)
        shapes: list[tuple[int, int]] = []
        nets = st.networks
        encode, decode = nets.encode, nets.decode
        nets.encode = lambda x, taps=("relu4_1",): shapes.append(tuple(x.shape[-2:])) or encode(x, taps)  # type: ignore
        nets.decode = lambda f: shapes.append(tuple(8 * s for s in f.shape[-2:])) or decode(f)  # type: ignore
        events: list[ProgressEvent] = []
        try:
            res = st.stylize(content, style, size=0, tile=TILE, callback=events.append)
        finally:
            del nets.encode, nets.decode  # the methods again
        return st, content, style, untiled, np.asarray(res.image), shapes, events
    finally:
        torch.set_num_threads(before)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_tiled_matches_untiled(tiled_run) -> None:
    _, _, _, untiled, tiled, shapes, events = tiled_run
    assert tiled.shape == untiled.shape == (H, W, 3)
    assert [(e.stage, e.step) for e in events if e.total == 4][-1] == ("decode", 4)  # four tiles ran
    # every pixel written comes from a crop whose context margin (96 px) covers the encoder's (±34 px)
    # and decoder's (±30 px) receptive fields, and all tiles share the global statistics (summed in float64):
    # in fp32 the two differ by rounding (relative ~1e-6, a crop size may pick another kernel) far under the
    # half grey level (2e-3 of the range) that the 8-bit output rounds away — a pixel on a rounding edge may flip
    diff = np.abs(tiled.astype(np.int16) - untiled)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    # 4 tiles, each encoded twice (statistics, then stylisation) and decoded once, never the whole image
    assert len(shapes) == 4 * 3
    assert max(max(h, w) for h, w in shapes) <= TILE + tiling.MARGIN < W


def _steps(img: np.ndarray, axis: int) -> np.ndarray:
    """Mean |difference| between adjacent columns (axis 1) or rows (axis 0): step[i] is between i and i+1."""
    return np.abs(np.diff(img.astype(np.float64), axis=axis)).mean(axis=(1 - axis, 2))


def _border_excess(img: np.ndarray) -> float:
    """Largest step across a tile border over the largest step inside tiles at the same position
    modulo 8 (the decoder's 8 px upsampling gives the steps an 8 px rhythm; borders are on it)."""
    worst = 0.0
    for axis, length in ((1, W), (0, H)):
        seams = [c - 1 for c in tiling.cuts(length, TILE)[1:-1]]
        step = _steps(img, axis)
        inside = [i for i in range(len(step)) if i % 8 == seams[0] % 8 and i not in seams]
        worst = max(worst, step[seams].max() / step[inside].max())
    return worst


def _border_gap(img: np.ndarray, untiled: np.ndarray) -> float:
    """Largest |step across a tile border − the untiled image's step there|, in grey levels."""
    gaps = []
    for axis, length in ((1, W), (0, H)):
        seams = [c - 1 for c in tiling.cuts(length, TILE)[1:-1]]
        gaps.append(np.abs(_steps(img, axis)[seams] - _steps(untiled, axis)[seams]).max())
    return float(max(gaps))


def test_no_seams_at_tile_borders(tiled_run) -> None:
    st, content, style, untiled, tiled, _, _ = tiled_run
    # the colour step across a border, relative to the steps inside tiles, is the untiled image's there (each
    # pixel within a grey level of it: a step moves by at most 2 levels in a pixel and far less on average) …
    assert abs(_border_excess(tiled) - _border_excess(untiled)) < 0.05
    # … and is the step the untiled image has there
    assert _border_gap(tiled, untiled) < 1.0
    # the check does see seams: naive tiling (no context margin, no cross-fade) fails it (measured gap ≈ 7.6)
    entry = st.encode_style(style)
    naive, _ = tiling.stylize_array(st.networks, np.asarray(content), tiling.Fuse([entry], [1.0], 1.0),
                                    tiling.TilePlan(TILE, margin=0, overlap=0))
    assert _border_gap(naive, untiled) > 3.0


def test_tiled_regions_and_colour_match_untiled(exact) -> None:
    st = exact
    content = content_array(256, 128, seed=6)
    styles = [warm_style_array(96, 96), cool_style_array(96, 96)]
    mask = np.zeros((128, 256), np.uint8)
    mask[:, 141:] = 1  # a region border near the tile border (128) and one inside a tile
    mask[40:100, 90:170] = 2  # a region across the tile border
    kw = {"mask": mask, "region_styles": {0: 0, 1: 1, 2: 0}, "preserve_color": True, "size": 0, "style_size": 96}
    ref = st.stylize(content, styles, tile=-1, **kw)
    events: list[ProgressEvent] = []
    got = st.stylize(content, styles, tile=128, callback=events.append, **kw)
    assert max(e.total for e in events) == 2 and "color" in got.timings  # two tiles, then the colour step
    assert got.matches == ref.matches and np.array_equal(got.content_labels, ref.content_labels)
    a, b = np.asarray(ref.image), np.asarray(got.image)
    # region statistics summed over tiles equal the whole image's up to fp32 rounding, so the stylised images
    # differ by a flipped rounding at most; colour preservation then works on the rounded uint8 output (its
    # luminance/chroma conversion moves such a flip by at most a level more)
    assert np.abs(a.astype(np.int16) - b).max() <= 2 and (a != b).mean() < 0.01


@pytest.fixture(scope="module")
def fast_fp32():
    from semstyle import Stylizer

    return Stylizer(NetworkConfig(device="cpu", model="fast", precision="fp32"),
                    defaults=StylizeOptions(size=0, style_size=96))


@pytest.mark.parametrize("model", ["vgg19", "fast"])
@pytest.mark.parametrize("semantic", ["none", "mask"])
def test_one_pipeline_tiled_equals_untiled(model: str, semantic: str, exact, fast_fp32) -> None:
    # the untiled run is the tiled algorithm with one tile: every step (statistics, region AdaIN, the
    # fast model's colour correction, colour preservation) is the same code, so tiling changes nothing
    # but float rounding (before the redesign the fast model's colour fix skipped the tiled path: 9.4 levels)
    st = exact if model == "vgg19" else fast_fp32
    content = content_array(256, 128, seed=7)
    styles = [warm_style_array(96, 96), cool_style_array(96, 96)]
    kw: dict[str, object] = {}
    if semantic == "mask":
        mask = np.zeros((128, 256), np.uint8)
        mask[:, 150:] = 1
        kw = {"mask": mask}
    kw.update(size=0, style_size=96)
    for preserve in (False, True):
        ref = np.asarray(st.stylize(content, styles, preserve_color=preserve, tile=-1, **kw).image, dtype=np.float64)
        got = np.asarray(st.stylize(content, styles, preserve_color=preserve, tile=128, **kw).image, dtype=np.float64)
        # fp32 on one thread: rounding flips of a level, moved by at most one more by the colour steps
        assert np.abs(ref - got).max() <= 2 and (ref != got).any(axis=-1).mean() < 0.01, (model, semantic, preserve)
        assert np.abs(ref - content).mean() > 10  # and it is stylised at all
