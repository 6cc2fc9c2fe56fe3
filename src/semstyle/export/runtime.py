"""Running the exported graphs with onnxruntime (no PyTorch needed at inference time).

>>> from semstyle.export import OnnxStylizer                          # doctest: +SKIP
>>> ox = OnnxStylizer("model.onnx", "style.onnx")                     # doctest: +SKIP
>>> ox.stylize("photo.jpg", "painting.jpg", alpha=0.8).save("out.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semstyle.config import MIN_SIDE, check_alpha
from semstyle.errors import InputError, SemstyleError
from semstyle.export.graphs import INSTALL_HINT
from semstyle.io.images import ImageInput, load_image, resize_longest

# each graph's inputs, by which a file is recognised as one or the other
GRAPH_INPUTS: dict[str, frozenset[str]] = {"full": frozenset({"content", "style_mean", "style_std", "alpha"}),
                                           "style": frozenset({"style"})}


def _to_nchw(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0)


def _session(ort: Any, path: str | os.PathLike, opts: Any, part: str, what: str) -> Any:
    """An onnxruntime session of ``path``, which must be semstyle's ``part`` graph (InputError in one line if not)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} '{p}' not found" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        sess = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - onnxruntime's own types (InvalidProtobuf, Fail, …), with multi-line texts
        raise InputError(f"{what} '{p}' is not an ONNX graph onnxruntime can load; "
                         f"write one with: semstyle export --part {part}") from None
    names = frozenset(i.name for i in sess.get_inputs())
    if names != GRAPH_INPUTS[part]:
        other = next((k for k, v in GRAPH_INPUTS.items() if v == names), None)
        kind = f"semstyle's '{other}' graph" if other else f"not a semstyle graph (inputs {', '.join(sorted(names))})"
        raise InputError(f"{what} '{p}' is {kind}; it must be the '{part}' graph (semstyle export --part {part})")
    return sess


def _check_side(img: Image.Image, what: str) -> None:
    if min(img.size) < MIN_SIDE:  # the encoder downsamples by 8; its padding needs 2 cells a side
        raise InputError(f"{what} is {img.size[0]}x{img.size[1]} after resizing; it needs at least {MIN_SIDE} px "
                         "a side")


def _stats(mean: Any, std: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Style statistics as the full graph takes them: float32 (1 or ``n``, 512, 1, 1), one line if not."""
    m, s = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    if m.ndim != 4 or m.shape != s.shape or m.shape[1:] != (512, 1, 1) or m.shape[0] not in (1, n):
        raise InputError(f"style statistics must be two arrays of shape (1, 512, 1, 1) (or ({n}, 512, 1, 1), one "
                         f"per content), got {m.shape} and {s.shape}")
    return m, s


class OnnxStylizer:
    """AdaIN stylisation with the exported ``full`` graph (and ``style`` graph for style statistics)."""

    def __init__(
        self, model: str | os.PathLike, style_model: str | os.PathLike | None = None, threads: int = 0,
        size: int = 512, style_size: int = 512,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise SemstyleError(f"running ONNX graphs needs onnxruntime: {INSTALL_HINT}") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = _session(ort, model, opts, "full", "model")
        self.style_session = _session(ort, style_model, opts, "style", "style_model") if style_model else None
        self.size, self.style_size = size, style_size

    def style_stats(self, style: ImageInput) -> tuple[np.ndarray, np.ndarray]:
        """(1, 512, 1, 1) relu4_1 mean and std of ``style`` (resized to ``style_size``)."""
        if self.style_session is None:
            raise SemstyleError("style statistics need the 'style' graph: semstyle export --part style")
        img = resize_longest(load_image(style, what="style image"), self.style_size)
        _check_side(img, "style image")
        mean, std = self.style_session.run(None, {"style": _to_nchw(img)})
        return mean, std

    def run(self, content: np.ndarray, mean: np.ndarray, std: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """The raw graph: (N, 3, H, W) float32 in [0, 1] → (N, 3, H, W) float32 in [0, 1]."""
        x = np.asarray(content, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2:]) < MIN_SIDE:
            raise InputError(f"content must be an array of shape (N, 3, H, W) with H and W at least {MIN_SIDE}, "
                             f"got {x.shape}")
        try:
            check_alpha(alpha)
        except ValueError as e:
            raise InputError(str(e)) from None
        mean, std = _stats(mean, std, x.shape[0])
        feed = {"content": x, "style_mean": mean, "style_std": std, "alpha": np.array(alpha, dtype=np.float32)}
        return self.session.run(None, feed)[0]

    def stylize(
        self, content: ImageInput, style: ImageInput | tuple[np.ndarray, np.ndarray], alpha: float = 1.0
    ) -> Image.Image:
        """Stylise ``content`` with a style image or precomputed ``(mean, std)`` statistics."""
        mean, std = style if isinstance(style, tuple) else self.style_stats(style)
        img = resize_longest(load_image(content, what="content image"), self.size)
        _check_side(img, "content image")
        out = self.run(_to_nchw(img), mean, std, alpha)[0]
        return Image.fromarray((out.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8), mode="RGB")
