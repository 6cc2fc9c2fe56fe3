"""The weights semstyle ships: present, recorded, verified by sha256, loadable, and different from the start."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import torch

from semstyle.errors import WeightsError
from semstyle.models import Decoder
from semstyle.models.discriminator import MultiScaleDiscriminator
from semstyle.models.weights import load_into, packaged_file, sha256_of

WEIGHTS = Path(str(resources.files("semstyle").joinpath("weights")))
# recorded when the weights were shipped (scripts/ship_weights.py); a change here must be deliberate
RECORDED = {
    "decoder": "dda917abcbab65673c3443f4126d802df09be8b065276a77d23fff92120b1c1f",
    "discriminator": "412078726addb98b402e49f4e114a90fd821f9c7eda9d53b5aedc05a37ad98a6",
}


def test_manifest_records_the_files_and_the_training_run() -> None:
    manifest = json.loads((WEIGHTS / "MANIFEST.json").read_text())
    total = 0
    for role, digest in RECORDED.items():
        path, sha, _ = packaged_file(role)
        assert manifest[role]["sha256"] == sha == digest
        assert sha256_of(path) == digest
        total += path.stat().st_size
    assert total < 30 * 2**20  # shipped weights stay under 30 MB
    record = manifest["record"]
    assert record["step"] > 0 and record["wall_time_s"] > 0 and "semstyle train" in record["command"]


def test_finetuned_decoder_loads_and_differs_from_the_pretrained_one() -> None:
    tuned, pre = Decoder(), Decoder()
    load_into(tuned, "finetuned", "decoder")
    load_into(pre, "pretrained", "decoder")
    diffs = [float((a - b).abs().max()) for a, b in zip(tuned.state_dict().values(), pre.state_dict().values())]
    assert max(diffs) > 1e-3  # training moved the weights
    assert all(torch.isfinite(p).all() for p in tuned.parameters())


def test_discriminator_loads_and_scores() -> None:
    disc = MultiScaleDiscriminator()
    load_into(disc, "finetuned", "discriminator")
    disc.eval()
    with torch.no_grad():
        scores = disc(torch.rand(1, 3, 64, 64), torch.randn(1, 1920))
    assert [tuple(s.shape) for s in scores] == [(1, 1, 8, 8), (1, 1, 4, 4)]


def test_a_tampered_shipped_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.models import weights as W

    bad = tmp_path / "decoder_finetuned.safetensors"
    bad.write_bytes((WEIGHTS / "decoder_finetuned.safetensors").read_bytes()[:-8] + b"\0" * 8)
    monkeypatch.setattr(W, "packaged_file", lambda role: (bad, RECORDED["decoder"], None))
    with pytest.raises(WeightsError, match="sha256"):
        load_into(Decoder(), "finetuned", "decoder")
