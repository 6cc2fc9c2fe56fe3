"""Every metric on cases with known answers (docs/METRICS.md gives the formulas)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from semstyle import functional as FN
from semstyle import metrics as M
from semstyle.models.vgg import STYLE_LAYERS

CHANNELS = {"relu1_1": 8, "relu2_1": 16, "relu3_1": 16, "relu4_1": 32}


def feats(seed: int = 0, hw: int = 16, scale: float = 1.0, shift: float = 0.0) -> M.Feats:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(1, c, hw, hw, generator=g) * scale + shift for k, c in CHANNELS.items()}


def image(seed: int = 0, hw: int = 40) -> torch.Tensor:
    return torch.rand(1, 3, hw, hw, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- content and style losses
def test_content_loss_zero_for_identical_and_known_for_scaled_features() -> None:
    f = feats()
    assert M.content_loss(f, f) == 0.0
    doubled = {k: 2 * v for k, v in f.items()}
    # ‖2φ − φ‖² / CHW = mean(φ²)
    assert M.content_loss(doubled, f) == pytest.approx(float(f["relu4_1"].pow(2).mean()), rel=1e-5)


def test_gram_style_loss_zero_for_identical_and_known_for_scaled_features() -> None:
    f = feats(1)
    assert M.gram_style_loss(f, f) == 0.0
    a = 3.0
    scaled = {k: a * v for k, v in f.items()}
    # G(aF) = a²G(F), so each layer contributes (a² − 1)² · mean(G²)
    expected = sum((a * a - 1) ** 2 * float(FN.gram(f[k]).pow(2).mean()) for k in STYLE_LAYERS)
    assert M.gram_style_loss(scaled, f) == pytest.approx(expected, rel=1e-4)


def test_mean_std_style_loss_zero_for_identical_and_known_for_shifted_features() -> None:
    f = feats(2)
    assert M.mean_std_style_loss(f, f) == 0.0
    shifted = {k: v + 0.5 for k, v in f.items()}
    # a constant shift moves every channel mean by 0.5 and leaves the stds: 0.25 per layer
    assert M.mean_std_style_loss(shifted, f) == pytest.approx(0.25 * len(STYLE_LAYERS), rel=1e-4)


def test_content_loss_crops_to_the_common_size() -> None:
    f = feats(3)
    bigger = {k: torch.nn.functional.pad(v, (0, 1, 0, 1)) for k, v in f.items()}  # one extra row/column
    assert M.content_loss(bigger, f) == 0.0


# ----------------------------------------------------------------------------- SSIM and artefacts
def test_ssim_is_one_for_identical_images_and_lower_for_different_ones() -> None:
    a, b = image(0), image(1)
    assert M.ssim_gray(a, a) == pytest.approx(1.0, abs=1e-9)
    assert M.ssim_gray(a, b) < 0.2
    assert M.ssim_gray(a, 0.5 * a + 0.5 * b) < 1.0


@pytest.mark.parametrize(
    ("p", "q"), [(0.5, 0.5), (0.2, 0.8), (0.9, 0.3), (0.0, 1.0), ((0.8, 0.4, 0.1), (0.1, 0.2, 0.9))]
)
def test_ssim_of_constant_images_has_the_closed_form(p: float | tuple, q: float | tuple) -> None:
    """Constant images: no variance, so SSIM = (2 μx μy + C1)/(μx² + μy² + C1) with μ the luminance."""

    def flat(v: float | tuple) -> tuple[torch.Tensor, float]:
        rgb = torch.tensor(v if isinstance(v, tuple) else (v, v, v), dtype=torch.float64)
        luma = float(rgb @ torch.tensor(M.LUMA, dtype=torch.float64))
        return rgb.view(1, 3, 1, 1).expand(1, 3, 16, 20).contiguous(), luma

    (a, mp), (b, mq) = flat(p), flat(q)
    c1 = 0.01**2
    expected = (2 * mp * mq + c1) / (mp * mp + mq * mq + c1)
    assert M.ssim_gray(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert M.ssim_gray(b, a) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ssim_refuses_different_shapes() -> None:
    with pytest.raises(ValueError, match="equal shapes"):
        M.ssim_gray(image(0, 40), image(0, 41))


def test_checkerboard_and_high_frequency_ratios() -> None:
    c = image(4)
    assert M.checkerboard_ratio(c, c) == pytest.approx(1.0)
    assert M.high_frequency_ratio(c, c) == pytest.approx(1.0)
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    board = ((yy + xx) % 2).float().view(1, 1, 40, 40) * 0.2
    assert M.checkerboard_ratio((c + board).clamp(0, 1), c) > 1.5
    smooth = torch.nn.functional.avg_pool2d(c, 5, stride=1, padding=2, count_include_pad=False)
    assert M.high_frequency_ratio(smooth, c) < 0.5


def pattern(a: float | tuple, kind: str = "board", h: int = 20, w: int = 24) -> torch.Tensor:
    """(1, 3, h, w) float64: colour ``a`` (grey level or RGB) on black in a 1-pixel checkerboard or
    in stripes of period 2 (alternating columns)."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    on = ((yy + xx) % 2 if kind == "board" else xx % 2).double()
    rgb = torch.tensor(a if isinstance(a, tuple) else (a, a, a), dtype=torch.float64).view(1, 3, 1, 1)
    return on.view(1, 1, h, w) * rgb


@pytest.mark.parametrize("a", [0.1, 0.5, 1.0])
def test_checkerboard_and_laplacian_energies_are_exact(a: float) -> None:
    board, stripes = pattern(a), pattern(a, "stripes")
    # [[1,−1],[−1,1]]/4 on a 0/a checkerboard: ±a/2 everywhere; the Laplacian: ±4a
    assert M.checkerboard_energy(board) == pytest.approx(a * a / 4, rel=1e-12)
    assert M.high_frequency_energy(board) == pytest.approx(16 * a * a, rel=1e-12)
    # stripes: the checkerboard filter sees nothing, the Laplacian ±2a
    assert M.checkerboard_energy(stripes) == pytest.approx(0.0, abs=1e-24)
    assert M.high_frequency_energy(stripes) == pytest.approx(4 * a * a, rel=1e-12)
    assert M.high_frequency_ratio(board, stripes) == pytest.approx(4.0, rel=1e-12)
    assert M.checkerboard_ratio(board, pattern(a / 2)) == pytest.approx(4.0, rel=1e-12)
    assert M.checkerboard_energy(torch.full((1, 3, 8, 8), a, dtype=torch.float64)) == pytest.approx(0.0, abs=1e-24)


def test_checkerboard_energy_reads_the_luminance() -> None:
    red = pattern((1.0, 0.0, 0.0))  # red on black: a luminance checkerboard of amplitude 0.299
    assert M.checkerboard_energy(red) == pytest.approx(0.299**2 / 4, rel=1e-12)
    assert M.high_frequency_energy(red) == pytest.approx(16 * 0.299**2, rel=1e-12)
    assert M.checkerboard_energy(pattern((0.0, 0.0, 1.0))) == pytest.approx(0.114**2 / 4, rel=1e-12)


# ----------------------------------------------------------------------------- region-wise style distance
def test_region_style_distance_zero_for_identical_and_one_region_equals_global() -> None:
    f, g = feats(5), feats(6, scale=2.0, shift=0.3)
    lab = np.ones((64, 64), dtype=np.int64)
    assert M.region_style_distance(f, f, lab, lab) == pytest.approx(0.0, abs=1e-6)
    # a mask covering the whole image is one region: the distance of the global statistics
    expected = 0.0
    for k in STYLE_LAYERS:
        (om, osd), (sm, ssd) = FN.mean_std(f[k]), FN.mean_std(g[k])
        d = (om - sm).flatten().norm() + (osd - ssd).flatten().norm()
        expected += float(d) / math.sqrt(f[k].shape[1]) / len(STYLE_LAYERS)
    got = M.region_style_distance(f, g, lab, lab)
    assert got == pytest.approx(expected, rel=0.02)  # masked std is the biased one; the global std unbiased


def test_region_style_distance_only_compares_matching_regions() -> None:
    f = feats(7)
    # the style's left half (label 1) holds exactly the output's features; its right half (label 2) is noise
    style = {k: torch.cat([v, torch.rand_like(v) * 5], dim=3) for k, v in f.items()}
    c_lab = np.ones((64, 64), dtype=np.int64)
    s_lab = np.concatenate([np.ones((64, 64)), 2 * np.ones((64, 64))], axis=1).astype(np.int64)
    assert M.region_style_distance(f, style, c_lab, s_lab) == pytest.approx(0.0, abs=1e-5)
    assert math.isnan(M.region_style_distance(f, style, c_lab, 3 * np.ones_like(c_lab)))  # nothing in common


# ----------------------------------------------------------------------------- structure (CFSD-like)
def test_self_similarity_distance() -> None:
    f, g = feats(8), feats(9)
    assert M.self_similarity_distance(f, f, side=8) == pytest.approx(0.0, abs=1e-6)
    scaled = {k: 3.0 * v for k, v in f.items()}  # cosine similarity ignores the scale of the features
    assert M.self_similarity_distance(scaled, f, side=8) == pytest.approx(0.0, abs=1e-5)
    assert M.self_similarity_distance(g, f, side=8) > 0.01


# ----------------------------------------------------------------------------- label matching
def test_matched_miou_of_a_permuted_labelling_is_one() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, size=(20, 30))
    perm = np.array([2, 0, 3, 1])
    assert M.matched_miou([gt], [perm[gt] + 10]) == pytest.approx(1.0)
    noisy = perm[gt].copy()
    noisy[:10] = 0
    assert M.matched_miou([gt], [noisy]) < 1.0


def test_best_matching_is_the_optimal_assignment() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])  # greedy takes 0.9 then 0.1; the optimum is 0.8 + 0.85
    assert M.best_matching(iou) == pytest.approx(1.65)
    assert M.best_matching(iou.T) == pytest.approx(1.65)


# ----------------------------------------------------------------------------- features, runtime and memory
def test_vgg_features_are_fp32_at_every_metric_tap() -> None:
    from semstyle.models.vgg import VGGEncoder

    enc = VGGEncoder().eval()
    out = M.vgg_features(enc, torch.rand(1, 3, 32, 32))
    assert list(out) == list(M.METRIC_TAPS)
    assert out["relu4_1"].shape == (1, 512, 4, 4) and out["relu1_1"].dtype == torch.float32
    assert not out["relu1_1"].requires_grad


def test_measure_reports_time_and_peak_memory() -> None:
    with M.measure() as u:
        block = np.ones(80 * 2**20 // 8)  # 80 MiB, every page written by np.ones
        time.sleep(0.05)
        del block
    assert u.seconds >= 0.05  # time.sleep sleeps at least its argument, and the clock is monotonic
    # the block's peak resident set is at most its 80 MiB plus what the interpreter touches around it (a few
    # MiB); the fallback (growth of the lifetime peak ru_maxrss) can only be lower. 20 MiB of slack
    assert u.peak_mb <= 100, u
    if not u.exact:
        pytest.skip("this kernel cannot reset VmHWM (/proc/self/clear_refs): measure gives a lower bound only "
                    "(its arithmetic: test_measure_falls_back_on_the_growth_of_the_lifetime_peak)")
    # all 80 MiB are resident at once; 5 % less allows for memory returned to the OS while the block lived
    assert u.peak_mb >= 76, u
    with M.measure() as quiet:
        pass
    assert quiet.exact and quiet.peak_mb < 20, quiet  # nothing allocated: the 20 MiB are the slack above


def test_measure_falls_back_on_the_growth_of_the_lifetime_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the peak cannot be reset, ``peak_mb`` is the growth of ru_maxrss in MiB (a lower bound), and
    ``exact`` says so; where VmHWM reads fail after a reset, the same fallback is taken at the end."""
    maxrss = iter([300_000, 300_000 + 81_920])  # kB: the lifetime peak before and after the block
    monkeypatch.setattr(M, "_reset_peak", lambda: False)
    monkeypatch.setattr(M, "_maxrss_kb", lambda: next(maxrss))
    with M.measure() as u:
        pass
    assert (u.exact, u.peak_mb) == (False, 80.0)
    monkeypatch.setattr(M, "_maxrss_kb", lambda: 500_000)  # an earlier peak above the block's: no growth
    with M.measure() as flat:
        pass
    assert (flat.exact, flat.peak_mb) == (False, 0.0)
    status = {"VmRSS": 200_000, "VmHWM": None}  # reset worked, but the peak cannot be read back
    monkeypatch.setattr(M, "_reset_peak", lambda: True)
    monkeypatch.setattr(M, "_status_kb", lambda key: status[key])
    monkeypatch.setattr(M, "_maxrss_kb", lambda: 200_000 + 10_240)
    with M.measure() as late:
        pass
    assert (late.exact, late.peak_mb) == (False, 10.0)
    status["VmHWM"] = 200_000 + 51_200  # and the exact path: VmHWM − VmRSS(start)
    with M.measure() as exact:
        pass
    assert (exact.exact, exact.peak_mb) == (True, 50.0)
