"""The pure maths of semstyle.functional against definitions and hand-computed values."""

from __future__ import annotations

import pytest
import torch

from semstyle import functional as FN
from semstyle.config import ALPHA_MAX


def _rand(*shape: int, seed: int = 0, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift


def _labels_to_masks(labels: torch.Tensor, k: int) -> torch.Tensor:
    """(H, W) integer labels → (1, K, H, W) one-hot float64 masks."""
    return (labels.unsqueeze(0) == torch.arange(k).view(k, 1, 1)).double().unsqueeze(0)


# ----------------------------------------------------------------------------- statistics
def test_mean_std_matches_definition() -> None:
    x = _rand(2, 3, 4, 5, scale=2.0, shift=1.0)
    mean, std = FN.mean_std(x, eps=0.0)
    assert mean.shape == std.shape == (2, 3, 1, 1)
    flat = x.reshape(2, 3, -1)
    torch.testing.assert_close(mean[..., 0, 0], flat.mean(-1))
    torch.testing.assert_close(std[..., 0, 0], flat.std(-1, unbiased=True))


def test_adain_gives_content_the_style_statistics() -> None:
    content = _rand(2, 8, 9, 7, seed=1, scale=3.0, shift=1.5)
    style = _rand(2, 8, 6, 11, seed=2, scale=0.4, shift=-2.0)
    out = FN.adain(content, style)
    assert out.shape == content.shape
    o_mean, o_std = FN.mean_std(out)
    s_mean, s_std = FN.mean_std(style)
    torch.testing.assert_close(o_mean, s_mean, rtol=0, atol=1e-9)
    # equal up to the eps (1e-5) added to every variance: relative error ~ eps / (2·var) = 3e-5 here
    torch.testing.assert_close(o_std, s_std, rtol=1e-4, atol=0)
    # the content's normalised pattern is kept: out is an affine map of content per channel
    corr = torch.corrcoef(torch.stack([out[0, 0].flatten(), content[0, 0].flatten()]))[0, 1]
    assert corr > 0.999999


def test_adain_from_stats_equals_adain() -> None:
    content, style = _rand(1, 4, 5, 5, seed=3), _rand(1, 4, 8, 8, seed=4, scale=5.0)
    torch.testing.assert_close(FN.adain(content, style), FN.adain_from_stats(content, *FN.mean_std(style)))


def test_mix_endpoints_are_exact() -> None:
    c, t = _rand(1, 4, 3, 3, seed=5), _rand(1, 4, 3, 3, seed=6)
    assert torch.equal(FN.mix(c, t, 0.0), c)
    assert torch.equal(FN.mix(c, t, 1.0), t)
    torch.testing.assert_close(FN.mix(c, t, 0.25), 0.25 * t + 0.75 * c)


@pytest.mark.parametrize("alpha", [1.3, -0.1])
def test_mix_refuses_alpha_out_of_range(alpha: float) -> None:
    c = _rand(1, 2, 2, 2)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\.25\]") as info:
        FN.mix(c, c, alpha)
    assert str(info.value) == f"alpha must be in [0, 1.25], got {alpha}"


def test_mix_message_for_1_3() -> None:
    with pytest.raises(ValueError, match=r"^alpha must be in \[0, 1\.25\], got 1\.3$"):
        FN.mix(_rand(1, 1, 1, 2), _rand(1, 1, 1, 2), 1.3)


def test_mix_past_1_extrapolates_the_step_to_the_target() -> None:
    c, t = _rand(1, 3, 4, 4), _rand(1, 3, 4, 4)
    torch.testing.assert_close(FN.mix(c, t, 1.2), t + 0.2 * (t - c))  # 20 % further than AdaIN's full step
    torch.testing.assert_close(FN.mix(c, t, ALPHA_MAX), c + ALPHA_MAX * (t - c))


def test_masked_mean_std_with_one_hot_masks_equals_stats_of_selected_pixels() -> None:
    feat = _rand(1, 5, 6, 7, seed=7, scale=2.0, shift=3.0)
    g = torch.Generator().manual_seed(8)
    labels = torch.randint(0, 3, (6, 7), generator=g)
    masks = _labels_to_masks(labels, 3)
    mean, std = FN.masked_mean_std(feat, masks, eps=0.0)
    assert mean.shape == std.shape == (1, 3, 5, 1, 1)
    for k in range(3):
        sel = feat[0][:, labels == k]  # (C, n_k)
        assert sel.shape[1] > 1
        # weighted (population) statistics: a soft mask has no integer sample count to correct by
        torch.testing.assert_close(mean[0, k, :, 0, 0], sel.mean(dim=1))
        torch.testing.assert_close(std[0, k, :, 0, 0], sel.std(dim=1, unbiased=False))
        # and the same numbers as mean_std over those pixels, up to Bessel's correction
        n = sel.shape[1]
        g_mean, g_std = FN.mean_std(sel.view(1, 5, 1, n), eps=0.0)
        torch.testing.assert_close(mean[0, k], g_mean[0])
        torch.testing.assert_close(std[0, k], g_std[0] * ((n - 1) / n) ** 0.5)


def test_masked_mean_std_soft_masks_are_weights() -> None:
    feat = _rand(1, 2, 4, 4, seed=9)
    uniform = torch.full((1, 1, 4, 4), 0.3, dtype=torch.float64)
    mean, std = FN.masked_mean_std(feat, uniform, eps=0.0)
    torch.testing.assert_close(mean[0, 0, :, 0, 0], feat[0].flatten(1).mean(1))
    torch.testing.assert_close(std[0, 0, :, 0, 0], feat[0].flatten(1).std(1, unbiased=False))


def test_region_adain_reproduces_each_region_target() -> None:
    c, k = 6, 3
    content = _rand(1, c, 10, 12, seed=10, scale=2.0, shift=-1.0)
    labels = torch.zeros(10, 12, dtype=torch.long)
    labels[:, 4:8] = 1
    labels[6:, 8:] = 2
    masks = _labels_to_masks(labels, k)
    t_mean = _rand(1, k, c, 1, 1, seed=11, scale=3.0)
    t_std = _rand(1, k, c, 1, 1, seed=12).abs() + 0.5
    c_mean, c_std = FN.masked_mean_std(content, masks)  # the content regions' own statistics
    out = FN.region_adain_from_stats(content, masks, c_mean, c_std, t_mean, t_std)
    assert out.shape == content.shape
    o_mean, o_std = FN.masked_mean_std(out, masks)
    torch.testing.assert_close(o_mean, t_mean, rtol=0, atol=1e-8)
    torch.testing.assert_close(o_std, t_std, rtol=1e-4, atol=0)
    # regions listed in ``keep`` are left untouched
    keep = torch.tensor([False, True, False])
    kept = FN.region_adain_from_stats(content, masks, c_mean, c_std, t_mean, t_std, keep=keep)
    inside = (labels == 1).expand(1, c, 10, 12)
    assert torch.equal(kept[inside], content[inside])
    assert torch.equal(kept[~inside], out[~inside])


def test_blend_stats_interpolates_with_normalised_weights() -> None:
    m1, m2 = _rand(1, 4, 1, 1, seed=13), _rand(1, 4, 1, 1, seed=14)
    s1, s2 = _rand(1, 4, 1, 1, seed=15).abs(), _rand(1, 4, 1, 1, seed=16).abs()
    mean, std = FN.blend_stats([m1, m2], [s1, s2], [1.0, 3.0])
    torch.testing.assert_close(mean, 0.25 * m1 + 0.75 * m2)
    torch.testing.assert_close(std, 0.25 * s1 + 0.75 * s2)
    mean, std = FN.blend_stats([m1, m2], [s1, s2], [2.0, 0.0])
    torch.testing.assert_close(mean, m1)
    torch.testing.assert_close(std, s1)


NEGATIVE = r"style weights must be non-negative with a positive sum"
LENGTHS = r"means, stds and weights must be non-empty lists of equal length"


@pytest.mark.parametrize(
    "weights,means,message",
    [([1.0, -1.0], 2, NEGATIVE), ([0.0, 0.0], 2, NEGATIVE), ([1.0], 2, LENGTHS), ([], 0, LENGTHS)],
)
def test_blend_stats_refuses_bad_weights(weights: list[float], means: int, message: str) -> None:
    m = [_rand(1, 2, 1, 1, seed=i) for i in range(means)]
    with pytest.raises(ValueError, match=message):
        FN.blend_stats(m, m, weights)


# ----------------------------------------------------------------------------- colour
def test_yuv_round_trip() -> None:
    img = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(17))
    torch.testing.assert_close(FN.yuv_to_rgb(FN.rgb_to_yuv(img)), img, rtol=0, atol=1e-5)
    grey = torch.full((1, 3, 2, 2), 0.4)
    yuv = FN.rgb_to_yuv(grey)
    torch.testing.assert_close(yuv[:, 0], torch.full((1, 2, 2), 0.4), rtol=0, atol=1e-6)
    torch.testing.assert_close(yuv[:, 1:], torch.zeros(1, 2, 2, 2), rtol=0, atol=1e-5)  # BT.601 rounding


# ----------------------------------------------------------------------------- losses
def test_gram_hand_computed() -> None:
    feat = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 2  # F·Fᵀ / (H·W)
    torch.testing.assert_close(FN.gram(feat), expected)


def test_content_loss_hand_computed() -> None:
    a = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    b = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(FN.content_loss(a, b), torch.tensor(13.0 / 3))
    assert FN.content_loss(a, a) == 0


def test_tv_loss_hand_computed() -> None:
    img = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    # vertical |3-0|, |5-1| → mean 3.5; horizontal |1-0|, |5-3| → mean 1.5
    torch.testing.assert_close(FN.tv_loss(img), torch.tensor(5.0))
    assert FN.tv_loss(torch.full((1, 3, 4, 4), 0.7)) == 0


def test_style_losses_vanish_on_identical_features_and_grow_otherwise() -> None:
    f = [_rand(1, 3, 4, 4, seed=19).float(), _rand(1, 5, 2, 2, seed=20).float()]
    g = [x * 2 + 1 for x in f]
    assert FN.gram_style_loss(f, f) == 0
    assert FN.mean_std_style_loss(f, f) == 0
    assert FN.gram_style_loss(f, g) > 0
    assert FN.mean_std_style_loss(f, g) > 0


def test_lsgan_losses_hand_computed() -> None:
    ones, zeros = [torch.ones(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)]
    assert FN.lsgan_d_loss(ones, zeros) == 0
    torch.testing.assert_close(FN.lsgan_d_loss(zeros, ones), torch.tensor(1.0))
    assert FN.lsgan_g_loss(ones) == 0
    torch.testing.assert_close(FN.lsgan_g_loss(zeros), torch.tensor(0.5))


# ----------------------------------------------------------------------------- shape errors
@pytest.mark.parametrize(
    "call",
    [
        lambda: FN.mean_std(torch.zeros(3, 4, 4)),
        lambda: FN.adain(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, 4)),
        lambda: FN.adain(torch.zeros(3, 4, 4), torch.zeros(1, 3, 4, 4)),
        lambda: FN.masked_mean_std(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5)),
        lambda: FN.masked_mean_std(torch.zeros(1, 3, 4, 4), torch.zeros(2, 4, 4)),
        lambda: FN.region_adain_from_stats(torch.zeros(1, 3, 4, 4), torch.zeros(2, 4, 4), torch.zeros(1, 2, 3, 1, 1),
                                           torch.ones(1, 2, 3, 1, 1), torch.zeros(1, 2, 3, 1, 1),
                                           torch.ones(1, 2, 3, 1, 1)),
        lambda: FN.rgb_to_yuv(torch.zeros(3, 4, 4)),
        lambda: FN.gram(torch.zeros(2, 4)),
        lambda: FN.content_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5)),
        lambda: FN.tv_loss(torch.zeros(4, 4)),
    ],
    ids=["mean_std", "adain-channels", "adain-3d", "masked-hw", "masked-3d", "region_adain-3d",
         "rgb_to_yuv", "gram", "content_loss", "tv_loss"],
)
def test_shape_errors_raise_value_error(call) -> None:
    with pytest.raises(ValueError, match="shape|differ|must match|4-D"):
        call()


def test_sliced_wasserstein_is_a_distance_between_distributions() -> None:
    g = torch.Generator().manual_seed(5)
    a = torch.randn(1, 8, 12, 10, generator=g, dtype=torch.float64)
    shuffled = a.flatten(2)[..., torch.randperm(120, generator=g)].view(1, 8, 12, 10)
    assert float(FN.sliced_wasserstein(a, shuffled)) < 1e-12  # the layout does not count, only the distribution
    # a shift by t along every channel moves each projection by t·Σd_i: the distance is t·RMS over directions
    t = 0.5
    dirs = torch.randn(8, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    expect = t * float(dirs.sum(0).pow(2).mean().sqrt())
    assert float(FN.sliced_wasserstein(a, a + t)) == pytest.approx(expect, rel=1e-9)
    small = a[..., :6, :5]  # another count: quantiles at the same levels
    assert float(FN.sliced_wasserstein(a, small)) < float(FN.sliced_wasserstein(a, a * 2))
    with pytest.raises(ValueError, match="same C"):
        FN.sliced_wasserstein(a, torch.zeros(1, 4, 3, 3))


def test_inside_cuts_the_margin_from_every_side() -> None:
    x = torch.arange(2 * 3 * 6 * 8, dtype=torch.float32).reshape(2, 3, 6, 8)
    inner = FN.inside(x, 2)
    assert inner.shape == (2, 3, 2, 4)
    assert torch.equal(inner, x[:, :, 2:4, 2:6])
    assert torch.equal(FN.inside(x, 0), x)
    with pytest.raises(ValueError, match=r"margin must be in \[0, 2\] for a \(6, 8\) map, got 3"):
        FN.inside(x, 3)


def test_shrink_pulls_each_region_toward_the_pooled_statistics_by_its_size() -> None:
    """shrink s: region k's moments gain s·T pseudo-pixels of the pooled moments (T: all regions' weight)."""
    feat = _rand(1, 4, 6, 8, seed=21, scale=2.0, shift=1.0)
    labels = torch.zeros(6, 8, dtype=torch.long)
    labels[:, 6:] = 1  # region 1: 12 of the 48 pixels
    masks = _labels_to_masks(labels, 2)
    torch.testing.assert_close(FN.masked_mean_std(feat, masks, eps=0.0, shrink=0.0),
                               FN.masked_mean_std(feat, masks, eps=0.0))
    pooled_mean, pooled_std = FN.masked_mean_std(feat, torch.ones(1, 1, 6, 8, dtype=feat.dtype), eps=0.0)
    mean, std = FN.masked_mean_std(feat, masks, eps=0.0, shrink=0.25)  # 12 pseudo-pixels each
    x = feat[0].flatten(1)  # (C, 48)
    for k, n in ((0, 36), (1, 12)):
        sel = x[:, labels.flatten() == k]
        m = (sel.sum(1) + 12 * x.mean(1)) / (n + 12)  # the definition, by hand
        v = (sel.pow(2).sum(1) + 12 * x.pow(2).mean(1)) / (n + 12) - m * m
        torch.testing.assert_close(mean[0, k, :, 0, 0], m)
        torch.testing.assert_close(std[0, k, :, 0, 0], v.sqrt())
    # the small region moves further toward the pooled mean than the large one, and a huge shrink reaches it
    gap = (mean - pooled_mean).abs().sum((2, 3, 4))[0]
    own = (FN.masked_mean_std(feat, masks, eps=0.0)[0] - pooled_mean).abs().sum((2, 3, 4))[0]
    assert gap[1] / own[1] < gap[0] / own[0] < 1
    far_mean, far_std = FN.masked_mean_std(feat, masks, eps=0.0, shrink=1e6)
    torch.testing.assert_close(far_mean, pooled_mean.expand_as(far_mean), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(far_std, pooled_std.expand_as(far_std), rtol=1e-4, atol=1e-4)
    # one region: nothing to pool, nothing changes
    one = torch.ones(1, 1, 6, 8, dtype=feat.dtype)
    torch.testing.assert_close(FN.masked_mean_std(feat, one, shrink=0.5), FN.masked_mean_std(feat, one))
