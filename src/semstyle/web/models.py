"""Style models on the web page (``semstyle adapt``): the ``--models`` folder's, by name, and the Stylizers that run
them — a model's adapted decoder or its student — shared by content (its sha256) and kept for the last few."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from semstyle.config import StylizeConfig
from semstyle.errors import InputError
from semstyle.models.style_model import StyleModel, is_style_model
from semstyle.models.weights import sha256_of
from semstyle.pipelines.stylize import Stylizer

KEEP = 4  # Stylizers of style models kept loaded (the least recently used goes first)


class ModelShelf:
    """The style models a server offers (``folder``, or None) and the Stylizers of those in use."""

    def __init__(self, base: StylizeConfig, folder: Path | None) -> None:
        self.base, self.folder = base, folder
        self._stylizers: OrderedDict[str, Stylizer] = OrderedDict()  # "vgg19|fast@sha256" → Stylizer
        self._lock = threading.Lock()

    def names(self) -> dict[str, Path]:
        """The folder's style models by name (file stem), sorted; {} without a folder."""
        if self.folder is None or not self.folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.folder.glob("*.safetensors")) if is_style_model(p)}

    def stylizer(self, path: Path, model: StyleModel, fast: bool) -> Stylizer:
        """The shared Stylizer of the model at ``path`` (its decoder, or with ``fast`` its student)."""
        if fast and model.student is None:
            raise InputError("this style model has no student for the fast decoder; make one with semstyle adapt "
                             "--student, or choose another decoder")
        key = f"{'fast' if fast else 'vgg19'}@{sha256_of(path)}"
        with self._lock:
            st = self._stylizers.get(key)
        if st is None:  # loaded outside the lock: a request for a model already loaded never waits for this one
            built = Stylizer.from_config(self.base.updated(model="fast" if fast else "vgg19", decoder=str(path)))
            with self._lock:
                st = self._stylizers.setdefault(key, built)  # two loads of one model at once: the first one stays
                while len(self._stylizers) > KEEP:
                    self._stylizers.popitem(last=False)
        with self._lock:
            if key in self._stylizers:
                self._stylizers.move_to_end(key)
        return st


__all__ = ["KEEP", "ModelShelf"]
