"""The four losses against values computed by hand (explicit loops over numpy arrays), and the
generator objective / discriminator loss as the λ-weighted sums of those terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from semstyle import functional as FN
from semstyle.losses import GeneratorObjective, LossWeights, discriminator_loss, discriminator_terms
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.vgg import STYLE_LAYERS, VGGEncoder

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).double()


# ---------------------------------------------------------------- hand-computed references
def _content_ref(a: np.ndarray, b: np.ndarray) -> float:
    """Σ over batch of (Σ_c,h,w (a−b)²) / (C·H·W), averaged over the batch."""
    n, c, h, w = a.shape
    per_image = []
    for i in range(n):
        s = 0.0
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    s += (a[i, ch, y, x] - b[i, ch, y, x]) ** 2
        per_image.append(s / (c * h * w))
    return sum(per_image) / n


def _gram_ref(f: np.ndarray) -> np.ndarray:
    """G[n, i, j] = Σ_p f[n, i, p] f[n, j, p] / (H·W)."""
    n, c, h, w = f.shape
    g = np.zeros((n, c, c))
    for k in range(n):
        for i in range(c):
            for j in range(c):
                s = 0.0
                for y in range(h):
                    for x in range(w):
                        s += f[k, i, y, x] * f[k, j, y, x]
                g[k, i, j] = s / (h * w)
    return g


def _gram_style_ref(outs: list[np.ndarray], styles: list[np.ndarray]) -> float:
    """Σ_layers mean over the batch of ||G(o) − G(s)||²_F / C² (one style image for the batch)."""
    total = 0.0
    for o, s in zip(outs, styles, strict=True):
        go, gs = _gram_ref(o), _gram_ref(s)[0]
        n, c = go.shape[:2]
        layer = 0.0
        for k in range(n):
            for i in range(c):
                for j in range(c):
                    layer += (go[k, i, j] - gs[i, j]) ** 2
        total += layer / (n * c * c)
    return total


def _mean_std_ref(f: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    n, c, h, w = f.shape
    mean, std = np.zeros((n, c)), np.zeros((n, c))
    for k in range(n):
        for ch in range(c):
            vals = [f[k, ch, y, x] for y in range(h) for x in range(w)]
            m = sum(vals) / len(vals)
            var = sum((v - m) ** 2 for v in vals) / (len(vals) - 1)  # unbiased, as AdaIN's code
            mean[k, ch], std[k, ch] = m, (var + eps) ** 0.5
    return mean, std


def _mean_std_style_ref(outs: list[np.ndarray], styles: list[np.ndarray]) -> float:
    total = 0.0
    for o, s in zip(outs, styles, strict=True):
        om, osd = _mean_std_ref(o)
        sm, ssd = _mean_std_ref(s)
        total += float(((om - sm[0]) ** 2).mean() + ((osd - ssd[0]) ** 2).mean())
    return total


def _tv_ref(img: np.ndarray) -> float:
    n, c, h, w = img.shape
    dh = sum(abs(img[k, ch, y + 1, x] - img[k, ch, y, x]) for k in range(n) for ch in range(c)
             for y in range(h - 1) for x in range(w))
    dw = sum(abs(img[k, ch, y, x + 1] - img[k, ch, y, x]) for k in range(n) for ch in range(c)
             for y in range(h) for x in range(w - 1))
    return dh / (n * c * (h - 1) * w) + dw / (n * c * h * (w - 1))


# ---------------------------------------------------------------- the pure losses
def test_content_loss_is_mse_normalised_by_chw() -> None:
    a, b = _rand(2, 3, 4, 5, seed=1), _rand(2, 3, 4, 5, seed=2)
    assert float(FN.content_loss(a, b)) == pytest.approx(_content_ref(a.numpy(), b.numpy()), rel=1e-12)
    # a known value: every element off by 2 → 4 regardless of the shape
    assert float(FN.content_loss(torch.zeros(1, 7, 3, 2), torch.full((1, 7, 3, 2), 2.0))) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="shapes differ"):
        FN.content_loss(a, b[:, :2])


def test_gram_matrix_by_hand() -> None:
    f = _rand(2, 3, 4, 5, seed=3)
    np.testing.assert_allclose(FN.gram(f).numpy(), _gram_ref(f.numpy()), rtol=1e-12)
    # a tiny case worked out on paper: channels [1, 2] and [3, 4] → [[5/2, 11/2], [11/2, 25/2]]
    tiny = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    torch.testing.assert_close(FN.gram(tiny), torch.tensor([[[2.5, 5.5], [5.5, 12.5]]]))


def test_gram_style_loss_by_hand_normalised_by_c_squared() -> None:
    outs = [_rand(2, 3, 4, 4, seed=4), _rand(2, 5, 2, 2, seed=5)]
    styles = [_rand(1, 3, 4, 4, seed=6), _rand(1, 5, 2, 2, seed=7)]
    got = float(FN.gram_style_loss(outs, styles))
    want = _gram_style_ref([o.numpy() for o in outs], [s.numpy() for s in styles])
    assert got == pytest.approx(want, rel=1e-12)
    # paper value: 1 channel, 1 pixel, output 3 vs style 1 → G = 9 vs 1 → (9 − 1)² / 1² = 64
    assert float(FN.gram_style_loss([torch.full((1, 1, 1, 1), 3.0)], [torch.ones(1, 1, 1, 1)])) == pytest.approx(64.0)
    # 2 channels: every Gram entry differs by 3 → Σ 4·9 / C² = 9
    o, s = torch.full((1, 2, 1, 1), 2.0), torch.ones(1, 2, 1, 1)
    assert float(FN.gram_style_loss([o], [s])) == pytest.approx(9.0)


def test_mean_std_style_loss_by_hand() -> None:
    outs = [_rand(2, 3, 3, 4, seed=8), _rand(2, 4, 2, 3, seed=9)]
    styles = [_rand(1, 3, 3, 4, seed=10), _rand(1, 4, 2, 3, seed=11)]
    got = float(FN.mean_std_style_loss(outs, styles))
    want = _mean_std_style_ref([o.numpy() for o in outs], [s.numpy() for s in styles])
    assert got == pytest.approx(want, rel=1e-9)
    # shifting the output by a constant changes the mean term only: loss = shift²
    f = _rand(1, 3, 4, 4, seed=12)
    assert float(FN.mean_std_style_loss([f + 0.5], [f])) == pytest.approx(0.25, rel=1e-9)


def test_tv_loss_by_hand() -> None:
    img = _rand(2, 3, 5, 4, seed=13)
    assert float(FN.tv_loss(img)) == pytest.approx(_tv_ref(img.numpy()), rel=1e-12)
    # vertical stripes 0,1,0,1: horizontal differences all 1, vertical all 0 → 1
    stripes = torch.tensor([0.0, 1.0, 0.0, 1.0]).expand(1, 3, 4, 4)
    assert float(FN.tv_loss(stripes)) == pytest.approx(1.0)


def test_lsgan_terms_known_values() -> None:
    ones = [torch.ones(2, 1, 4, 4), torch.ones(2, 1, 2, 2)]
    zeros = [torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)]
    assert float(FN.lsgan_d_loss(ones, zeros)) == 0.0  # a perfect discriminator
    assert float(FN.lsgan_g_loss(ones)) == 0.0  # a perfect generator
    assert float(FN.lsgan_d_loss(zeros, ones)) == pytest.approx(1.0)  # ½·1 + ½·1
    assert float(FN.lsgan_g_loss(zeros)) == pytest.approx(0.5)
    # per-scale constants: real 0.5 / fake 0.25 at scale 0, real 2 / fake −1 at scale 1
    real = [torch.full((1, 1, 3, 3), 0.5), torch.full((1, 1, 2, 2), 2.0)]
    fake = [torch.full((1, 1, 3, 3), 0.25), torch.full((1, 1, 2, 2), -1.0)]
    d0 = 0.5 * 0.25 + 0.5 * 0.0625
    d1 = 0.5 * 1.0 + 0.5 * 1.0
    assert float(FN.lsgan_d_loss(real, fake)) == pytest.approx((d0 + d1) / 2)
    g0, g1 = 0.5 * 0.75**2, 0.5 * 4.0
    assert float(FN.lsgan_g_loss(fake)) == pytest.approx((g0 + g1) / 2)


# ---------------------------------------------------------------- the thin modules
class ConstantDisc(nn.Module):
    """Scores every patch with a constant chosen by whether the condition is ``good``."""

    def __init__(self, good: torch.Tensor, real: float, fake: float, wrong: float) -> None:
        super().__init__()
        self.good, self.real, self.fake, self.wrong = good, real, fake, wrong

    def forward(self, img: torch.Tensor, vec: torch.Tensor) -> list[torch.Tensor]:
        is_real = bool(img.mean() > 0.5)  # the test's real images are white, fakes black
        v = (self.real if torch.equal(vec, self.good) else self.wrong) if is_real else self.fake
        return [torch.full((img.shape[0], 1, 4, 4), v), torch.full((img.shape[0], 1, 2, 2), v)]


def test_discriminator_loss_known_values() -> None:
    real, fake = torch.ones(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)
    good, other = torch.zeros(2, 5), torch.ones(2, 5)
    assert float(discriminator_loss(ConstantDisc(good, 1.0, 0.0, 0.0), real, fake, good, other)) == 0.0
    # real 0.5, fake 0.5, mismatched real 1 → ½·¼ + ½·¼ + ½·(½·1) = 0.5
    d = ConstantDisc(good, 0.5, 0.5, 1.0)
    assert float(discriminator_loss(d, real, fake, good, other)) == pytest.approx(0.5)
    assert float(discriminator_loss(d, real, fake, good, None)) == pytest.approx(0.25)


def test_discriminator_terms_give_the_loss_and_the_scores_of_the_same_pass() -> None:
    real, fake = torch.ones(2, 3, 8, 8), torch.zeros(2, 3, 8, 8)
    good, other = torch.zeros(2, 5), torch.ones(2, 5)
    d = ConstantDisc(good, 0.5, 0.25, 1.0)
    loss, scores = discriminator_terms(d, real, fake, good, other)
    assert float(loss) == pytest.approx(float(discriminator_loss(d, real, fake, good, other)))
    assert scores == {"real": 0.5, "fake": 0.25, "mismatch": 1.0}
    # noise images (black here, so scored as fakes: 0.25) add weight · ½E[D²]
    loss, scores = discriminator_terms(d, real, fake, good, None, fake, noise_weight=2.0)
    assert scores == {"real": 0.5, "fake": 0.25, "noise": 0.25}
    assert float(loss) == pytest.approx(0.5 * 0.25 + 0.5 * 0.0625 + 2.0 * 0.5 * 0.0625)


@pytest.fixture(scope="module")
def encoder() -> VGGEncoder:
    torch.manual_seed(0)  # random weights: the objective's arithmetic does not depend on them
    return VGGEncoder().eval().requires_grad_(False)


def test_generator_objective_total_is_weighted_sum_of_its_terms(encoder: VGGEncoder) -> None:
    torch.manual_seed(1)
    out, style, content = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32)
    taps = (*STYLE_LAYERS, "relu4_1")
    s_feats = encoder(style, taps)
    c4 = encoder(content)["relu4_1"]
    target = FN.adain(c4, s_feats["relu4_1"].expand(2, -1, -1, -1))
    disc = MultiScaleDiscriminator().eval()
    svec = style_vector(s_feats).expand(2, -1)
    w = LossWeights(content=0.7, content_orig=0.3, style_gram=2.5, style_meanstd=4.0, tv=3.0, adv=0.2)
    with torch.no_grad():
        terms = GeneratorObjective(encoder, w)(out, target, s_feats, disc, svec, c4)
        o = encoder(out, taps)
        o_style, s_style = [o[k] for k in w.style_layers], [s_feats[k] for k in w.style_layers]
        expected = {
            "content": FN.content_loss(o["relu4_1"], target),
            "content_orig": FN.content_loss(o["relu4_1"], c4),
            "style_gram": FN.gram_style_loss(o_style, s_style),
            "style_meanstd": FN.mean_std_style_loss(o_style, s_style),
            "tv": FN.tv_loss(out),
            "adv": FN.lsgan_g_loss(disc(out, svec)),
        }
    assert set(terms) == {*expected, "total"}
    for k, v in expected.items():
        torch.testing.assert_close(terms[k], v, msg=k)
        assert float(v) > 0, k
    want = sum(getattr(w, k) * float(v) for k, v in expected.items())
    assert float(terms["total"]) == pytest.approx(want, rel=1e-5)

    # without a discriminator (or with λ_adv = 0) the adversarial term is absent, not zero-weighted
    with torch.no_grad():
        plain_obj = GeneratorObjective(encoder, LossWeights(adv=0.0, content_orig=0.0))
        plain = plain_obj(out, target, s_feats, disc, svec, c4)
    assert "adv" not in plain and "content_orig" not in plain
    d = LossWeights()
    want = sum(getattr(d, k) * float(plain[k]) for k in ("content", "style_gram", "style_meanstd", "tv"))
    assert float(plain["total"]) == pytest.approx(want, rel=1e-5)


def test_generator_objective_style_layers_are_configurable(encoder: VGGEncoder) -> None:
    torch.manual_seed(2)
    out, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    s_feats = encoder(style, (*STYLE_LAYERS, "relu4_1"))
    target = encoder(torch.rand(1, 3, 32, 32))["relu4_1"]
    w = LossWeights(style_layers=("relu1_1",))
    with torch.no_grad():
        terms = GeneratorObjective(encoder, w)(out, target, s_feats)
        o1 = encoder(out, ("relu1_1",))["relu1_1"]
    torch.testing.assert_close(terms["style_gram"], FN.gram_style_loss([o1], [s_feats["relu1_1"]]))
