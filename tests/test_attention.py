"""Attention fusion and region-guided refinement (issue 15): the maths, the pipeline and the web form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle import functional as FN
from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.io.labels import LabelMap
from semstyle.losses import GeneratorObjective, LossWeights
from semstyle.pipelines.refine import region_style_targets
from semstyle.pipelines.semantic import descriptors, region_targets
from semstyle.types import Attention, Regions, StyleStats

SIZE = 128


# ----------------------------------------------------------------------------- the maths
def test_attention_rows_sum_to_one_and_prefer_the_same_label() -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 16, generator=g), torch.randn(7, 16, generator=g)
    same = torch.zeros(5, 7, dtype=torch.bool)
    same[torch.arange(5), torch.arange(5)] = True  # content region i has a same-label style region i
    same[4, 4] = False  # …except the last, which attends by similarity alone
    for prior in (0.0, 4.0, math.inf):
        a = FN.attention_weights(q, k, same, temperature=0.5, prior=prior)
        assert a.shape == (5, 7) and bool((a >= 0).all())
        torch.testing.assert_close(a.sum(dim=1), torch.ones(5))
    soft, hard = FN.attention_weights(q, k, same, 0.5, 4.0), FN.attention_weights(q, k, same, 0.5, math.inf)
    none = FN.attention_weights(q, k, None, 0.5)
    assert bool((soft[:4].argmax(1) == torch.arange(4)).all())  # the prior wins over similarity
    assert bool((soft[torch.arange(4), torch.arange(4)] > none[torch.arange(4), torch.arange(4)]).all())
    assert torch.equal(hard[:4], torch.eye(7)[:4])  # a hard mask: exactly one-hot
    torch.testing.assert_close(hard[4], none[4])  # no same label: similarity only, in every mode
    cold = FN.attention_weights(q, k, None, 0.01)
    assert float(cold.max(dim=1).values.min()) > float(none.max(dim=1).values.min())  # colder = sharper


def test_attended_stats_are_the_mixture_moments_and_exact_for_one_hot() -> None:
    g = torch.Generator().manual_seed(1)
    means, stds = torch.randn(3, 8, generator=g), torch.rand(3, 8, generator=g) + 0.1
    one_hot = torch.eye(3)[[2, 0]]
    m, s = FN.attended_stats(one_hot, means, stds)
    assert torch.equal(m, means[[2, 0]]) and torch.equal(s, stds[[2, 0]])  # bit for bit
    w = torch.tensor([[0.25, 0.75, 0.0]])
    m, s = FN.attended_stats(w, means, stds)
    # sample a mixture: its mean and std match the closed form
    n = 400_000
    pick = torch.multinomial(w[0], n, replacement=True, generator=g)
    x = means[pick] + stds[pick] * torch.randn(n, 8, generator=g)
    torch.testing.assert_close(m[0], x.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(s[0], x.std(0), atol=0.02, rtol=0)
    with pytest.raises(ValueError, match="disagree"):
        FN.attended_stats(w, means[:2], stds[:2])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        FN.attention_weights(means, means, None, 0.0)


def _labelled_stats(feat: torch.Tensor) -> StyleStats:
    m, s = FN.mean_std(feat)
    return StyleStats(None, feat, m, s)


def test_hard_same_label_attention_reproduces_region_adain_exactly() -> None:
    g = torch.Generator().manual_seed(2)
    c_feat, s_feat = torch.rand(1, 32, 12, 16, generator=g) * 3, torch.rand(1, 32, 10, 10, generator=g) * 2
    c_lab = np.repeat(np.repeat(np.array([[0, 0, 1, 1], [2, 2, 1, 1], [2, 2, 3, 3]]), 32, 0), 32, 1)  # 96×128
    s_lab = np.repeat(np.repeat(np.array([[3, 1], [0, 2]]), 40, 0), 40, 1)  # 80×80, the same four labels
    ids = [0, 1, 2, 3]
    from semstyle.segmentation.regions import region_masks
    hard = region_masks(c_lab, ids, (12, 16))
    own_m, own_s = FN.masked_mean_std(c_feat, hard)
    g_m, g_s = FN.mean_std(c_feat)
    desc = descriptors(own_m, own_s, g_m, g_s)
    style = _labelled_stats(s_feat)
    regions = Regions(c_lab, [s_lab])
    plain = region_targets(own_m, own_s, desc, ids, [style], [1.0], regions)
    att = region_targets(own_m, own_s, desc, ids, [style], [1.0], regions, attention=Attention(0.5, math.inf))
    assert torch.equal(plain[0], att[0]) and torch.equal(plain[1], att[1])
    assert plain[3] == att[3] == {0: 0, 1: 1, 2: 2, 3: 3}
    soft = region_targets(own_m, own_s, desc, ids, [style], [1.0], regions, attention=Attention(0.5, 1.0))
    assert not torch.equal(plain[0], soft[0])  # a finite prior mixes in the other regions


# ----------------------------------------------------------------------------- the pipeline
def _scene() -> tuple[Image.Image, Image.Image, np.ndarray, np.ndarray]:
    from conftest import content_array, warm_style_array

    c = Image.fromarray(content_array(SIZE, SIZE, seed=0))
    s = Image.fromarray(warm_style_array(SIZE, SIZE, seed=1))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    c_lab = np.where(yy < 0.55 * SIZE, 1, 2).astype(np.int64)
    s_lab = np.where(xx < SIZE // 2, 2, 1).astype(np.int64)
    return c, s, c_lab, s_lab


def test_pipeline_hard_attention_equals_adain_and_soft_differs(exact) -> None:
    stylizer = exact  # fp32, one thread: hard attention and AdaIN are two code paths compared within a level
    c, s, c_lab, s_lab = _scene()
    kw = {"semantic": "labels", "content_labels": LabelMap(c_lab), "style_labels": [LabelMap(s_lab)]}
    adain = np.asarray(stylizer.stylize(c, s, **kw).image, dtype=np.int16)
    hard = stylizer.stylize(c, s, fusion="attention", attention_prior=math.inf, **kw)
    soft = stylizer.stylize(c, s, fusion="attention", attention_prior=0.0, attention_temperature=5.0, **kw)
    assert np.abs(np.asarray(hard.image, dtype=np.int16) - adain).max() <= 1
    assert hard.matches == {1: 1, 2: 2}
    diff = np.abs(np.asarray(soft.image, dtype=np.int16) - adain)
    assert diff.mean() > 0.5 and diff.max() > 5  # a real mixture (the two style halves are alike in colour)
    auto = stylizer.stylize(c, s, semantic="auto", fusion="attention")
    assert auto.image.size == c.size and auto.content_labels is not None


def test_attention_options_are_checked() -> None:
    with pytest.raises(ValueError, match="fusion must be one of adain, attention, got 'soft'"):
        StylizeConfig(NetworkConfig(), StylizeOptions(fusion="soft"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"attention_temperature must be in \[0.01, 100\], got 200"):
        StylizeConfig(NetworkConfig(), StylizeOptions(attention_temperature=200))
    with pytest.raises(ValueError, match="attention_prior must be >= 0"):
        StylizeConfig(NetworkConfig(), StylizeOptions(attention_prior=float("nan")))


# ----------------------------------------------------------------------------- region-guided refinement
def test_region_style_targets_are_the_same_label_statistics(stylizer) -> None:
    c, s, c_lab, s_lab = _scene()
    from semstyle.io.images import to_tensor
    from semstyle.models.vgg import STYLE_LAYERS

    x, _ = FN.pad_to_multiple(to_tensor(s))
    with torch.no_grad():  # the statistics compared in float64: two reduction orders agree to ~1e-15 there
        feats = {k: v.double() for k, v in stylizer.networks.encoder(x, STYLE_LAYERS).items()}
    t = region_style_targets(c_lab, s_lab, feats, STYLE_LAYERS)
    assert t is not None and t.masks.shape == (1, 2, SIZE, SIZE)
    torch.testing.assert_close(t.shares, torch.tensor([0.55, 0.45]), atol=0.01, rtol=0)
    f = feats["relu2_1"]
    left = torch.zeros(1, 1, *f.shape[-2:])
    left[..., : f.shape[-1] // 2] = 1  # style label 2 is the left half
    m, sd = FN.masked_mean_std(f, left)
    # the same statistics by two reduction orders, in float64 (relative rounding ~n·2^-53 for n ≤ 4096 terms)
    torch.testing.assert_close(t.means["relu2_1"][0, 1], m[0, 0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(t.stds["relu2_1"][0, 1], sd[0, 0], rtol=1e-10, atol=1e-12)
    assert region_style_targets(c_lab, s_lab + 10, feats, STYLE_LAYERS) is None  # no shared label
    # the objective's region term is zero for the style's own statistics and positive otherwise
    obj = GeneratorObjective(stylizer.networks.encoder, LossWeights())
    terms = obj(to_tensor(c), torch.zeros(1, 512, SIZE // 8, SIZE // 8), feats, regions=t)
    assert float(terms["style_region"]) > 0


def test_feature_masks_cover_the_padded_grid_and_sum_to_one() -> None:
    from semstyle.pipelines.refine import _feature_masks

    masks = torch.zeros(1, 2, 20, 30)
    masks[:, 0, :, :13] = 1  # region 0 the left 13 px, region 1 the rest
    masks[:, 1, :, 13:] = 1
    m = _feature_masks(masks, torch.zeros(1, 512, 3, 4))  # the 20×30 output padded to 24×32: a 3×4 grid
    assert m.shape == (1, 2, 3, 4)
    torch.testing.assert_close(m.sum(dim=1), torch.ones(1, 3, 4))
    assert torch.all(m[0, 0, :, 0] == 1) and torch.all(m[0, 1, :, 2:] == 1)  # pure cells, the padding included
    assert torch.all((m[0, 0, :, 1] > 0) & (m[0, 0, :, 1] < 1))  # the cell the border crosses is shared


def test_region_guided_refinement_never_ends_worse_per_region_or_channel(exact, monkeypatch) -> None:
    # both parametrisations (one scale/shift per region and channel, the default, or per channel) never end worse,
    # and start from the same objective: round 0 decodes the unadjusted fusion, the same computation bit for bit
    import functools

    import semstyle.pipelines.stylize as stylize_mod
    from semstyle.pipelines.refine import RefineConfig

    c, s, c_lab, s_lab = _scene()
    kw = {"semantic": "labels", "content_labels": LabelMap(c_lab), "style_labels": [LabelMap(s_lab)]}
    reps = []
    for mode in (True, False):
        monkeypatch.setattr(stylize_mod, "RefineConfig",  # 2 Adam steps a round (not 4): the property is the same
                            functools.partial(RefineConfig, per_region=mode, steps_per_round=2))
        rep = exact.stylize(c, s, refine=2, refine_target=1.0, **kw).refine
        assert rep is not None and len(rep.objectives) == 3  # round 0 and two refined rounds
        assert min(rep.objectives) == rep.objectives[rep.best_round] <= rep.objectives[0]
        reps.append(rep)
    assert reps[0].objectives[0] == reps[1].objectives[0]
    plain = exact.stylize(c, s, refine=1, refine_target=1.0).refine  # no regions: a different objective
    assert plain is not None and plain.objectives[0] != pytest.approx(reps[0].objectives[0])


def test_with_one_region_the_two_adjustments_are_the_same_function() -> None:
    # with a single region the per-region adjustment is the per-channel one: the same features and the same
    # gradients for any scale/shift (compared in float64: the two sum in other orders, which Adam's
    # normalised steps would amplify in fp32 — why objectives after Adam are not compared)
    from semstyle.pipelines.refine import adjusted

    g = torch.Generator().manual_seed(0)
    target = torch.randn(1, 8, 5, 6, generator=g, dtype=torch.float64)
    unit = target.std()
    grads = []
    for masks in (None, torch.ones(1, 1, 5, 6, dtype=torch.float64)):
        scale = (1 + 0.1 * torch.randn(1, 1, 8, 1, 1, generator=torch.Generator().manual_seed(1),
                                       dtype=torch.float64)).requires_grad_()
        shift = (0.1 * torch.randn(1, 1, 8, 1, 1, generator=torch.Generator().manual_seed(2),
                                   dtype=torch.float64)).requires_grad_()
        out = adjusted(target, scale, shift, unit, masks)
        (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        grads.append((out.detach(), scale.grad, shift.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # with two regions, each region's scale acts only where its mask is
    two = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    two[:, 0, :, :3], two[:, 1, :, 3:] = 1, 1
    scale = torch.ones(1, 2, 8, 1, 1, dtype=torch.float64)
    scale[:, 1] = 2
    out = adjusted(target, scale, torch.zeros_like(scale), unit, two)
    torch.testing.assert_close(out[..., :3], target[..., :3])
    torch.testing.assert_close(out[..., 3:], 2 * target[..., 3:])


def test_region_refinement_objective_holds_the_content_photo(stylizer, monkeypatch) -> None:
    # with regions, refinement's objective is REGION_LOSS_WEIGHTS' (region term instead of the global style terms,
    # content_orig against the content's own relu4_1, handed in by the tiling path); without, the global objective
    import functools

    import semstyle.pipelines.stylize as stylize_mod
    from semstyle.io.images import to_tensor
    from semstyle.pipelines.refine import REGION_LOSS_WEIGHTS, RefineConfig

    calls: list[tuple[LossWeights, torch.Tensor | None, object]] = []
    real = stylize_mod.refine

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((args[3].w, kwargs.get("content"), kwargs.get("regions")))
        return real(*args, **kwargs)

    monkeypatch.setattr(stylize_mod, "refine", spy)
    monkeypatch.setattr(stylize_mod, "RefineConfig", functools.partial(RefineConfig, steps_per_round=1))  # cheaper
    c, s, c_lab, s_lab = _scene()
    kw = {"semantic": "labels", "content_labels": LabelMap(c_lab), "style_labels": [LabelMap(s_lab)]}
    stylizer.stylize(c, s, refine=1, refine_target=1.0, **kw)
    stylizer.stylize(c, s, refine=1, refine_target=1.0)
    (w_reg, content, regions), (w_plain, _, no_regions) = calls
    assert w_reg == REGION_LOSS_WEIGHTS and w_reg.content_orig > 0 and w_reg.style_gram == w_reg.style_meanstd == 0
    assert regions is not None and no_regions is None and w_plain == LossWeights()
    with torch.no_grad():
        own = stylizer.encode(FN.pad_to_multiple(to_tensor(c))[0])["relu4_1"]
    assert content is not None and content.shape == own.shape == (1, 512, SIZE // 8, SIZE // 8)
    torch.testing.assert_close(content.float(), own.float(), rtol=0.02, atol=0.02)
