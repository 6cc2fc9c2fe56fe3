"""The benchmarks' simulated painters and the issue's naive propagation (benchmarks/scribble_sim.py): the yardsticks
issue 31's figures are measured with."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scribble_sim import MIN_SHARE, PAINTERS, naive_propagation, simulate  # noqa: E402

from semstyle.io.labels import pack_rgb  # noqa: E402
from semstyle.segmentation.scribbles import read_scribbles  # noqa: E402

RED, BLUE, GREEN = (int(pack_rgb(np.array(c, dtype=np.uint8))) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0)))


def scene() -> np.ndarray:
    """(96, 128) packed labels: a red left half, a blue right half, a green sliver (in the red) under MIN_SHARE."""
    gt = np.full((96, 128), RED, dtype=np.int64)
    gt[:, 64:] = BLUE
    gt[:2, :50] = GREEN
    assert (gt == GREEN).mean() < MIN_SHARE
    return gt


@pytest.mark.parametrize("name", list(PAINTERS))
def test_every_painter_paints_each_region_inside_it_and_skips_slivers(name: str) -> None:
    gt = scene()
    strokes = simulate(gt, 3, seed=7, painter=PAINTERS[name])
    painted = strokes[..., 3] == 255
    colours = np.where(painted, pack_rgb(strokes[..., :3]), -1)
    assert set(np.unique(colours[painted])) == {RED, BLUE}  # the sliver is not painted
    assert (colours[painted] == gt[painted]).all()  # every stroke stays in its own region
    assert np.array_equal(strokes, simulate(gt, 3, seed=7, painter=PAINTERS[name]))  # seeded
    assert not np.array_equal(strokes, simulate(gt, 3, seed=8, painter=PAINTERS[name]))


def test_longer_and_wider_painters_paint_more() -> None:
    gt = scene()
    share = {k: np.mean([(simulate(gt, 1, s, p)[..., 3] > 0).mean() for s in range(8)]) for k, p in PAINTERS.items()}
    assert share["long"] > share["quick"] and share["wide"] > share["quick"]


def test_naive_propagation_takes_the_nearest_painted_colour() -> None:
    """Two flat colours, one small stroke in each: every pixel goes to the stroke of its own colour; a stroke one
    pixel wide (under the quarter resolution) still counts."""
    gt = scene()
    gt[gt == GREEN] = RED
    img = Image.fromarray(np.where((gt == RED)[..., None], [200, 40, 30], [30, 60, 210]).astype(np.uint8))
    seeds = np.full(gt.shape, -1, dtype=np.int64)
    seeds[40:44, 10:30] = RED
    seeds[50, 100:110] = BLUE  # one pixel high
    labels = naive_propagation(img, seeds)
    assert labels.shape == gt.shape
    assert (labels == gt).mean() == 1.0
    drawn = simulate(gt, 1, seed=3)
    assert set(np.unique(naive_propagation(img, read_scribbles(drawn, img.size)))) == {RED, BLUE}
