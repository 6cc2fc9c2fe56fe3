"""The video carries on their own (issue 16, issue 30): the texture carry, the decoder's named stages, and the
decoder-activation carry."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import spy_on_video_carries


def test_texture_carry_keeps_the_current_texture_contrast() -> None:
    import cv2

    from semstyle.pipelines.video import carry_texture

    rng = np.random.default_rng(3)
    cur = np.clip(rng.normal(128, 40, (64, 80, 3)), 0, 255).astype(np.uint8)
    prev = np.clip(rng.normal(128, 40, (64, 80, 3)), 0, 255).astype(np.uint8)  # an unrelated texture

    def texture_std(im: np.ndarray) -> np.ndarray:
        f = im.astype(np.float32)
        return (f - cv2.GaussianBlur(f, (0, 0), 2.0)).reshape(-1, 3).std(0)

    still, ok = np.zeros((64, 80, 2), np.float32), np.ones((64, 80), bool)
    out = carry_texture(cur, prev, still, ok, 0.5)
    assert np.allclose(texture_std(out), texture_std(cur), rtol=0.05)  # a plain 50/50 mix would be ~0.71×
    assert np.abs(out.astype(int) - cur.astype(int)).mean() > 5  # and the previous texture did come in
    assert np.array_equal(carry_texture(cur, prev, still, ~ok, 0.5), cur)  # nothing carried where unreliable


def test_the_decoder_splits_at_named_stages() -> None:
    import torch

    from semstyle.models.decoder import STAGES, Decoder

    dec = Decoder().eval()
    x = torch.rand(1, 512, 3, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = dec(x)
        for name, stride in (("s8_1", 8), ("s4_2", 4), ("up2", 2), ("rgb", 1)):
            mid = dec.run(x, stop=name)
            assert mid.shape[-1] == 4 * 8 // stride
            torch.testing.assert_close(dec.run(mid, start=name), whole, rtol=0, atol=0)  # the same layers, in order
    assert list(STAGES.values()) == sorted(STAGES.values()) and STAGES["rgb"] == len(dec.layers) - 1
    with pytest.raises(ValueError, match="decoder stage must be one of s8_1, up4"):
        dec.run(x, stop="layer9")


def test_hidden_carry_mixes_the_warped_activation_and_keeps_its_contrast() -> None:
    """The decoder-activation carry on its own: where the flow is reliable the previous activation comes in
    with weight w, rescaled per channel to the current activation's contrast; elsewhere nothing."""
    import torch

    from semstyle.pipelines.transfer import Tile
    from semstyle.pipelines.video import FrameCarry

    g = torch.Generator().manual_seed(0)
    cur, prev = torch.randn(1, 3, 16, 20, generator=g), torch.randn(1, 3, 16, 20, generator=g)  # unrelated
    whole, size = Tile(0, 64, 0, 80, 0, 64, 0, 80), (64, 80)  # a 64×80 frame: the activation at stride 4
    still = np.zeros((64, 80, 2), np.float32)
    for ok, carried in ((np.ones((64, 80), bool), True), (np.zeros((64, 80), bool), False)):
        carry = FrameCarry(0.5, 0.5)
        carry.hidden = prev.clone()
        carry.next_frame(still, ok)
        carry.collect(cur, whole, size)
        out = carry.activation(whole)
        if carried:
            torch.testing.assert_close(out.std((2, 3)), cur.std((2, 3)), rtol=1e-4, atol=0)  # 50/50 would be ~0.71×
            corr = float(torch.corrcoef(torch.stack([out.flatten(), prev.flatten()]))[0, 1])
            assert corr > 0.5  # the previous activation did come in
        else:
            assert torch.equal(out, cur)  # nothing carried where the flow is unreliable
        carry.next_frame(None, None)
        assert carry.hidden is not None and torch.equal(carry.hidden, out)  # what the next frame gets


def test_the_default_carries_follow_the_frame_size() -> None:
    """``config.VIDEO_CARRIES``: each frame size takes the first row that reaches it, a larger frame the last row; the
    same carries freeze more texture the larger the frame, so no row carries more than the one before it."""
    from semstyle.config import VIDEO_CARRIES
    from semstyle.pipelines.video import default_carries

    sides = [row[0] for row in VIDEO_CARRIES]
    assert sides == sorted(sides) and len(set(sides)) == len(sides)
    for before, row in zip(VIDEO_CARRIES, VIDEO_CARRIES[1:]):
        assert row[1] <= before[1] and row[2] <= before[2] and row[1:] != before[1:]
    for i, (side, consistency, hidden) in enumerate(VIDEO_CARRIES):
        assert default_carries(side) == (consistency, hidden)
        assert default_carries(side + 1) == VIDEO_CARRIES[min(i + 1, len(VIDEO_CARRIES) - 1)][1:]
    assert default_carries(16) == VIDEO_CARRIES[0][1:]
    assert default_carries(4096) == VIDEO_CARRIES[-1][1:]


@pytest.mark.parametrize(("size", "given", "want_row", "want"), [
    (64, {}, 0, None),  # small frames: the first row's carries
    (0, {}, -1, None),  # size 0 keeps the frames' own 600 px: the last row's
    (0, {"hidden": 0.3}, -1, ("row", 0.3)),  # a carry given wins, the other still follows the size
    (64, {"consistency": 0.6}, 0, (0.6, "row")),
])
def test_a_clip_takes_the_carries_of_its_frame_size(stylizer, monkeypatch: pytest.MonkeyPatch, size: int,
                                                    given: dict[str, float], want_row: int,
                                                    want: tuple[object, object] | None) -> None:
    from PIL import Image

    import semstyle.pipelines.video as V
    from semstyle.config import VIDEO_CARRIES

    seen = spy_on_video_carries(monkeypatch)  # stops each clip before its frame is stylised
    frame = Image.new("RGB", (600, 300), (90, 120, 150))
    style = Image.new("RGB", (64, 64), (200, 60, 30))
    with pytest.raises(KeyboardInterrupt):
        next(V.stylize_frames(stylizer, [frame], style, options=stylizer.defaults.updated(size=size), **given))
    row = VIDEO_CARRIES[want_row][1:]
    expected = row if want is None else tuple(row[i] if w == "row" else w for i, w in enumerate(want))
    assert seen == [expected]
