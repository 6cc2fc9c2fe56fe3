"""Atomic checkpoints: safetensors for tensors, JSON for everything else.

Layout: ``RUN/checkpoints/step_000100/{decoder,discriminator,optim_g,optim_d}.safetensors`` and
``state.json`` (step, config, optimiser hyper-parameters, RNG state, metrics), plus
``RUN/checkpoints/latest`` naming the newest complete checkpoint. A checkpoint is written into a
temporary folder and renamed into place; ``latest`` is replaced atomically afterwards, so a
crash at any moment leaves the previous checkpoint loadable; the temporary files a killed writer
leaves behind are removed by the next save (one writer per run folder: rank 0).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from semstyle.errors import InputError, SemstyleError

log = logging.getLogger(__name__)


def _flatten_optim(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        scalars["state"][str(pid)] = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}.{k}"] = v.contiguous()
            else:
                scalars["state"][str(pid)][k] = v
    return tensors, scalars


def _unflatten_optim(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(p): dict(v) for p, v in scalars["state"].items()}
    for key, t in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = t
    return {"state": state, "param_groups": scalars["param_groups"]}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1))


def save_checkpoint(
    run: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optims: dict[str, torch.optim.Optimizer],
    extra: dict[str, Any],
    keep_last: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically and prune all but the newest ``keep_last``."""
    root = run / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for junk in [*root.glob(".step_*"), *root.glob(".latest.*")]:  # left by a writer killed mid-write (kill -9)
        if junk.is_dir():
            shutil.rmtree(junk, ignore_errors=True)
        else:
            junk.unlink(missing_ok=True)
    final = root / f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".step_{step:07d}."))
    try:
        for name, m in modules.items():
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in m.state_dict().items()}, str(tmp / f"{name}.safetensors")
            )
        optim_scalars = {}
        for name, o in optims.items():
            tensors, scalars = _flatten_optim(o)
            save_file(tensors, str(tmp / f"{name}.safetensors"))
            optim_scalars[name] = scalars
        rng = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()
        _write_json(tmp / "state.json", {"step": step, "optim": optim_scalars, "torch_rng": rng, **extra})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fd, tmp_latest = tempfile.mkstemp(dir=root, prefix=".latest.")
    with os.fdopen(fd, "w") as f:
        f.write(final.name)
    os.replace(tmp_latest, root / "latest")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = run / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        cand = root / pointer.read_text().strip()
        if (cand / "state.json").is_file():
            return cand
    done = sorted(p for p in root.glob("step_*") if (p / "state.json").is_file()) if root.is_dir() else []
    return done[-1] if done else None


def checkpoint_of(src: Path) -> Path | None:
    """``src`` itself if it is a complete checkpoint folder, else the newest checkpoint of the run ``src``."""
    if (src / "state.json").is_file():
        return src
    return latest_checkpoint(src) if (src / "checkpoints").is_dir() else None


def load_checkpoint(
    ckpt: Path, modules: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer]
) -> dict[str, Any]:
    """Restore modules, optimisers and the torch RNG; returns the JSON state."""
    try:
        state = json.loads((ckpt / "state.json").read_text())
        for name, m in modules.items():
            m.load_state_dict(load_file(str(ckpt / f"{name}.safetensors")))
        for name, o in optims.items():
            o.load_state_dict(_unflatten_optim(load_file(str(ckpt / f"{name}.safetensors")), state["optim"][name]))
    except (OSError, KeyError, RuntimeError, json.JSONDecodeError) as e:
        raise SemstyleError(f"checkpoint {ckpt} cannot be loaded ({str(e).splitlines()[0]})") from e
    rng = torch.frombuffer(bytearray(base64.b64decode(state["torch_rng"])), dtype=torch.uint8)
    torch.set_rng_state(rng)
    return state


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config as JSON has it (tuples are lists), nested mappings flattened to dotted keys (``weights.adv``)."""
    out: dict[str, Any] = {}
    for key, value in json.loads(json.dumps(config)).items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def saved_config(ckpt: Path) -> dict[str, Any]:
    """The config a checkpoint was written with ({} when it has none), read before any weights are loaded."""
    try:
        config = json.loads((ckpt / "state.json").read_text()).get("config", {})
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise SemstyleError(f"checkpoint {ckpt} cannot be loaded ({str(e).splitlines()[0]})") from e
    return config if isinstance(config, dict) else {}


def check_resumable(saved: dict[str, Any], current: dict[str, Any], resumable: frozenset[str]) -> None:
    """Refuse (InputError naming them) a resume whose config differs from the checkpoint's ``saved`` one in any
    field but ``resumable`` (those that only say where the run stops, logs and checkpoints). Fields only one side
    has (added or removed by another semstyle version) are not compared."""
    old, new = _flat(saved), _flat(current)
    changed = sorted(k for k in old.keys() & new.keys() if k.split(".")[0] not in resumable and old[k] != new[k])
    if changed:
        raise InputError(f"--resume with a different {', '.join(changed)} than the run was started with "
                         f"would not continue it; only {', '.join(sorted(resumable))} may change")


def _row_step(line: str) -> float:
    try:
        return float(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):  # a line torn by a crash mid-append
        return math.inf


def trim_metrics(run: Path, step: int) -> None:
    """Drop the lines of ``run/metrics.jsonl`` logged after ``step`` (a resumed run rewrites them), and any
    line that is not a complete row."""
    path = run / "metrics.jsonl"
    if path.exists():
        keep = [ln for ln in path.read_text().splitlines() if ln and _row_step(ln) <= step]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(k + "\n" for k in keep))
        os.replace(tmp, path)


def append_metrics(run: Path, row: dict[str, Any]) -> None:
    """Append one JSON line to ``run/metrics.jsonl``."""
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
