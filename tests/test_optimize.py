"""The Gatys-style optimisation baseline: guided Gram maths, the loss falls, the guided variant, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle import functional as FN
from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.pipelines.optimize import OptimizeConfig, guided_gram, masks_at, optimize

SIDE = 48


def test_guided_gram_with_a_full_mask_is_the_gram_and_with_half_is_the_half_gram() -> None:
    f = torch.rand(1, 5, 6, 8, generator=torch.Generator().manual_seed(0))
    full = torch.ones(1, 1, 6, 8)
    assert torch.allclose(guided_gram(f, full)[0], FN.gram(f)[0], atol=1e-6)
    left = torch.zeros(1, 1, 6, 8)
    left[..., :4] = 1
    assert torch.allclose(guided_gram(f, left)[0], FN.gram(f[..., :4])[0], atol=1e-6)  # normalised by the area
    assert torch.count_nonzero(guided_gram(f, torch.zeros(1, 1, 6, 8))) == 0  # an empty mask gives zeros


def test_masks_at_downsamples_by_area() -> None:
    lab = np.zeros((8, 8), dtype=np.int64)
    lab[:, 4:] = 1
    m = masks_at(lab, [0, 1], (2, 2))
    assert m.shape == (1, 2, 2, 2)
    assert torch.allclose(m.sum(1), torch.ones(1, 2, 2))
    assert torch.equal(m[0, 0], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_falls(images, stylizer, optimizer: str) -> None:
    cfg = OptimizeConfig(size=SIDE, style_size=SIDE, steps=8, optimizer=optimizer, lr=0.05)
    res = optimize(images.content, images.style_a, cfg, networks=stylizer.networks)
    # one entry per evaluation (L-BFGS's line search may add a few), then the returned image's loss
    assert 9 <= len(res.history) <= 8 * 3 // 2 + 2 and set(res.parts) == {"content", "style", "tv"}
    assert all(len(v) == len(res.history) for v in res.parts.values())
    assert res.history[-1] < 0.8 * res.history[0]
    assert res.parts["style"][-1] < res.parts["style"][0]
    assert res.image.size == (SIDE, SIDE) and res.guided_labels == []


def test_init_from_adain_starts_closer_to_the_style(images, stylizer) -> None:
    cfg = OptimizeConfig(size=SIDE, style_size=SIDE, steps=1)
    from_content = optimize(images.content, images.style_a, cfg.updated(init="content"), networks=stylizer.networks)
    from_adain = optimize(images.content, images.style_a, cfg.updated(init="adain"), networks=stylizer.networks)
    assert from_adain.parts["style"][0] < from_content.parts["style"][0]
    assert from_content.parts["content"][0] == pytest.approx(0.0, abs=1e-6)


def _halves(h: int, w: int, top: int, bottom: int) -> np.ndarray:
    lab = np.full((h, w), bottom, dtype=np.uint8)
    lab[: h // 2] = top
    return lab


def test_guided_variant_matches_regions_and_the_loss_falls(images, stylizer) -> None:
    c_lab = Image.fromarray(_halves(128, 128, 1, 2))
    s_lab = Image.fromarray(_halves(128, 128, 2, 1))
    res = optimize(images.content, images.style_a, OptimizeConfig(size=SIDE, style_size=SIDE, steps=4),
                   networks=stylizer.networks, content_labels=c_lab, style_labels=s_lab)
    assert res.guided_labels == [1, 2]
    assert res.history[-1] < res.history[0]


def test_guided_variant_input_errors(images, stylizer) -> None:
    lab = Image.fromarray(_halves(128, 128, 1, 2))
    with pytest.raises(InputError, match="both"):
        optimize(images.content, images.style_a, OptimizeConfig(size=SIDE, steps=1), networks=stylizer.networks,
                 content_labels=lab)
    other = Image.fromarray(_halves(128, 128, 5, 6))
    with pytest.raises(InputError, match="share no label"):
        optimize(images.content, images.style_a, OptimizeConfig(size=SIDE, style_size=SIDE, steps=1),
                 networks=stylizer.networks, content_labels=lab, style_labels=other)
    with pytest.raises(InputError, match="steps"):
        OptimizeConfig(steps=0)
    with pytest.raises(InputError, match="optimizer"):
        OptimizeConfig(optimizer="sgd")  # type: ignore[arg-type]


def test_cli_writes_the_output_and_reports_errors_in_one_line(images, tmp_path, capsys) -> None:
    out = tmp_path / "opt.png"
    assert main(["optimize", str(images.content), str(images.style_b), "-o", str(out), "--size", "32",
                 "--style-size", "32", "--steps", "2", "--no-progress", "--device", "cpu"]) == 0
    assert Image.open(out).size == (32, 32)
    assert "2 lbfgs steps" in capsys.readouterr().out
    assert main(["optimize", str(images.content), str(images.style_b), "-o", str(out), "--steps", "2"]) == 2
    assert "already exists" in capsys.readouterr().err
    code = main(["optimize", str(images.content), str(images.style_b), "-o", str(tmp_path / "b.png"),
                 "--content-labels", str(images.content)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("semstyle: error:") and "--style-labels" in err and len(err.splitlines()) == 1
