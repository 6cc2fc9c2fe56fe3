"""Running the exported graphs with onnxruntime (no PyTorch needed at inference time).

>>> from semstyle.export import OnnxStylizer                          # doctest: +SKIP
>>> ox = OnnxStylizer("model.onnx", "style.onnx")                     # doctest: +SKIP
>>> ox.stylize("photo.jpg", "painting.jpg", alpha=0.8).save("out.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from semstyle.errors import SemstyleError
from semstyle.export.graphs import INSTALL_HINT
from semstyle.io.images import ImageInput, load_image, resize_longest


def _to_nchw(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0)


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
        providers = ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(model), opts, providers=providers)
        self.style_session = ort.InferenceSession(str(style_model), opts, providers=providers) if style_model else None
        self.size, self.style_size = size, style_size

    def style_stats(self, style: ImageInput) -> tuple[np.ndarray, np.ndarray]:
        """(1, 512, 1, 1) relu4_1 mean and std of ``style`` (resized to ``style_size``)."""
        if self.style_session is None:
            raise SemstyleError("style statistics need the 'style' graph: semstyle export --part style")
        img = resize_longest(load_image(style, what="style image"), self.style_size)
        mean, std = self.style_session.run(None, {"style": _to_nchw(img)})
        return mean, std

    def run(self, content: np.ndarray, mean: np.ndarray, std: np.ndarray, alpha: float = 1.0) -> np.ndarray:
        """The raw graph: (N, 3, H, W) float32 in [0, 1] → (N, 3, H, W) float32 in [0, 1]."""
        feed = {"content": content, "style_mean": mean, "style_std": std, "alpha": np.array(alpha, dtype=np.float32)}
        return self.session.run(None, feed)[0]

    def stylize(
        self, content: ImageInput, style: ImageInput | tuple[np.ndarray, np.ndarray], alpha: float = 1.0
    ) -> Image.Image:
        """Stylise ``content`` with a style image or precomputed ``(mean, std)`` statistics."""
        mean, std = style if isinstance(style, tuple) else self.style_stats(style)
        img = resize_longest(load_image(content, what="content image"), self.size)
        out = self.run(_to_nchw(img), mean, std, alpha)[0]
        return Image.fromarray((out.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8), mode="RGB")
