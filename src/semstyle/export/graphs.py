"""The networks as exportable graphs and the ONNX export itself.

Two graphs, both fp32 and with dynamic batch, height and width (any size: the graphs pad to a
multiple of 8 by reflection and crop back, like ``Stylizer``):

- **full** (``StylizeGraph``): ``content`` (N, 3, H, W) RGB in [0, 1], ``style_mean`` and
  ``style_std`` (N or 1, 512, 1, 1), ``alpha`` (a scalar) → ``image`` (N, 3, H, W) in [0, 1]:
  VGG19 to relu4_1, AdaIN with the given style statistics, the alpha mix, the decoder;
- **style** (``StyleStatsGraph``): ``style`` (N, 3, H, W) → ``style_mean``, ``style_std``, the
  relu4_1 channel statistics the full graph takes;
- **student** (``StudentGraph``): a style model's real-time student (``semstyle adapt --student``, named by
  ``decoder``): ``content`` and ``alpha`` → ``image``, the style's statistics built in — no VGG19, one small graph.

The export uses PyTorch's TorchScript-based exporter (``dynamo=False``), which needs only the
``onnx`` package; ``onnxruntime`` is used to check the graph against PyTorch.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from semstyle.assets import content_images, style_images
from semstyle.errors import InputError, SemstyleError
from semstyle.io.images import resize_longest, to_tensor
from semstyle.models import Decoder, VGGEncoder
from semstyle.models.fast import FastDecoder, FastEncoder
from semstyle.models.style_model import is_style_model, load_style_model
from semstyle.models.weights import load_into
from semstyle.version import __version__

log = logging.getLogger(__name__)

PARTS: tuple[str, ...] = ("full", "style", "student")
FORMATS: tuple[str, ...] = ("onnx",)
INSTALL_HINT = "pip install semstyle[export]"
OPSETS: tuple[int, int] = (11, 21)  # the ONNX opsets the export is tested at (both ends): reflection Pad needs 11
EPS = 1e-5  # as functional.mean_std
STUDENT_STYLE_SIDE = 512  # the style picture's side for a student's statistics (the pipeline's default style_size)


def _pad8(x: torch.Tensor) -> torch.Tensor:
    """Reflection-pad bottom/right to multiples of 8 (traced with symbolic H and W)."""
    h, w = x.shape[2], x.shape[3]
    return F.pad(x, [0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8], mode="reflect")


def _mean_std(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``functional.mean_std`` without the shape test the tracer cannot follow (unbiased variance)."""
    flat = feat.flatten(2)
    mean = flat.mean(dim=2, keepdim=True).unsqueeze(-1)
    std = (flat.var(dim=2, unbiased=True, keepdim=True) + EPS).sqrt().unsqueeze(-1)
    return mean, std


class StylizeGraph(nn.Module):
    """Encoder → AdaIN(style_mean, style_std) → alpha mix → decoder → crop and clamp."""

    def __init__(self, encoder: VGGEncoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(
        self, content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        h, w = content.shape[2], content.shape[3]
        feat = self.encoder.encode(_pad8(content))
        c_mean, c_std = _mean_std(feat)
        target = (feat - c_mean) / c_std * style_std + style_mean
        fused = alpha * target + (1 - alpha) * feat
        return self.decoder(fused)[:, :, :h, :w].clamp(0, 1)


class StyleStatsGraph(nn.Module):
    """Style image → relu4_1 channel mean and std, as ``Stylizer.encode_style`` computes them."""

    def __init__(self, encoder: VGGEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _mean_std(self.encoder.encode(_pad8(style)))


class StudentGraph(nn.Module):
    """A style model's student: fast encoder → AdaIN to the style's built-in statistics → alpha mix → fast decoder."""

    def __init__(self, encoder: FastEncoder, decoder: FastDecoder, style: Image.Image) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        with torch.inference_mode():  # as the pipeline computes them: the student's encoder, the style at 512 px
            mean, std = _mean_std(encoder.encode(_pad8(to_tensor(resize_longest(style, STUDENT_STYLE_SIDE)))))
        self.register_buffer("style_mean", mean.clone())  # (1, C, 1, 1)
        self.register_buffer("style_std", std.clone())

    def forward(self, content: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[2], content.shape[3]
        feat = self.encoder.encode(_pad8(content))
        c_mean, c_std = _mean_std(feat)
        s_mean, s_std = cast(torch.Tensor, self.style_mean), cast(torch.Tensor, self.style_std)
        target = (feat - c_mean) / c_std * s_std + s_mean
        return self.decoder(alpha * target + (1 - alpha) * feat)[:, :, :h, :w].clamp(0, 1)


def _student_graph(model: str) -> nn.Module:
    if not is_style_model(model):
        raise InputError(f"--part student needs --decoder MODEL.safetensors, a style model with a student "
                         f"(semstyle adapt --student); got '{model}'")
    sm = load_style_model(model)
    enc, dec = sm.student_networks()
    return StudentGraph(enc, dec, sm.image).eval().requires_grad_(False)


def build_graph(part: str, encoder: str = "pretrained", decoder: str = "pretrained") -> nn.Module:
    """The fp32 eval-mode module for ``part`` (``PARTS``) with the named weights (for "student", ``decoder`` names
    the style model)."""
    if part not in PARTS:
        raise InputError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if part == "student":
        return _student_graph(decoder)
    enc = VGGEncoder()
    load_into(enc, encoder, "encoder")
    if part == "style":
        return StyleStatsGraph(enc).eval().requires_grad_(False)
    dec = Decoder()
    load_into(dec, decoder, "decoder")
    return StylizeGraph(enc, dec).eval().requires_grad_(False)


def require_onnx() -> None:
    """Raise a one-line error naming the extra when the ``onnx`` package is missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SemstyleError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None


def check_opset(opset: int, flag: str = "opset") -> None:
    """Refuse an opset outside ``OPSETS`` (the exporter's own error is a multi-line traceback)."""
    if not OPSETS[0] <= opset <= OPSETS[1]:
        raise InputError(f"{flag} must be between {OPSETS[0]} and {OPSETS[1]}, got {opset}")


@dataclass
class ExportReport:
    """What ``export_onnx`` wrote and how it compares to PyTorch."""

    path: Path
    part: str
    size: int  # side of the example input used for tracing and the check
    bytes: int
    max_abs_diff: float | None = None  # max |onnxruntime − PyTorch| on the check input (None: not checked)
    onnx_seconds: float | None = None  # one onnxruntime call on the check input
    torch_seconds: float | None = None  # one PyTorch fp32 call on the same input


def example_inputs(part: str, size: int) -> dict[str, torch.Tensor]:
    """Inputs for tracing and checking: a bundled photo (or painting) at ``size`` and a painting's statistics."""
    def load(p: Path) -> torch.Tensor:
        return to_tensor(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BICUBIC))

    if part == "style":
        return {"style": load(style_images()[0])}
    if part == "student":
        return {"content": load(content_images()[0]), "alpha": torch.tensor(1.0)}
    style = load(style_images()[0])
    enc = VGGEncoder()
    load_into(enc, "pretrained", "encoder")
    with torch.inference_mode():
        mean, std = StyleStatsGraph(enc.eval())(style)
    return {"content": load(content_images()[0]), "style_mean": mean, "style_std": std,
            "alpha": torch.tensor(0.9)}


def _io_names(part: str) -> tuple[list[str], list[str], dict[str, dict[int, str]]]:
    hw = {0: "batch", 2: "height", 3: "width"}
    if part == "style":
        stats = {0: "batch"}
        return ["style"], ["style_mean", "style_std"], {"style": hw, "style_mean": stats, "style_std": stats}
    if part == "student":
        return ["content", "alpha"], ["image"], {"content": hw, "image": hw}
    dyn = {"content": hw, "image": hw, "style_mean": {0: "style_batch"}, "style_std": {0: "style_batch"}}
    return ["content", "style_mean", "style_std", "alpha"], ["image"], dyn


def export_onnx(
    path: str | os.PathLike,
    part: str = "full",
    size: int = 256,
    encoder: str = "pretrained",
    decoder: str = "pretrained",
    opset: int = 17,
    check: bool = True,
) -> ExportReport:
    """Write the ``part`` graph to ``path`` (atomically) and, with onnxruntime installed and
    ``check``, compare it with PyTorch on a ``size``×``size`` example."""
    require_onnx()
    if not 16 <= size <= 4096:
        raise InputError(f"size must be between 16 and 4096 px, got {size}")
    check_opset(opset)
    out = Path(path)
    graph = build_graph(part, encoder, decoder)
    inputs = example_inputs(part, size)
    names_in, names_out, dynamic = _io_names(part)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and constant-folding notes
            torch.onnx.export(
                graph, tuple(inputs.values()), tmp, dynamo=False, opset_version=opset,
                input_names=names_in, output_names=names_out, dynamic_axes=dynamic,
            )
        _add_metadata(tmp, part)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    report = ExportReport(out, part, size, out.stat().st_size)
    if check:
        try:
            report.max_abs_diff, report.onnx_seconds, report.torch_seconds = compare(out, graph, inputs)
        except ImportError:
            log.warning("onnxruntime is not installed: the export was not checked (%s)", INSTALL_HINT)
    return report


def _add_metadata(path: str, part: str) -> None:
    import onnx

    model = onnx.load(path)
    model.doc_string = f"semstyle {__version__} '{part}' graph: " + {
        "full": "content RGB [0,1], style_mean/std (relu4_1), alpha -> image RGB [0,1]",
        "style": "style RGB [0,1] -> relu4_1 channel mean/std",
        "student": "content RGB [0,1], alpha -> image RGB [0,1] (one style's real-time student)",
    }[part]
    entry = model.metadata_props.add()
    entry.key, entry.value = "semstyle_part", part
    onnx.save(model, path)


def compare(path: Path, graph: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[float, float, float]:
    """(max |onnxruntime − PyTorch| over all outputs, onnxruntime s, PyTorch s) for one warm call each."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {k: v.numpy() for k, v in inputs.items()}
    sess.run(None, feed)  # warm-up: both timings are of a second call
    t0 = time.perf_counter()
    got = sess.run(None, feed)
    t_onnx = time.perf_counter() - t0
    with torch.inference_mode():
        graph(*inputs.values())
        t0 = time.perf_counter()
        ref = graph(*inputs.values())
    t_torch = time.perf_counter() - t0
    refs = ref if isinstance(ref, tuple) else (ref,)
    diff = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, refs, strict=True))
    return diff, t_onnx, t_torch
