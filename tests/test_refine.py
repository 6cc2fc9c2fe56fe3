"""Discriminator-guided refinement through the API and the CLI. The shipped discriminator is not
needed: a randomly initialised one (fixed seed) saved to a temporary file stands in for it."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import semstyle.pipelines.stylize as stylize_mod
from semstyle import Stylizer
from semstyle import functional as FN
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.losses import GeneratorObjective, LossWeights
from semstyle.models.discriminator import MultiScaleDiscriminator, style_vector
from semstyle.models.vgg import STYLE_LAYERS
from semstyle.pipelines.refine import RefineConfig

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one thread: see conftest

SIZE = 64


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, images) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("refine")
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator()
    save_file({k: v.contiguous() for k, v in disc.state_dict().items()}, str(root / "disc.safetensors"))
    return {"disc": root / "disc.safetensors", "content": images.content_wide, "style": images.style_a, "root": root}


@pytest.fixture(scope="module")
def st(files: dict[str, Path]) -> Stylizer:
    return Stylizer(
        NetworkConfig(device="cpu", precision="fp32", discriminator=str(files["disc"])),
        defaults=StylizeOptions(size=SIZE, style_size=SIZE),
    )


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int16)


def _objective_of(st: Stylizer, image: Image.Image, content: Path, style: Path) -> float:
    """The generator objective that refinement minimises, recomputed from scratch on a returned
    (clamped, 8-bit) image: content loss to the AdaIN target, style terms and the adversarial term of
    ``st``'s discriminator under the style's condition."""
    c_img = resize_longest(load_image(content), SIZE)
    x, (h, w) = FN.pad_to_multiple(to_tensor(c_img))
    entry = st.encode_style(style)
    with torch.no_grad():
        anchor = FN.adain_from_stats(st.encode(x)["relu4_1"], entry.mean, entry.std)[..., : -(-h // 8), : -(-w // 8)]
        s_feats = st.encoder(FN.pad_to_multiple(to_tensor(entry.image))[0], STYLE_LAYERS)
        objective = GeneratorObjective(st.encoder, LossWeights())
        out = to_tensor(image)
        assert tuple(out.shape[-2:]) == (h, w)
        return float(objective(out, anchor, s_feats, st.discriminator(), style_vector(s_feats))["total"])


def test_refinement_lowers_the_objective_of_the_returned_image(st: Stylizer, files: dict[str, Path]) -> None:
    torch.manual_seed(0)
    res = st.stylize(files["content"], files["style"], refine=2, refine_target=10.0)  # unreachable target
    plain = st.stylize(files["content"], files["style"])
    rep = res.refine
    assert rep is not None
    assert len(rep.scores) == len(rep.objectives) == 3  # round 0 (the start) + 2 rounds
    assert all(np.isfinite(rep.scores)) and all(np.isfinite(rep.objectives))
    assert rep.best_round >= 1  # on this fixed pair and seed at least one round improves on the start
    assert res.image.size == plain.image.size
    # scored independently on what the user gets (clamped, 8-bit): better than the unrefined image
    refined, start = (_objective_of(st, r.image, files["content"], files["style"]) for r in (res, plain))
    assert refined < start
    assert start == pytest.approx(rep.objectives[0], rel=0.02)  # the report's round 0 is the plain result
    assert refined == pytest.approx(rep.objectives[rep.best_round], rel=0.02)
    assert "refine" in res.timings


def test_refinement_keeps_the_start_when_every_round_is_worse(
    st: Stylizer, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # an absurd step size wrecks the fusion: the rounds are worse, so the start must come back unchanged
    monkeypatch.setattr(stylize_mod, "RefineConfig", functools.partial(RefineConfig, lr=50.0, steps_per_round=1))
    res = st.stylize(files["content"], files["style"], refine=1, refine_target=10.0)
    assert res.refine is not None and len(res.refine.objectives) == 2
    assert res.refine.objectives[1] > res.refine.objectives[0]
    assert res.refine.best_round == 0
    plain = st.stylize(files["content"], files["style"])
    assert np.array_equal(_pixels(res.image), _pixels(plain.image))


def test_reached_target_stops_at_round_zero(st: Stylizer, files: dict[str, Path]) -> None:
    res = st.stylize(files["content"], files["style"], refine=3, refine_target=-100.0)
    assert res.refine is not None
    assert len(res.refine.scores) == 1 and res.refine.best_round == 0  # judged once, no round run
    plain = st.stylize(files["content"], files["style"])
    assert plain.refine is None
    assert np.array_equal(_pixels(res.image), _pixels(plain.image))


def test_cli_refine_prints_the_score_per_round(files: dict[str, Path]) -> None:
    out = files["root"] / "out.png"
    cmd = [
        sys.executable,
        "-m",
        "semstyle",
        "stylize",
        str(files["content"]),
        str(files["style"]),
        "-o",
        str(out),
        "--refine",
        "1",
        "--refine-target",
        "10",
        "--discriminator",
        str(files["disc"]),
        "-v",
        "--size",
        str(SIZE),
        "--style-size",
        str(SIZE),
        "--device",
        "cpu",
        "--precision",
        "fp32",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    rounds = [ln for ln in proc.stderr.splitlines() if "refine round" in ln]
    assert len(rounds) == 2 and "round 0: score" in rounds[0] and "round 1: score" in rounds[1], proc.stderr
    assert max(Image.open(out).size) == SIZE  # the 200x90 content resized to --size


def test_refinement_with_the_shipped_discriminator(files: dict[str, Path]) -> None:
    # the weights users get (not a random stand-in): the judged rounds run, and the image returned scores
    # better on the objective, recomputed from the 8-bit result, than the unrefined one
    shipped = Stylizer(
        NetworkConfig(device="cpu", precision="fp32", decoder="finetuned"),
        defaults=StylizeOptions(size=SIZE, style_size=SIZE),
    )
    assert shipped.config.discriminator == "finetuned"
    res = shipped.stylize(files["content"], files["style"], refine=2, refine_target=10.0)
    plain = shipped.stylize(files["content"], files["style"])
    assert res.refine is not None and len(res.refine.scores) == 3 and all(np.isfinite(res.refine.scores))
    assert res.refine.best_round >= 1  # measured: objective 195 → 134 → 120 over the two rounds
    refined, start = (_objective_of(shipped, r.image, files["content"], files["style"]) for r in (res, plain))
    assert refined < start
