"""The scribbles' connection step (issue 31) on small grids: the flood fill, the numbering of parts, and which
cut-off parts move (islands) and which keep their region."""

from __future__ import annotations

import torch

from semstyle.segmentation.scribbles import GrowOptions, components, connect, reach


def test_reach_is_a_flood_fill_through_the_mask() -> None:

    mask = torch.zeros(1, 9, 9, dtype=torch.bool)
    mask[0, 1:4, 1:4] = mask[0, 5:8, 5:8] = True  # two blobs, apart
    mask[0, 4, 4] = True  # a diagonal cell joins them (8-connected)
    src = torch.zeros_like(mask)
    src[0, 2, 2] = True
    assert torch.equal(reach(mask, src), mask)
    mask[0, 4, 4] = False
    want = torch.zeros_like(mask)
    want[0, 1:4, 1:4] = True
    assert torch.equal(reach(mask, src), want)
    assert not reach(mask, ~mask).any()  # a source outside the mask fills nothing


def test_connect_gives_a_cut_off_part_to_its_next_region() -> None:

    probs = torch.full((2, 4, 8), 0.3)
    probs[0] = 0.7  # region 0 is the most likely everywhere but column 3, a wall between two halves
    probs[0, :, 3], probs[1, :, 3] = 0.2, 0.8
    painted = torch.zeros(2, 4, 8)
    painted[0, 1, 0] = painted[1, 1, 3] = 1.0  # region 0 painted in the left half only
    out = connect(probs, painted)
    assert torch.allclose(out[:, :, :4], probs[:, :, :4])  # reached cells (and the wall) keep their memberships
    assert torch.equal(out[0, :, 4:], torch.zeros(4, 4))  # the right half is cut off from region 0's stroke
    assert torch.equal(out[1, :, 4:], torch.ones(4, 4))
    assert torch.allclose(out.sum(0), torch.ones(4, 8))


def test_connect_keeps_a_cut_off_part_between_several_regions() -> None:
    """A background split by a head: the wall between the halves is hair above and shirt below, so the unpainted
    half is no island of either and stays background; an island of one region (above) would not."""

    probs = torch.full((3, 8, 9), 0.1)
    probs[0] = 0.8  # the background, most likely everywhere but the wall (column 4)
    probs[:, :4, 4] = torch.tensor([0.1, 0.8, 0.1])[:, None]  # hair, the wall's upper half
    probs[:, 4:, 4] = torch.tensor([0.1, 0.1, 0.8])[:, None]  # shirt, its lower half
    painted = torch.zeros(3, 8, 9)
    painted[0, 3, 1] = painted[1, 0, 4] = painted[2, 7, 4] = 1.0  # the background painted on the left only
    out = connect(probs, painted)
    assert torch.equal(out, probs / probs.sum(0, keepdim=True))  # the right half keeps its region
    assert torch.equal(out.argmax(0)[:, 5:], torch.zeros(8, 4, dtype=torch.long))
    opt = GrowOptions(enclosed=0.5)  # half of its surroundings one region: an island of it under this rule
    assert (connect(probs, painted, opt).argmax(0)[:, 5:] != 0).all()
    tiny = GrowOptions(island=0.5)  # 32 of 72 cells is under half the grid: a small part always moves
    assert (connect(probs, painted, tiny).argmax(0)[:, 5:] != 0).all()


def test_components_number_each_8_connected_part() -> None:

    mask = torch.zeros(2, 6, 6, dtype=torch.bool)
    mask[0, :2, :2] = mask[0, 4:, 4:] = True  # two parts, apart
    mask[1, 1:5, 2] = mask[1, 2, 3] = mask[1, 3, 4] = True  # one part, joined diagonally
    parts = components(mask)
    assert torch.equal(parts > 0, mask)
    assert len(torch.unique(parts[0][mask[0]])) == 2
    assert len(torch.unique(parts[1][mask[1]])) == 1
    assert parts[0, 0, 0] == parts[0, 1, 1] != parts[0, 5, 5]
