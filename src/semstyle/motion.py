"""Optical flow between frames, warping along it and the reliability of each pixel's flow.

Flows are (H, W, 2) float32 arrays of (dx, dy) in pixels. ``flow(a, b)`` maps frame ``a``'s pixels
to where they are in ``b``: a[y, x] ≈ b[y + dy, x + dx]. ``warp(img, flow)`` samples ``img`` at
x + flow(x), so ``warp(b, flow(a, b))`` looks like ``a``. A pixel's flow is reliable when the
forward–backward check closes (Sundaram et al. 2010): |f(x) + g(x + f(x))|² ≤ 0.01·(|f|² + |g|²) + 0.5,
where g is the flow the other way; occluded and disoccluded pixels fail it.

Two algorithms through OpenCV (``opencv-python-headless``): DIS (the video pipeline's, fast) and
Farneback (the benchmark's, so that the warping error is not measured with the method's own flow).
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("dis", "farneback")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:  # pragma: no cover - installed by the set-up
        raise RuntimeError("video needs OpenCV: pip install 'semstyle[video]'") from None
    return cv2


def gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) uint8 luminance (BT.601)."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    return _cv2().cvtColor(img, _cv2().COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """(H, W, 2) flow from uint8 grey frame ``a`` to ``b`` (see the module docstring)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"frames must be grey images of one size, got {a.shape} and {b.shape}")
    cv2 = _cv2()
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(a, b, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 21, 5, 7, 1.5, 0)
    raise ValueError(f"flow method must be one of {', '.join(METHODS)}, got {method!r}")


def warp(img: np.ndarray, f: np.ndarray, nearest: bool = False, cubic: bool = False) -> np.ndarray:
    """``img`` (H, W[, C]) sampled at x + f(x), bilinear (``nearest`` for labels, ``cubic`` to keep texture
    sharp), borders replicated."""
    cv2 = _cv2()
    h, w = f.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mode = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.remap(img, xx + f[..., 0], yy + f[..., 1], mode, borderMode=cv2.BORDER_REPLICATE)


def reliable(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) bool: where ``forward`` (a → b) is confirmed by ``backward`` (b → a)."""
    back_at = warp(backward, forward)  # g(x + f(x))
    err = ((forward + back_at) ** 2).sum(-1)
    mag = (forward**2).sum(-1) + (back_at**2).sum(-1)
    return err <= 0.01 * mag + 0.5


def backward_flows(frames: list[np.ndarray], method: str = "farneback") -> list[tuple[np.ndarray, np.ndarray]]:
    """For each frame t ≥ 1 of uint8 RGB ``frames``: the flow t → t−1 (where each pixel of frame t was) and where it
    is reliable (the forward–backward check); computed once per clip, shared by every method scored on it."""
    grey = [gray(f) for f in frames]
    out = []
    for t in range(1, len(grey)):
        back, fwd = flow(grey[t], grey[t - 1], method), flow(grey[t - 1], grey[t], method)
        out.append((back, reliable(back, fwd)))
    return out


def chained(flows: list[tuple[np.ndarray, np.ndarray]], t: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The flow from frame ``t`` to frame ``t − k`` through the ``k`` steps between (``backward_flows``' list,
    entry t−1 is t → t−1), and where every step of the chain is reliable: a pixel lost on the way is dropped."""
    if not 1 <= k <= t <= len(flows):
        raise ValueError(f"need 1 <= k <= t <= {len(flows)}, got t={t}, k={k}")
    f, ok = flows[t - 1][0].copy(), flows[t - 1][1].copy()
    for j in range(t - 1, t - k, -1):  # extend the chain from frame j to j − 1
        back, rel = flows[j - 1]
        ok &= warp(rel.astype(np.float32), f) > 0.999
        f = f + warp(back, f)
    h, w = ok.shape
    xx, yy = np.meshgrid(np.arange(w), np.arange(h))
    inside = (xx + f[..., 0] >= 0) & (xx + f[..., 0] <= w - 1) & (yy + f[..., 1] >= 0) & (yy + f[..., 1] <= h - 1)
    return f, ok & inside


def carried_error(out_then: np.ndarray, out_now: np.ndarray, f: np.ndarray, ok: np.ndarray) -> float:
    """Mean over ``ok`` pixels of ‖O_now − warp(O_then, f)‖² (uint8 RGB scaled to [0, 1]); NaN when none is ok."""
    carried = warp(out_then.astype(np.float32) / 255.0, f)
    diff = ((out_now.astype(np.float32) / 255.0 - carried) ** 2).sum(-1)
    return float(diff[ok].mean()) if ok.any() else float("nan")


def warping_error(out_prev: np.ndarray, out: np.ndarray, in_prev: np.ndarray, inp: np.ndarray,
                  method: str = "farneback") -> float:
    """Mean over reliable pixels of ‖O_t − warp(O_{t−1})‖² (RGB in [0, 1]), with the flow of the *input*
    frames (``method``; the benchmark uses Farneback so that it does not flatter the DIS-based method)."""
    ((back, ok),) = backward_flows([in_prev, inp], method)
    return carried_error(out_prev, out, back, ok)


__all__ = ["METHODS", "backward_flows", "carried_error", "chained", "flow", "gray", "reliable", "warp", "warping_error"]
