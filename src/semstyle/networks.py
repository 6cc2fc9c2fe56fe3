"""The networks one stylisation process uses, built once from the config and shared.

``Networks`` owns the encoder and decoder (VGG19 + AdaIN decoder, or the distilled fast model),
the device, the precision (bf16 autocast where the hardware has it), optional ``torch.compile``,
and the discriminator, loaded lazily and thread-safely on first use. The ``Stylizer``, the
optimiser, refinement, the trainers and the evaluation metrics all take their networks from here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from semstyle.config import NetworkConfig
from semstyle.errors import InputError
from semstyle.models import Decoder, VGGEncoder
from semstyle.models.discriminator import MultiScaleDiscriminator
from semstyle.models.fast import FastConfig, FastDecoder, FastEncoder
from semstyle.models.style_model import StyleModel, is_style_model, load_style_model
from semstyle.models.weights import fast_shape, load_into
from semstyle.segmentation.auto import DEFAULT as DEFAULT_COSEG
from semstyle.segmentation.auto import FAST as FAST_COSEG
from semstyle.segmentation.auto import Options as CosegOptions

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; a missing CUDA is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


BF16_ENV = "SEMSTYLE_BF16"  # "1"/"on" or "0"/"off" overrides the hardware check behind precision "auto"


def bf16_rule(*, cuda: bool, cuda_bf16: bool, avx512_bf16: bool, amx_bf16: bool, override: str = "") -> bool:
    """Whether precision "auto" runs bf16: the override ("1"/"on", "0"/"off", "" = none) wins; else a CUDA
    device with bf16, or a CPU with the instructions for it (AVX512-BF16 or AMX). oneDNN's own check also
    says yes on AVX-512 CPUs *without* BF16 (Skylake-SP to Ice Lake), where bf16 is emulated and slower
    than fp32, so the CPU's own flags decide."""
    value = override.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    if value:
        raise InputError(f"{BF16_ENV} must be 1/on or 0/off (or unset), got {override!r}")
    return cuda_bf16 if cuda else (avx512_bf16 or amx_bf16)


def _cpu_has(probe: str) -> bool:
    fn = getattr(torch.cpu, probe, None)  # private probes of torch.cpu (cpuinfo): absent in old releases
    try:
        return bool(fn()) if callable(fn) else False
    except RuntimeError:
        return False


def native_bf16(device: torch.device) -> bool:
    """True when precision "auto" runs bf16 on ``device``: ``bf16_rule`` of this machine and ``SEMSTYLE_BF16``."""
    cuda = device.type == "cuda"
    return bf16_rule(
        cuda=cuda,
        cuda_bf16=cuda and bool(torch.cuda.is_bf16_supported()),
        avx512_bf16=not cuda and _cpu_has("_is_avx512_bf16_supported"),
        amx_bf16=not cuda and _cpu_has("_is_amx_tile_supported"),
        override=os.environ.get(BF16_ENV, ""),
    )


def resolve_bf16(precision: str, device: torch.device) -> bool:
    """``precision`` ("auto" | "fp32" | "bf16") → whether to run under bf16 autocast."""
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def load_encoder(source: str, device: torch.device) -> VGGEncoder:
    """The VGG19 encoder (frozen, eval mode) with weights from ``source``, on ``device`` (the loss network
    of the trainers and the metrics)."""
    enc = VGGEncoder()
    load_into(enc, source, "encoder")
    return enc.eval().requires_grad_(False).to(device)


def load_decoder(source: str, device: torch.device) -> Decoder:
    """The AdaIN decoder (frozen, eval mode) with weights from ``source``, on ``device`` (a teacher)."""
    dec = Decoder()
    load_into(dec, source, "decoder")
    return dec.eval().requires_grad_(False).to(device)


@dataclass
class Networks:
    """Encoder, decoder and their execution settings; see the module docstring."""

    encoder: nn.Module  # VGGEncoder or FastEncoder, frozen, eval mode
    decoder: nn.Module  # Decoder or FastDecoder, frozen, eval mode
    device: torch.device
    bf16: bool = False  # run encoder/decoder under bf16 autocast
    model: str = "vgg19"  # "vgg19" | "fast"
    channels: int = 512  # relu4_1 channels, where AdaIN works
    coseg: CosegOptions = DEFAULT_COSEG  # the co-segmentation's features for this model
    discriminator_source: str = "finetuned"  # weights of the lazily loaded discriminator
    compiled: bool = False  # encoder/decoder calls go through torch.compile
    student: bool = False  # the fast networks are a style model's student (no colour correction: it learned colour)
    _run_encoder: nn.Module | None = field(default=None, repr=False)
    _run_decoder: nn.Module | None = field(default=None, repr=False)
    _disc: MultiScaleDiscriminator | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, cfg: NetworkConfig, model: StyleModel | None = None) -> Networks:
        """Build and load the networks ``cfg`` names (model, weights, device, precision, compile); with ``model`` (a
        loaded style model), its decoder — or with ``cfg.model`` "fast", its student — instead of ``cfg.decoder``."""
        fast = cfg.model == "fast"
        if model is None and is_style_model(cfg.decoder):
            model = load_style_model(cfg.decoder) if fast else None  # the VGG19 decoder loads as any decoder file
        encoder: nn.Module
        decoder: nn.Module
        if fast and model is not None:  # a style model's real-time student (semstyle adapt --student)
            s_enc, s_dec = model.student_networks()
            shape: FastConfig | None = s_enc.cfg
            encoder, decoder = s_enc, s_dec
        else:
            shape = fast_shape(cfg.encoder) if fast else None
            if fast:
                log.warning("the fast model is experimental: ~14x faster than VGG19 but weaker in style "
                            "(docs/FAST_MODEL.md)")
            encoder = FastEncoder(shape) if shape else VGGEncoder()
            decoder = FastDecoder(shape) if shape else Decoder()
            load_into(encoder, cfg.encoder, "fast_encoder" if fast else "encoder")
            if model is not None:
                decoder.load_state_dict(model.decoder)
            else:
                load_into(decoder, cfg.decoder, "fast_decoder" if fast else "decoder")
        return cls._assemble(cfg, encoder, decoder, shape, student=fast and model is not None)

    @classmethod
    def _assemble(cls, cfg: NetworkConfig, encoder: nn.Module, decoder: nn.Module, shape: FastConfig | None,
                  student: bool) -> Networks:
        device = pick_device(cfg.device)
        for net in (encoder, decoder):
            net.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        nets = cls(
            encoder, decoder, device, resolve_bf16(cfg.precision, device), cfg.model,
            shape.channels()["relu4_1"] if shape else 512, FAST_COSEG if shape else DEFAULT_COSEG,
            cfg.discriminator, cfg.compile, student,
        )
        if cfg.compile:  # inductor fuses convolutions with their activations and padding; docs/speed_study.md
            nets._run_encoder = torch.compile(encoder)  # type: ignore[assignment]
            nets._run_decoder = torch.compile(decoder)  # type: ignore[assignment]
        return nets

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """bf16 autocast on this device when enabled, else a no-op."""
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def encode(self, img: torch.Tensor, taps: Sequence[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) in [0, 1], H and W multiples of 8 → fp32 features per tap."""
        x = img.to(self.device).contiguous(memory_format=torch.channels_last)
        with self.autocast():
            run = self._run_encoder if self._run_encoder is not None else self.encoder
            feats = run(x, taps)
        return {k: v.float() for k, v in feats.items()}

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) relu4_1 features → (N, 3, 8h, 8w) image (fp32, unclamped)."""
        with self.autocast():
            run = self._run_decoder if self._run_decoder is not None else self.decoder
            out: torch.Tensor = run(feat.contiguous(memory_format=torch.channels_last))
        return out.float()

    def decode_stage(self, x: torch.Tensor, *, start: str | None = None, stop: str | None = None) -> torch.Tensor:
        """The VGG19 decoder from stage ``start`` (None: relu4_1 features) to stage ``stop`` (None: the image;
        ``models.decoder.STAGES``) → fp32: a decode split at an activation (video's carry). Always eager."""
        if not isinstance(self.decoder, Decoder):
            raise ValueError(f"the {self.model} model's decoder has no named stages to split at")
        with self.autocast():
            out = self.decoder.run(x.to(self.device).contiguous(memory_format=torch.channels_last), start, stop)
        return out.float()

    def discriminator(self) -> MultiScaleDiscriminator:
        """The style-conditional discriminator, loaded on first use (safe to call from several threads)."""
        with self._lock:
            if self._disc is None:
                if self.model == "fast":
                    raise InputError("refinement needs the VGG19 model's discriminator; set refine to 0 or use "
                                     "model vgg19")
                disc = MultiScaleDiscriminator()
                load_into(disc, self.discriminator_source, "discriminator")
                self._disc = disc.eval().requires_grad_(False).to(self.device)
            return self._disc


__all__ = ["BF16_ENV", "Networks", "bf16_rule", "load_decoder", "load_encoder", "native_bf16", "pick_device",
           "resolve_bf16"]
