"""Training through semantic fusion (issue 14): ``semantic: auto`` co-segments each crop pair and trains on the
region-matched AdaIN target, as inference's ``--semantic auto`` fuses; fuse_regions takes inference's attention too;
bad settings are refused (``semantic: attention``, a trial that was measured and not kept, names the commit that has
it)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import _cfg, make_data

from semstyle import functional as FN
from semstyle.errors import InputError
from semstyle.pipelines.fusion import fuse_regions
from semstyle.training.config import TRIAL_COMMIT
from semstyle.training.trainer import Trainer
from semstyle.types import Attention, Regions, StyleStats

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest



@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("semantic_data"), ((64, 56), (56, 64), (72, 60), (60, 80)))


def _scene() -> tuple[torch.Tensor, StyleStats, Regions]:
    g = torch.Generator().manual_seed(3)
    c_feat, s_feat = torch.rand(1, 16, 12, 16, generator=g) * 3, torch.rand(1, 16, 10, 10, generator=g) * 2
    c_lab = np.repeat(np.repeat(np.array([[0, 0, 1, 1], [2, 2, 1, 1]]), 48, 0), 32, 1)  # 96×128
    s_lab = np.repeat(np.repeat(np.array([[1, 0], [2, 2]]), 40, 0), 40, 1)  # 80×80, the same three labels
    m, s = FN.mean_std(s_feat)
    return c_feat, StyleStats(None, s_feat, m, s), Regions(c_lab, [s_lab])


def test_fuse_regions_with_hard_attention_is_region_adain_and_soft_attention_mixes() -> None:
    c_feat, style, regions = _scene()
    plain, matches = fuse_regions(c_feat, [style], [1.0], regions)
    hard, _ = fuse_regions(c_feat, [style], [1.0], regions, attention=Attention(0.5, math.inf))
    soft, _ = fuse_regions(c_feat, [style], [1.0], regions, attention=Attention(0.5, 1.0))
    assert matches == {0: 0, 1: 1, 2: 2}
    assert torch.allclose(plain, hard, atol=1e-6)  # one-hot attention = the same-label region's statistics
    assert (soft - plain).abs().max() > 1e-3


def test_a_semantic_auto_run_trains_on_region_matched_adain(data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import semstyle.training.trainer as trainer_module

    seen: list[tuple[torch.Tensor, Attention | None]] = []
    real = trainer_module.fuse_regions

    def spy(*args: object, attention: Attention | None = None, **kw: object) -> tuple[torch.Tensor, dict]:
        target, matches = real(*args, attention=attention, **kw)  # type: ignore[arg-type, misc]
        seen.append((target, attention))
        return target, matches

    monkeypatch.setattr(trainer_module, "fuse_regions", spy)
    tr = Trainer(_cfg(data, tmp_path / "auto", 2, semantic="auto", size=48))
    stats = [tr.train_step() for _ in range(2)]
    tr.close()
    assert len(seen) == 4 and all(a is None for _, a in seen)  # batch 2 × 2 steps, each pair region-matched AdaIN
    assert all(t.shape == (1, 512, 6, 6) and torch.isfinite(t).all() for t, _ in seen)
    assert all(math.isfinite(s["g/total"]) for s in stats)


@pytest.mark.parametrize(("changes", "match"), [
    ({"semantic": "regions"}, "must be none or auto, got 'regions'$"),
    ({"semantic": "attention"}, f"semantic: attention was measured, not kept and removed after {TRIAL_COMMIT}"),
    ({"semantic": "auto", "style_targets": "whole"}, "set style_targets: crop")])
def test_semantic_settings_are_checked(data: Path, tmp_path: Path, changes: dict[str, str], match: str) -> None:
    with pytest.raises(InputError, match=match):
        _cfg(data, tmp_path, 2, **changes).check()
