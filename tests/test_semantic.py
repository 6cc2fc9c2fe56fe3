"""Region matching and region-matched AdaIN (issue 3, items 4 and 5), at the feature level.

These tests call ``fuse_regions`` on synthetic features with label maps aligned to the feature grid (8×8 pixel
blocks); the real pipeline's are in test_semantic_pipeline.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle import functional as FN
from semstyle.pipelines.fusion import fuse_regions
from semstyle.segmentation import regions as R
from semstyle.types import Regions, StyleStats

C = 16  # feature channels in the synthetic tests


# ----------------------------------------------------------------------------- helpers
def up(grid: np.ndarray) -> np.ndarray:
    """Feature-grid labels (h, w) → pixel labels (8h, 8w), each feature pixel an 8×8 block."""
    return np.kron(grid, np.ones((8, 8), dtype=np.int64))


def feats(grid: np.ndarray, mus: dict[int, torch.Tensor], sds: dict[int, float], seed: int) -> torch.Tensor:
    """(1, C, h, w) features: region r ~ N(mus[r], sds[r]²) per channel."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, C, *grid.shape, generator=g)
    out = torch.zeros_like(x)
    for r, mu in mus.items():
        m = torch.from_numpy(grid == r)
        out[0][:, m] = x[0][:, m] * sds[r] + mu.view(C, 1)
    return out


def entry(feat: torch.Tensor) -> StyleStats:
    mean, std = FN.mean_std(feat)
    h, w = feat.shape[-2:]
    return StyleStats(Image.new("RGB", (8 * w, 8 * h)), feat, mean, std)


def hard_stats(feat: torch.Tensor, labels: np.ndarray, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-label (K, C) means and stds of ``feat`` under hard masks of pixel ``labels``."""
    masks = R.region_masks(labels, ids, tuple(feat.shape[-2:]), 0.0)
    m, s = FN.masked_mean_std(feat, masks)
    return m[0, :, :, 0, 0], s[0, :, :, 0, 0]


def cfg(**kw: object) -> dict[str, object]:
    """fuse_regions' rules: hard borders unless said otherwise."""
    return {"unmatched": "nearest", "feather": 0.0, **kw}


def rand_mu(seed: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(C, generator=torch.Generator().manual_seed(seed)) * scale


# content: regions 0 (top), 1 (bottom left), 2 (bottom right); style: 0 (left) and 1 (right)
C_GRID = np.zeros((8, 8), np.int64)
C_GRID[4:, :4], C_GRID[4:, 4:] = 1, 2
S_GRID = np.zeros((8, 10), np.int64)
S_GRID[:, 5:] = 1
MU = {0: rand_mu(10), 1: rand_mu(11)}


def content_with_region2_like(like: int) -> torch.Tensor:
    """Content features whose region 2 resembles region ``like`` (so 'nearest' should pick it)."""
    return feats(C_GRID, {0: MU[0], 1: MU[1], 2: MU[like] + 0.3 * rand_mu(12, 1.0)}, {0: 1.0, 1: 0.5, 2: 0.7}, 1)


def style_feat() -> torch.Tensor:
    """Style features: the same two kinds of region, under a global per-channel affine 'style'."""
    base = feats(S_GRID, MU, {0: 1.0, 1: 0.5}, 2)
    return base * (1.5 + rand_mu(13, 0.2).abs().view(1, C, 1, 1)) + rand_mu(14, 2.0).view(1, C, 1, 1)


# ----------------------------------------------------------------------------- merging tiny regions
def test_merge_small_regions_merges_chains_into_a_neighbour() -> None:
    lab = np.zeros((40, 40), np.int64)
    lab[:, 20:] = 1
    lab[10:14, 25:29] = 2  # 12 px ring of label 2 ...
    lab[11:13, 26:28] = 3  # ... around 4 px of label 3, all inside label 1
    out = R.merge_small_regions(lab, 0.02)  # limit: 32 px
    assert np.unique(out).tolist() == [0, 1]
    assert (out[10:14, 25:29] == 1).all()
    np.testing.assert_array_equal(out[lab < 2], lab[lab < 2])  # large regions untouched
    np.testing.assert_array_equal(R.merge_small_regions(lab, 0.0), lab)
    assert lab[11, 26] == 3  # the input is not modified


def test_merge_small_regions_leaves_no_label_under_the_limit() -> None:
    rng = np.random.default_rng(0)
    lab = np.kron(rng.integers(0, 12, (8, 8)), np.ones((6, 6), np.int64))
    out = R.merge_small_regions(lab, 0.1)
    ids, counts = np.unique(out, return_counts=True)
    assert len(ids) >= 1 and (len(ids) == 1 or counts.min() >= 0.1 * out.size)
    assert set(ids.tolist()) <= set(np.unique(lab).tolist())
    assert R.merge_small_regions(np.full((5, 5), 7), 0.3).tolist() == np.full((5, 5), 7).tolist()


def test_region_masks_are_hard_on_the_grid_and_soft_when_feathered() -> None:
    hard = R.region_masks(up(C_GRID), [0, 1, 2], (8, 8), 0.0)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(hard.sum(1), torch.ones(1, 8, 8))
    soft = R.region_masks(up(C_GRID), [0, 1, 2], (8, 8), 1.0)
    torch.testing.assert_close(soft.sum(1), torch.ones(1, 8, 8))
    assert ((soft > 0.05) & (soft < 0.95)).any()


# ----------------------------------------------------------------------------- region-matched AdaIN
def test_each_region_gets_exactly_its_style_statistics() -> None:
    c_feat = content_with_region2_like(0)
    s_grid = np.zeros((8, 12), np.int64)
    s_grid[:, 4:8], s_grid[:, 8:] = 1, 2
    s_feat = feats(s_grid, {0: rand_mu(20), 1: rand_mu(21), 2: rand_mu(22)}, {0: 2.0, 1: 0.3, 2: 1.0}, 3)
    regions = Regions(up(C_GRID), [up(s_grid)])
    target, matches = fuse_regions(c_feat, [entry(s_feat)], [1.0], regions, **cfg())
    assert matches == {0: 0, 1: 1, 2: 2}
    got_m, got_s = hard_stats(target, up(C_GRID), [0, 1, 2])
    want_m, want_s = hard_stats(s_feat, up(s_grid), [0, 1, 2])
    torch.testing.assert_close(got_m, want_m, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_s, want_s, atol=1e-4, rtol=1e-4)
    # and the content's structure inside each region is kept (an affine map per channel)
    m = torch.from_numpy(C_GRID == 1)
    corr = torch.corrcoef(torch.stack([c_feat[0, 0][m], target[0, 0][m]]))[0, 1]
    assert corr > 0.999


def test_unmatched_keep_leaves_the_content_features_unchanged() -> None:
    c_feat = content_with_region2_like(0)
    target, matches = fuse_regions(c_feat, [entry(style_feat())], [1.0], Regions(up(C_GRID), [up(S_GRID)]),
                                   **cfg(unmatched="keep"))
    assert matches == {0: 0, 1: 1, 2: "keep"}
    m = torch.from_numpy(C_GRID == 2)
    assert torch.equal(target[0][:, m], c_feat[0][:, m])
    assert not torch.allclose(target[0][:, ~m], c_feat[0][:, ~m])  # the others are stylised


def test_unmatched_global_takes_the_whole_style_statistics() -> None:
    c_feat, s_feat = content_with_region2_like(0), style_feat()
    target, matches = fuse_regions(c_feat, [entry(s_feat)], [1.0], Regions(up(C_GRID), [up(S_GRID)]),
                                   **cfg(unmatched="global"))
    assert matches[2] == "global"
    got_m, got_s = hard_stats(target, up(C_GRID), [2])
    g_m, g_s = FN.mean_std(s_feat)
    torch.testing.assert_close(got_m[0], g_m.flatten(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_s[0], g_s.flatten(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("like", [0, 1])
def test_unmatched_nearest_takes_the_closest_style_region(like: int) -> None:
    c_feat, s_feat = content_with_region2_like(like), style_feat()
    target, matches = fuse_regions(c_feat, [entry(s_feat)], [1.0], Regions(up(C_GRID), [up(S_GRID)]),
                                   **cfg(unmatched="nearest"))
    assert matches == {0: 0, 1: 1, 2: like}
    got_m, got_s = hard_stats(target, up(C_GRID), [2])
    want_m, want_s = hard_stats(s_feat, up(S_GRID), [like])
    torch.testing.assert_close(got_m, want_m, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_s, want_s, atol=1e-4, rtol=1e-4)


def test_match_regions_policies_directly() -> None:
    c_desc = torch.tensor([[0.0, 0.0], [5.0, 5.0], [4.0, 4.5]])
    s_desc = torch.tensor([[0.0, 0.1], [5.0, 4.9]])
    assert R.match_regions([1, 2, 3], [1, 2], c_desc, s_desc, "nearest") == [1, 2, 2]
    assert R.match_regions([1, 2, 3], [1, 2], c_desc, s_desc, "global") == [1, 2, "global"]
    assert R.match_regions([1, 2, 3], [1, 2], c_desc, s_desc, "keep") == [1, 2, "keep"]
    with pytest.raises(ValueError, match="nearest, global or keep"):
        R.match_regions([3], [1], c_desc[2:], s_desc, "closest")


def test_interpolated_styles_blend_region_statistics() -> None:
    c_feat = content_with_region2_like(0)
    s1, s2 = style_feat(), style_feat() * 0.5 - 3.0
    regions = Regions(up(C_GRID), [up(S_GRID), up(S_GRID)])
    target, _ = fuse_regions(c_feat, [entry(s1), entry(s2)], [3.0, 1.0], regions, **cfg(unmatched="global"))
    got_m, got_s = hard_stats(target, up(C_GRID), [0, 1])
    m1, sd1 = hard_stats(s1, up(S_GRID), [0, 1])
    m2, sd2 = hard_stats(s2, up(S_GRID), [0, 1])
    torch.testing.assert_close(got_m, 0.75 * m1 + 0.25 * m2, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_s, 0.75 * sd1 + 0.25 * sd2, atol=1e-4, rtol=1e-4)


def test_region_styles_give_one_style_per_label() -> None:
    c_feat = content_with_region2_like(0)
    s1, s2 = style_feat(), style_feat() * 0.5 - 3.0
    regions = Regions(up(C_GRID), [None, None], region_styles={0: 1, 1: 0, 2: 1})
    target, matches = fuse_regions(c_feat, [entry(s1), entry(s2)], [1.0, 1.0], regions, **cfg())
    assert matches == {0: "global", 1: "global", 2: "global"}
    got_m, _ = hard_stats(target, up(C_GRID), [0, 1, 2])
    torch.testing.assert_close(got_m[0], FN.mean_std(s2)[0].flatten(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_m[1], FN.mean_std(s1)[0].flatten(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_m[2], FN.mean_std(s2)[0].flatten(), atol=1e-4, rtol=1e-4)


def test_feathering_removes_the_hard_seam() -> None:
    grid = np.zeros((12, 16), np.int64)
    grid[:, 8:] = 1
    c_feat = 1.0 + 0.01 * torch.randn(1, C, 12, 16, generator=torch.Generator().manual_seed(0))
    s_feat = feats(grid, {0: torch.full((C,), -5.0), 1: torch.full((C,), 5.0)}, {0: 0.1, 1: 0.1}, 4)
    regions = Regions(up(grid), [up(grid)])

    def max_jump(feather: float) -> float:
        target, _ = fuse_regions(c_feat, [entry(s_feat)], [1.0], regions, **cfg(feather=feather))
        assert torch.isfinite(target).all()
        return float((target[..., 1:] - target[..., :-1]).abs().max())

    hard, soft = max_jump(0.0), max_jump(1.5)
    assert hard > 8.0  # the two regions' means are 10 apart: one step at the border
    assert soft < 0.5 * hard
