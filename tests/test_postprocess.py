"""The colour steps that run on the uint8 output (``pipelines.postprocess``): the one colour preservation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semstyle import functional as FN
from semstyle.pipelines import postprocess


def _yuv(a: np.ndarray) -> torch.Tensor:
    return FN.rgb_to_yuv(torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255)


def test_keep_luminance_keeps_content_chroma_and_luminance_stats() -> None:
    rng = np.random.default_rng(18)
    content = np.clip(rng.normal(128, 20, (40, 36, 3)) + [25, 0, 0], 0, 255).astype(np.uint8)  # a reddish content
    stylized = (rng.random((40, 36, 3)) * [50, 75, 255]).astype(np.uint8)  # a blue texture
    out = stylized.copy()
    postprocess.keep_luminance(out, content)
    o, c, s = _yuv(out), _yuv(content), _yuv(stylized)
    inside = torch.from_numpy(((out > 0) & (out < 255)).all(-1))  # pixels the final clamp did not touch
    assert inside.float().mean() > 0.95
    # the output is rounded to 8 bits: each RGB channel within 0.5/255, so U and V (coefficients of absolute sum
    # at most 1.05) within 0.53/255 ≈ 2.1e-3 of the content's, and Y's mean and std within 0.5/255 of it
    torch.testing.assert_close(o[0, 1:][:, inside], c[0, 1:][:, inside], rtol=0, atol=2.2e-3)
    torch.testing.assert_close(FN.mean_std(o[:, :1]), FN.mean_std(c[:, :1]), rtol=0, atol=2.5e-3)
    corr = torch.corrcoef(torch.stack([o[0, 0].flatten(), s[0, 0].flatten()]))[0, 1]
    assert corr > 0.99  # luminance: the stylised pattern


def test_keep_luminance_refuses_arrays_of_other_shapes() -> None:
    with pytest.raises(ValueError, match="differ"):
        postprocess.keep_luminance(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
