"""The multi-scale, style-conditional PatchGAN discriminator: shapes per scale, spectral norm,
conditioning, and the style condition vector."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from semstyle.models.discriminator import STYLE_DIM, DiscriminatorConfig, MultiScaleDiscriminator, style_vector

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest

CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}


def _feats(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Non-negative (post-ReLU-like) random features with the VGG channel counts."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(n, c, 6, 5, generator=g) * (1 + i) for i, (k, c) in enumerate(CHANNELS.items())}


@pytest.fixture(scope="module")
def disc3() -> MultiScaleDiscriminator:
    torch.manual_seed(0)  # narrow (base 16) so the exact SVDs below stay cheap; the layout is the default one
    return MultiScaleDiscriminator(DiscriminatorConfig(num_scales=3, base_channels=16)).eval()


@pytest.mark.parametrize(
    ("num_scales", "hw", "expected"),
    [
        (2, (64, 64), [(8, 8), (4, 4)]),
        (3, (64, 64), [(8, 8), (4, 4), (2, 2)]),
        (2, (64, 96), [(8, 12), (4, 6)]),
        (3, (64, 96), [(8, 12), (4, 6), (2, 3)]),
    ],
)
def test_output_shape_per_scale(num_scales: int, hw: tuple[int, int], expected: list[tuple[int, int]]) -> None:
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(DiscriminatorConfig(num_scales=num_scales, base_channels=8)).eval()
    with torch.no_grad():
        outs = d(torch.rand(2, 3, *hw), torch.randn(2, STYLE_DIM))
        score = d.score(torch.rand(2, 3, *hw), torch.randn(2, STYLE_DIM))
    assert [tuple(o.shape) for o in outs] == [(2, 1, *s) for s in expected]  # finest first, PatchGAN maps
    assert score.shape == (2,)
    assert len(d.scales) == num_scales


def test_default_config_has_two_scales() -> None:
    assert DiscriminatorConfig().num_scales >= 2
    assert DiscriminatorConfig().style_dim == STYLE_DIM == 1920


def test_spectral_norm_on_every_conv_and_linear(disc3: MultiScaleDiscriminator) -> None:
    layers = [(n, m) for n, m in disc3.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 3 * 6  # per scale: 4 body convs, the output conv, the projection embedding
    for name, m in layers:
        assert parametrize.is_parametrized(m, "weight"), name
        assert type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm", name
        with torch.no_grad():
            sigma = float(torch.linalg.matrix_norm(m.weight.flatten(1), ord=2))
            raw = float(torch.linalg.matrix_norm(m.parametrizations.weight.original.flatten(1), ord=2))
        assert 0.9 < sigma < 1.15, (name, sigma)  # the effective weight has spectral norm ≈ 1
        assert abs(raw - 1) > 0.05 or name.endswith("out"), (name, raw)  # …because of the parametrisation


def test_conditioning_changes_the_scores(disc3: MultiScaleDiscriminator) -> None:
    torch.manual_seed(1)
    img = torch.rand(1, 3, 64, 64).expand(2, -1, -1, -1)  # the same image twice
    vecs = torch.cat([style_vector(_feats(1, 1)), style_vector(_feats(1, 2))])
    with torch.no_grad():
        outs = disc3(img, vecs)
        swapped = disc3(img, vecs.flip(0))
    for o, s in zip(outs, swapped, strict=True):
        assert (o[0] - o[1]).abs().max() > 1e-5  # different styles → different patch scores
        torch.testing.assert_close(o.flip(0), s)  # each sample is judged under its own condition
    with torch.no_grad():
        same = disc3(img, vecs[:1].expand(2, -1))
    for o in same:
        torch.testing.assert_close(o[0], o[1])  # same image and same style → same score


def test_style_vector_shape_and_values() -> None:
    feats = _feats(3, 4)
    v = style_vector(feats)
    assert v.shape == (3, 1920)
    assert torch.isfinite(v).all()
    f = feats["relu1_1"].flatten(2)
    torch.testing.assert_close(v[:, :64], torch.log1p(f.mean(2)))
    torch.testing.assert_close(v[:, 64:128], torch.log(f.std(2) + 1e-5))
    f4 = feats["relu4_1"].flatten(2)
    torch.testing.assert_close(v[:, -512:], torch.log(f4.std(2) + 1e-5))
    # constant (e.g. dead) channels stay finite
    zeros = {k: torch.zeros(1, c, 4, 4) for k, c in CHANNELS.items()}
    assert torch.isfinite(style_vector(zeros)).all()
