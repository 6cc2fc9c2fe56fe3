"""Training configuration: one dataclass, readable from YAML/JSON, overridable from the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from semstyle.errors import InputError
from semstyle.losses import LossWeights
from semstyle.training.temporal import Motion


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML (.yaml/.yml) or JSON training config file as a dict; InputError when it is not one."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InputError(f"cannot read training config '{p}' ({e.strerror})") from e
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as e:  # yaml.YAMLError / json.JSONDecodeError, with long multi-line messages
        raise InputError(f"training config '{p}' is not valid {p.suffix.lstrip('.') or 'JSON'}: "
                         f"{str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise InputError(f"training config '{p}' must be a mapping of keys to values")
    return data


def apply_overrides(data: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``data`` with ``KEY=VALUE`` pairs applied (``weights.adv=0``: a dot reaches into a nested mapping; the
    value is read as YAML, so ``true``, ``0.05`` and ``[relu3_1, relu4_1]`` mean what they say)."""
    import yaml

    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set needs KEY=VALUE (e.g. weights.adv=0), got {pair!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
        *parents, leaf = key.strip().split(".")
        node = out
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {key}: '{name}' is not a mapping")
        node[leaf] = value
    return out


# Trial code that was measured and not kept (docs/TRAINING.md) and the last commit that has it, to recover it from
TRIAL_COMMIT = "0eafc31"
ANY = object()  # a removed field whose every value means what the trainer still does
# removed field → (the value that means what the trainer still does, what it chose, the file that had it)
REMOVED: dict[str, tuple[object, str, str]] = {
    "discriminator": ("image", "the feature-space discriminator", "src/semstyle/models/discriminator.py"),
    "d_taps": (ANY, "the feature-space discriminator's taps", "src/semstyle/models/discriminator.py"),
    "content_cache": (False, "the content feature cache", "src/semstyle/training/targets.py"),
}
REMOVED_SEMANTIC = (f"semantic: attention was measured, not kept and removed after {TRIAL_COMMIT}; "
                    f"git show {TRIAL_COMMIT}:src/semstyle/training/trainer.py")


def drop_removed(d: dict[str, Any], source: str) -> dict[str, Any]:
    """``d`` without the fields of removed trial code (``REMOVED``) that are set to what the trainer still does, so
    an old run's config.json or YAML still loads; InputError (one line, naming the field) when one asks for the
    removed code."""
    for key, (kept, what, path) in REMOVED.items():
        if key in d and kept is not ANY and d[key] != kept:
            raise InputError(f"{source} sets {key}: {d[key]!r}, but {what} was measured, not kept and removed after "
                             f"{TRIAL_COMMIT} (git show {TRIAL_COMMIT}:{path}); leave {key} out")
    return {k: v for k, v in d.items() if k not in REMOVED}


@dataclass(frozen=True)
class TrainConfig:
    content_dir: str = ""  # folder(s) of content photos, comma-separated
    style_dir: str = ""  # folder(s) of style images, comma-separated
    out: str = "runs/finetune"  # run folder: checkpoints/, tensorboard/, metrics.jsonl
    exclude_styles: str = ""  # file listing held-out style files (one relative name a line)
    steps: int = 1000  # generator updates in total
    size: int = 256  # random crop side (pixels)
    batch: int = 4  # images per step (per process under DDP)
    lr: float = 1e-5  # decoder learning rate (fine-tuning: small)
    lr_d: float = 1e-4  # discriminator learning rate
    warmup: int = 0  # steps of linear learning-rate warm-up (both networks)
    schedule: str = "constant"  # "constant" or "cosine" (decay to min_lr × lr by the last step)
    min_lr: float = 0.1  # cosine: the final learning rate as a share of the initial one
    ema: float = 0.0  # decay of an exponential moving average of the decoder's weights (0 = off; e.g. 0.999)
    style_targets: str = "crop"  # "crop": style terms vs the style crop; "whole": vs the whole style image
    style_size: int = 512  # "whole": the style image's longest side for its targets (inference's --style-size)
    style_augment: int = 0  # extra variants per style image (hue turned, picture turned 90°; data.style_variant)
    style_bank_size: int = 0  # style images' longest side in the bank (crops are cut from it; 0 = as stored, ≤ 768)
    content_size: int = 0  # content photos' longest side in the bank (inference's --size; 0 = as stored, ≤ 768)
    margin: int = 0  # px of each side of a decoded crop left out of the generator's terms and D (no border reward)
    late_size: int = 0  # crops grow to this side for the last part of training (0 = never)
    late_from: float = 0.75  # share of the steps after which crops are late_size
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas for both networks
    d_steps: int = 1  # discriminator updates per generator update
    train_generator: bool = True  # False: a judge stage — the decoder stays fixed, only the discriminator learns
    d_noise: float = 0.0  # weight of an extra "fake" term on random noise images (a judge must not reward noise)
    grad_clip: float = 1.0  # max global gradient norm (0 disables)
    seed: int = 0  # every random choice derives from (seed, step, rank)
    semantic: str = "none"  # "auto": region-matched AdaIN on co-segmented crop pairs
    decoder_init: str = "pretrained"  # decoder weights to start from
    encoder: str = "pretrained"  # encoder weights
    discriminator_init: str = ""  # optional discriminator weights to start from
    num_scales: int = 2  # discriminator scales (image space)
    channels_last: bool = False  # decoder and encoder in channels_last memory format
    precision: str = "fp32"  # fp32 | bf16 (CPU autocast); CUDA always uses fp16 autocast + GradScaler
    log_every: int = 10  # steps between scalar logs
    image_every: int = 100  # steps between TensorBoard image grids
    ckpt_every: int = 100  # steps between checkpoints
    keep_last: int = 3  # checkpoints kept
    weights: LossWeights = field(default_factory=LossWeights)  # λ weights
    motion: Motion = field(default_factory=Motion)  # the random motions of the temporal term (weights.temporal > 0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = drop_removed(d, "training config")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown training config keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("weights"), dict):
            wk = {f.name for f in fields(LossWeights)}
            bad = sorted(set(d["weights"]) - wk)
            if bad:
                raise InputError(f"unknown loss weights {bad}; known: {sorted(wk)}")
            w = dict(d["weights"])
            if "style_layers" in w:
                w["style_layers"] = tuple(w["style_layers"])
            d["weights"] = LossWeights(**w)
        if isinstance(d.get("motion"), dict):
            mk = {f.name for f in fields(Motion)}
            bad = sorted(set(d["motion"]) - mk)
            if bad:
                raise InputError(f"unknown motion keys {bad}; known: {sorted(mk)}")
            d["motion"] = Motion(**d["motion"])
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        defaults = cls()
        for key, value in d.items():
            want = type(getattr(defaults, key))
            ok = (isinstance(value, want) and not (want is int and isinstance(value, bool))
                  or want is float and isinstance(value, int) and not isinstance(value, bool))
            if want in (int, float, bool, str) and not ok:
                raise InputError(f"training config {key} must be a {want.__name__}, got {value!r}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_mapping(path))

    def updated(self, **changes: Any) -> TrainConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def check(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.d_steps < 0:
            raise InputError("steps and batch must be >= 1 and d_steps >= 0")
        if not 16 <= self.size <= 2048 or self.size % 8:
            raise InputError(f"size must be a multiple of 8 between 16 and 2048, got {self.size}")
        if self.semantic not in ("none", "auto"):
            removed = f" ({REMOVED_SEMANTIC})" if self.semantic == "attention" else ""
            raise InputError(f"training semantic must be none or auto, got {self.semantic!r}{removed}")
        if self.semantic != "none" and self.style_targets != "crop":
            raise InputError(f"training semantic {self.semantic!r} fuses crops' regions; set style_targets: crop")
        if self.schedule not in ("constant", "cosine"):
            raise InputError(f"schedule must be constant or cosine, got {self.schedule!r}")
        if self.warmup < 0 or not 0.0 <= self.min_lr <= 1.0:
            raise InputError(f"warmup must be >= 0 and min_lr in [0, 1], got {self.warmup} and {self.min_lr}")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"ema must be in [0, 1), got {self.ema}")
        if self.style_targets not in ("crop", "whole"):
            raise InputError(f"style_targets must be crop or whole, got {self.style_targets!r}")
        if self.late_size and (self.late_size % 8 or not self.size <= self.late_size <= 2048):
            raise InputError(f"late_size must be 0 or a multiple of 8 from size ({self.size}) to 2048, "
                             f"got {self.late_size}")
        if self.margin < 0 or self.margin % 8 or self.size - 2 * self.margin < 32:
            raise InputError(f"margin must be a multiple of 8 leaving at least 32 px of the {self.size} px crop, "
                             f"got {self.margin}")
        if self.margin and (self.semantic != "none" or "relu4_1" not in self.weights.style_layers):
            raise InputError("margin works with semantic: none and relu4_1 among the style layers")
        if not 0 <= self.style_augment <= 16:
            raise InputError(f"style_augment must be from 0 to 16, got {self.style_augment}")
        crop = max(self.size, self.late_size)
        for name in ("style_bank_size", "content_size"):
            side = getattr(self, name)
            if side and not crop <= side <= 4096:
                raise InputError(f"{name} must be 0 or from the crop side ({crop}) to 4096, got {side}")
        if not 0.0 <= self.late_from <= 1.0:
            raise InputError(f"late_from must be in [0, 1], got {self.late_from}")
        if self.d_noise < 0:
            raise InputError(f"d_noise must be >= 0, got {self.d_noise}")
        if not self.train_generator and self.d_steps < 1:
            raise InputError("a judge stage (train_generator false) needs d_steps >= 1")
        if self.weights.temporal < 0:
            raise InputError(f"weights.temporal must be >= 0, got {self.weights.temporal}")
        if self.weights.temporal > 0 and self.semantic != "none":
            raise InputError("the temporal term works with semantic: none (whole-crop AdaIN targets)")
        try:
            self.motion.check()
        except ValueError as e:
            raise InputError(str(e)) from None
        if self.precision not in ("fp32", "bf16"):
            raise InputError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if not self.content_dir or not self.style_dir:
            raise InputError("training needs --content-dir and --style-dir")
