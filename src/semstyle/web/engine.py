"""The web app's work, free of any web framework: limits, one shared Stylizer, one-line errors.

The page's form maps onto ``StylizeConfig`` (``Engine.config_for``); every failure a user can
cause becomes a ``UserError`` with a one-line message (``user_message``), never a traceback.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from semstyle.config import FUSIONS, StylizeConfig
from semstyle.errors import SemstyleError, WeightsError
from semstyle.io.images import load_image, resize_longest
from semstyle.models.style_model import StyleModel, load_style_model
from semstyle.pipelines.stylize import Stylizer
from semstyle.types import ProgressEvent, StylizeRequest, StylizeResult
from semstyle.viz import overlay
from semstyle.web.forms import (
    DECODER_CHOICES,
    KEEP_OUTPUTS,
    SEMANTIC_CHOICES,
    Limits,
    Progress,
    Upload,
    UserError,
    WebRequest,
    WebResult,
    human_bytes,
    safe_stem,
)
from semstyle.web.models import ModelShelf

log = logging.getLogger(__name__)

def _networks(choice: str) -> tuple[str, str]:
    """The page's network choice (a DECODER_CHOICES entry) as NetworkConfig fields (model, decoder)."""
    return ("fast", "pretrained") if choice == "fast" else ("vgg19", choice)


def _choice(cfg: StylizeConfig) -> str:
    """The inverse of ``_networks``: the key a config's Stylizer is shared under."""
    return "fast" if cfg.networks.model == "fast" else cfg.networks.decoder


class Engine:
    """One process's stylisation service: Stylizers created lazily and shared by all requests.

    Requests arrive at most ``concurrency`` at a time (the web queue enforces it). With more than
    one at a time the style cache is turned off, the piece of a Stylizer that mutates per style (a Stylizer made
    from a style model also keeps its picture resized for the last style size, replaced whole, never in place).
    """

    def __init__(self, base: StylizeConfig | None = None, limits: Limits | None = None, concurrency: int = 1,
                 outputs: Path | None = None, models: Path | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.limits = limits or Limits()
        base = base or StylizeConfig()
        # the engine resizes inputs itself (per request), so the Stylizers keep what they are given
        self.base = base.updated(size=0, style_size=0, max_pixels=self.limits.max_pixels,
                                 style_cache=base.networks.style_cache if concurrency == 1 else 0)
        self.style_size = min(base.options.style_size or 512, self.limits.max_size)
        self.concurrency = concurrency
        self._stylizers: dict[str, Stylizer] = {}
        self.shelf = ModelShelf(self.base, models)  # style models: by name from a folder, or uploaded
        self._unavailable: dict[str, str] = {}  # decoder → why its weights could not be loaded
        self._lock = threading.Lock()
        self._own_outdir = outputs is None
        self._outdir = outputs or Path(tempfile.mkdtemp(prefix="semstyle-web-"))
        self._outputs: deque[Path] = deque()
        self._count = 0

    # ------------------------------------------------------------------ form → config
    def config_for(self, req: WebRequest) -> StylizeConfig:
        """The form's values as a StylizeConfig (every range check is the config's own)."""
        if req.semantic not in SEMANTIC_CHOICES:
            raise UserError(f"semantic mode must be one of {', '.join(SEMANTIC_CHOICES)}, got {req.semantic!r}")
        if req.fusion not in FUSIONS:
            raise UserError(f"fusion must be one of {', '.join(FUSIONS)}, got {req.fusion!r}")
        if req.decoder not in DECODER_CHOICES:
            raise UserError(f"decoder must be one of {', '.join(DECODER_CHOICES)}, got {req.decoder!r}")
        size = int(req.size)
        if not 16 <= size <= self.limits.max_size:
            raise UserError(f"output size must be between 16 and {self.limits.max_size} px, got {size}")
        try:
            model, decoder = _networks(req.decoder)
            return self.base.updated(alpha=float(req.alpha), preserve_color=bool(req.preserve_color), size=size,
                                     model=model, decoder=decoder, refine=int(req.refine), semantic=req.semantic,
                                     fusion=req.fusion if req.semantic != "none" else "adain")
        except (TypeError, ValueError) as e:
            raise UserError(str(e)) from e

    # ------------------------------------------------------------------ networks
    def stylizer(self, decoder: str = "pretrained") -> Stylizer:
        """The shared Stylizer for ``decoder`` ("fast": the fast model), loaded on first use (WeightsError if not)."""
        with self._lock:
            st = self._stylizers.get(decoder)
            if st is None:
                if decoder in self._unavailable:  # missing weights do not appear while the server runs
                    raise WeightsError(self._unavailable[decoder])
                t0 = time.perf_counter()
                try:
                    model, weights = _networks(decoder)
                    st = Stylizer.from_config(self.base.updated(model=model, decoder=weights))
                except WeightsError as e:
                    self._unavailable[decoder] = str(e)
                    raise
                self._stylizers[decoder] = st
                log.info("loaded the %s decoder in %.1f s", decoder, time.perf_counter() - t0)
            return st

    def style_models(self) -> dict[str, Path]:
        """The style models of the ``--models`` folder by name (file stem), sorted; {} without one."""
        return self.shelf.names()

    def style_model(self, req: WebRequest) -> tuple[Path, StyleModel] | None:
        """The request's style model (an upload, else one named from the folder), read and checked; None."""
        if req.style_model is not None:
            self._check_size(req.style_model, "style model")
            path = req.style_model.path
        elif req.model:
            found = self.style_models().get(req.model)
            if found is None:
                raise UserError(f"there is no style model '{req.model}' on this server")
            path = found
        else:
            return None
        try:
            return path, load_style_model(path)
        except SemstyleError as e:
            name = req.style_model.name if req.style_model is not None else req.model
            raise UserError(str(e).replace(str(path), name)) from None

    def loaded(self) -> list[str]:
        """Decoders loaded so far."""
        return sorted(self._stylizers)

    # ------------------------------------------------------------------ inputs
    def _check_size(self, up: Upload, what: str) -> None:
        try:
            n = up.path.stat().st_size
        except OSError:
            raise UserError(f"the uploaded {what} '{up.name}' is gone; upload it again") from None
        limit = self.limits.max_upload_bytes
        if n > limit:
            raise UserError(f"{what} '{up.name}' is {human_bytes(n)}, over the upload limit of {human_bytes(limit)}")

    def load(self, up: Upload | None, what: str, size: int) -> Image.Image:
        """Check an upload's byte size and pixel count, decode it, resize its longest side to ``size``."""
        if up is None:
            raise UserError(f"upload a {what} or pick one of the examples")
        self._check_size(up, what)
        return resize_longest(load_image(up.path, self.limits.max_pixels, what), size)

    def strokes(self, layers: tuple[Upload, ...], what: str) -> Image.Image:
        """The painted layers of one picture, merged into one RGBA picture (transparent where nothing is painted)."""
        if not layers:
            raise UserError(f"semantic mode 'scribbles' needs strokes on the {what}: paint each region you want "
                            "with one colour, and the matching region of the other picture with the same colour")
        merged: Image.Image | None = None
        for up in layers:
            self._check_size(up, f"{what} strokes")
            with Image.open(up.path) as im:  # the page's own PNG layers, at most the picture's size
                layer = im.convert("RGBA")
            merged = layer if merged is None else Image.alpha_composite(merged, layer.resize(merged.size))
        assert merged is not None
        return merged

    def _labels(self, up: Upload | None, what: str) -> Path:
        if up is None:
            raise UserError(f"semantic mode 'labels' needs a {what}; upload one or choose another mode")
        self._check_size(up, what)
        return up.path

    # ------------------------------------------------------------------ work
    def run(self, req: WebRequest, progress: Progress | None = None) -> WebResult:
        """Stylise one request. Raises UserError/SemstyleError/ValueError with one-line messages."""
        say = progress or (lambda f, d: None)
        t0 = time.perf_counter()
        cfg = self.config_for(req)
        say(0.05, "reading the images")
        content = self.load(req.content, "content image", cfg.options.size)
        found = self.style_model(req)
        if found is not None:  # the model is the style: its picture, its decoder or student
            style = resize_longest(found[1].image, self.style_size)
            try:
                st = self.shelf.stylizer(found[0], found[1], cfg.networks.model == "fast")
            except SemstyleError as e:
                raise UserError(str(e)) from None
        else:
            style = self.load(req.style, "style image", self.style_size)
            st = self._shared(cfg, say)
        request = StylizeRequest(content, (style,))
        if cfg.options.semantic == "labels":
            request = StylizeRequest(content, (style,), content_labels=self._labels(req.content_labels,
                                                                                    "content label map"),
                                     style_labels=(self._labels(req.style_labels, "style label map"),))
        elif cfg.options.semantic == "scribbles":
            request = StylizeRequest(content, (style,), content_scribbles=self.strokes(req.content_strokes, "content"),
                                     style_scribbles=(self.strokes(req.style_strokes, "style"),))
        if cfg.options.refine:
            say(0.15, "loading the discriminator")
            try:
                st.networks.discriminator()  # thread-safe: loaded once
            except WeightsError as e:
                raise UserError(f"refinement is not available on this server (set its rounds to 0): {e}") from e
        steps = {"none": "stylising", "auto": "segmenting both images and stylising", "labels": "stylising by label",
                 "scribbles": "growing the painted regions and stylising"}
        rounds = cfg.options.refine
        say(0.2, steps[cfg.options.semantic] + (f", then up to {rounds} refinement rounds" if rounds else ""))
        res = st.run(request, cfg.options, callback=_progress_of(say, cfg.options.refine))
        say(0.9, "saving the PNG")
        out = WebResult(path=self._save(res.image, req), size=res.image.size)
        if res.content_labels is not None:
            out.content_overlay = overlay(content, res.content_labels, res.from_colors)
            if res.style_labels and res.style_labels[0] is not None:
                out.style_overlay = overlay(style, res.style_labels[0], res.from_colors)
        if res.refine is not None:
            out.scores = [round(s, 3) for s in res.refine.scores]
        out.seconds = time.perf_counter() - t0
        model_name = (req.style_model.name if req.style_model is not None else req.model) if found else ""
        out.summary = self._summary(cfg, out, res, model_name)
        log.info("request done in %.1f s: %s", out.seconds, out.summary)
        return out

    def _shared(self, cfg: StylizeConfig, say: Progress) -> Stylizer:
        key = _choice(cfg)
        if key not in self._stylizers:
            say(0.1, f"loading the {key} networks")
        try:
            return self.stylizer(key)
        except WeightsError as e:
            raise UserError(f"the {key} {'model' if key == 'fast' else 'decoder'} is not available on this server: "
                            f"{e}") from e

    def segment(self, req: WebRequest, progress: Progress | None = None) -> tuple[Image.Image, Image.Image, int]:
        """The automatic co-segmentation of content and style, as overlays, and the number of regions."""
        say = progress or (lambda f, d: None)
        cfg = self.config_for(req)
        say(0.05, "reading the images")
        content = self.load(req.content, "content image", cfg.options.size)
        style = self.load(req.style, "style image", self.style_size)
        st = self.stylizer(_choice(cfg))
        say(0.2, "segmenting both images together")
        c_lab, s_labs = st.cosegment(content, [style])
        k = len(np.unique(np.concatenate([np.ravel(c_lab), np.ravel(s_labs[0])])))
        return overlay(content, c_lab), overlay(style, s_labs[0]), k

    def close(self) -> None:
        """Delete the result PNGs this engine wrote (when it chose their folder itself)."""
        if self._own_outdir:
            shutil.rmtree(self._outdir, ignore_errors=True)

    # ------------------------------------------------------------------ outputs
    def _save(self, im: Image.Image, req: WebRequest) -> Path:
        stem = "_".join(safe_stem(u.name, "upload") for u in (req.content, req.style) if u is not None) or "result"
        path = self.new_output(f"semstyle_{stem}.png")
        im.save(path, format="PNG")
        return path

    def new_output(self, name: str) -> Path:
        """A fresh path for a result named ``name`` in the server's own output folder (never a client's path);
        only the last ``KEEP_OUTPUTS`` results are kept."""
        with self._lock:
            self._count += 1
            n = self._count
        path = self._outdir / f"{n:05d}" / Path(name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._outputs.append(path)
            while len(self._outputs) > KEEP_OUTPUTS:
                old = self._outputs.popleft()
                old.unlink(missing_ok=True)
                try:
                    old.parent.rmdir()
                except OSError:
                    pass
        return path

    @staticmethod
    def _summary(cfg: StylizeConfig, out: WebResult, res: StylizeResult, model: str = "") -> str:
        w, h = out.size
        networks = (f"style model {model}{' (its student)' if cfg.networks.model == 'fast' else ''}" if model
                    else f"decoder {cfg.networks.decoder}")
        parts = [f"{w}×{h} px in {out.seconds:.1f} s", f"α = {cfg.options.alpha:g}", networks]
        if cfg.options.semantic != "none":
            n = len(set(res.matches)) or "?"
            parts.append(f"semantic {cfg.options.semantic} ({n} regions)")
        if cfg.options.preserve_color:
            parts.append("colours preserved")
        if out.scores:
            parts.append("discriminator score " + " → ".join(f"{s:.2f}" for s in out.scores))
        return ", ".join(parts)


def _progress_of(say: Progress, rounds: int) -> Callable[[ProgressEvent], None]:
    """The pipeline's progress events as the page's bar: tiles 0.2 → 0.6, then refinement rounds → 0.9."""

    def on(ev: ProgressEvent) -> None:
        if ev.stage == "refine":
            say(0.6 + 0.3 * ev.step / max(ev.total, 1), f"refinement round {ev.step} of {ev.total}")
        elif ev.stage in ("encode", "decode") and ev.total > 1:
            part = 0.2 if ev.stage == "encode" else 0.4
            say(part + 0.2 * ev.step / ev.total, f"{ev.stage[:-1]}ing tile {ev.step} of {ev.total}")

    return on


__all__ = ["Engine"]
