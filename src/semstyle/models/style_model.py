"""A style model: one safetensors file that *is* a style — a decoder adapted to it, the style picture itself and
what made it (``semstyle adapt``).

Layout: the decoder's tensors under their own names (``layers.N.weight``, so ``--decoder MODEL`` loads it as any
decoder file), the style picture as ``style.image`` (uint8, H×W×3, longest side at most ``MAX_SIDE``), optionally
the real-time student (``adapt --student``: a fast-model encoder and decoder made for this style) under
``student.encoder.*`` and ``student.decoder.*``, and string metadata: ``format`` (``FORMAT``), ``version``, the
original style file's ``style_sha256``, the ``recipe`` (the training config as JSON), ``steps``, ``seconds``, the
model's default ``alpha`` and the ``scores`` measured at the end (JSON).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from semstyle.config import MIN_SIDE
from semstyle.errors import InputError
from semstyle.models.decoder import Decoder
from semstyle.models.fast import FastConfig, FastDecoder, FastEncoder

FORMAT = "semstyle-style-model"
VERSION = 1
IMAGE_KEY = "style.image"
STUDENT = "student."  # prefix of the student's tensors: student.encoder.*, student.decoder.*
MAX_SIDE = 1024  # the embedded style picture's longest side (the style itself up to that size, else resized)


@dataclass
class StyleModel:
    """A style model in memory."""

    decoder: dict[str, torch.Tensor]  # the adapted decoder's state dict (``Decoder`` keys)
    image: Image.Image  # the style picture (RGB)
    meta: dict[str, Any] = field(default_factory=dict)  # style_sha256, recipe, steps, seconds, alpha, scores
    student: dict[str, torch.Tensor] | None = None  # the student's tensors (``encoder.*``, ``decoder.*``), or None

    @property
    def alpha(self) -> float:
        """The model's default style strength (chosen at the end of ``semstyle adapt``; 1 when it says nothing)."""
        return float(self.meta.get("alpha", 1.0))

    def student_networks(self) -> tuple[FastEncoder, FastDecoder]:
        """The student as fast-model networks (eval mode); InputError when the model has none."""
        if self.student is None:
            raise InputError("this style model has no student; make one with semstyle adapt --student")
        enc = {k.removeprefix("encoder."): v for k, v in self.student.items() if k.startswith("encoder.")}
        dec = {k.removeprefix("decoder."): v for k, v in self.student.items() if k.startswith("decoder.")}
        shape = FastConfig.from_state_dict(enc)
        encoder, decoder = FastEncoder(shape), FastDecoder(shape)
        encoder.load_state_dict(enc)
        decoder.load_state_dict(dec)
        return encoder.eval(), decoder.eval()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to ``path`` atomically (a temporary file beside it, then a rename)."""
        from safetensors.torch import save_file

        p = Path(path)
        tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in self.decoder.items()}
        tensors[IMAGE_KEY] = torch.from_numpy(np.array(self.image.convert("RGB"), dtype=np.uint8))
        for k, v in (self.student or {}).items():
            tensors[STUDENT + k] = v.detach().to(torch.float16).contiguous()
        meta = {"format": FORMAT, "version": str(VERSION)}
        meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in self.meta.items()})
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.stem}.", suffix=".safetensors")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.chmod(tmp, 0o644)  # as any file the user writes (mkstemp makes it private)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p


def is_style_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a style model file (by its metadata; False for anything else, unreadable included)."""
    p = Path(path)
    if p.suffix.lower() != ".safetensors" or not p.is_file():
        return False
    try:
        return _metadata(p).get("format") == FORMAT
    except InputError:
        return False


def _metadata(p: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises several kinds for a file that is not one
        raise InputError(f"'{p}' is not a safetensors file ({type(e).__name__})") from None


def load_style_model(path: str | os.PathLike) -> StyleModel:
    """Read and check a style model; InputError (one line) when the file is not one, is from a newer semstyle, or
    its tensors do not fit the decoder."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"style model '{p}' does not exist")
    meta = _metadata(p)
    if meta.get("format") != FORMAT:
        raise InputError(f"'{p}' is a safetensors file but not a semstyle style model (make one with semstyle adapt)")
    version = meta.get("version", "")
    if not version.isdigit() or int(version) > VERSION:
        raise InputError(f"style model '{p}' has format version {version or '?'}; this semstyle reads up to "
                         f"{VERSION}: upgrade semstyle")
    from safetensors.torch import load_file

    tensors = load_file(str(p))
    img = tensors.pop(IMAGE_KEY, None)
    if img is None or img.dtype != torch.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise InputError(f"style model '{p}' has no style picture ({IMAGE_KEY}, uint8 H×W×3)")
    if not (MIN_SIDE <= min(img.shape[:2]) and max(img.shape[:2]) <= MAX_SIDE):
        raise InputError(f"style model '{p}' holds a {img.shape[1]}x{img.shape[0]} style picture; a model's is "
                         f"{MIN_SIDE} to {MAX_SIDE} px a side")
    student = {k.removeprefix(STUDENT): tensors.pop(k).float() for k in [k for k in tensors if k.startswith(STUDENT)]}
    with torch.device("meta"):  # shapes only: no memory, no initialisation (a model may be read once per frame)
        own = Decoder().state_dict()
    bad = sorted(set(own) ^ set(tensors)) or [k for k in own if tensors[k].shape != own[k].shape]
    if bad:
        raise InputError(f"style model '{p}' does not hold a decoder ({bad[0]} does not fit)")
    info: dict[str, Any] = {}
    for k, v in meta.items():
        if k in ("format", "version"):
            continue
        try:
            info[k] = json.loads(v)
        except json.JSONDecodeError:
            info[k] = v
    model = StyleModel({k: v.float() for k, v in tensors.items()}, Image.fromarray(img.numpy(), "RGB"), info,
                       student or None)
    if model.student is not None and (why := _student_misfit(model.student)):
        raise InputError(f"style model '{p}' has a student that does not fit the fast model ({why})")
    return model


def _student_misfit(student: dict[str, torch.Tensor]) -> str:
    """Why a student's tensors do not fit the fast model's networks ("" when they do), from shapes alone."""
    enc = {k.removeprefix("encoder."): v for k, v in student.items() if k.startswith("encoder.")}
    dec = {k.removeprefix("decoder."): v for k, v in student.items() if k.startswith("decoder.")}
    try:
        shape = FastConfig.from_state_dict(enc)
    except (ValueError, IndexError) as e:  # no such key, or a tensor without the dimensions of a convolution
        return str(e) or type(e).__name__
    with torch.device("meta"):
        own = {"encoder": FastEncoder(shape).state_dict(), "decoder": FastDecoder(shape).state_dict()}
    for name, got in (("encoder", enc), ("decoder", dec)):
        bad = sorted(set(own[name]) ^ set(got)) or [k for k in got if got[k].shape != own[name][k].shape]
        if bad:
            return f"{name}.{bad[0]}"
    return ""


__all__ = ["FORMAT", "IMAGE_KEY", "MAX_SIDE", "STUDENT", "StyleModel", "VERSION", "is_style_model",
           "load_style_model"]
