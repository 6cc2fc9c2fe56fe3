"""The weights semstyle ships: present, recorded, verified by sha256, loadable, and different from the start."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import torch

from semstyle import assets
from semstyle.errors import WeightsError
from semstyle.evaluation.judge import judge, style_crops
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.models import Decoder, VGGEncoder
from semstyle.models.discriminator import MultiScaleDiscriminator
from semstyle.models.weights import load_into, packaged_file, sha256_of

WEIGHTS = Path(str(resources.files("semstyle").joinpath("weights")))
# recorded when the weights were shipped (scripts/ship_weights.py); a change here must be deliberate
RECORDED = {
    "decoder": "7eddd625f4e6cb5b9bfa019e3212ae5a433d9968aba73a96fbc823833790957e",  # configs/recipe_long.yaml, EMA
    "discriminator": "c40ca0e86747983ec9a93a4ac931282b90edd1123f8368c535932167bdc6278d",  # recipe_long (c)
    "decoder_temporal": "2107d31c3c88aadc6f724d6992973978f86c7b29f9696a8721a61da70088799a",  # configs/temporal.yaml
}


def test_manifest_records_the_files_and_the_training_run() -> None:
    manifest = json.loads((WEIGHTS / "MANIFEST.json").read_text())
    for role, digest in RECORDED.items():
        path, sha, _ = packaged_file(role)
        assert manifest[role]["sha256"] == sha == digest
        assert sha256_of(path) == digest
    total = sum(p.stat().st_size for p in WEIGHTS.glob("*.safetensors"))
    assert total < 30 * 2**20  # every shipped weight file together stays under 30 MB
    for key in ("record", "temporal_record"):
        record = manifest[key]
        assert record["step"] > 0 and record["wall_time_s"] > 0 and "semstyle train" in record["command"]
    assert manifest["temporal_record"]["config"]["weights"]["temporal"] > 0


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


# ----------------------------------------------------------------------------- the shipped weights behave
@pytest.fixture(scope="module")
def encoder() -> VGGEncoder:
    enc = VGGEncoder()
    load_into(enc, "pretrained", "encoder")
    return enc.eval()


def _photos(side: int = 256) -> list[torch.Tensor]:
    """The bundled public-domain photos at ``side`` px, cropped to multiples of 8."""
    out = []
    for p in assets.content_images():
        x = to_tensor(resize_longest(load_image(p), side))
        out.append(x[..., : x.shape[-2] // 8 * 8, : x.shape[-1] // 8 * 8])
    return out


def test_finetuned_decoder_reconstructs_like_the_pretrained_one(encoder: VGGEncoder, images) -> None:
    # encode → decode of a photo: the decoder must still invert the encoder after fine-tuning
    # (measured: pretrained 0.073-0.099; the long run's decoder, trained on stylisation only, reconstructs
    # up to 1.22x worse, 0.090 against 0.073; a random decoder 0.38)
    errors: dict[str, list[float]] = {}
    for source in ("pretrained", "finetuned"):
        dec = Decoder()
        load_into(dec, source, "decoder")
        dec.eval()
        with torch.inference_mode():
            errors[source] = [float((dec(encoder.encode(x)).clamp(0, 1) - x).abs().mean())
                              for x in [to_tensor(load_image(images.content)), *_photos()]]
    assert errors["finetuned"][0] < 0.08  # the synthetic scene: the same bound as the pretrained decoder's test
    for tuned, pre in zip(errors["finetuned"][1:], errors["pretrained"][1:]):
        assert tuned < 0.12 and tuned <= 1.3 * pre


def test_shipped_discriminator_prefers_the_style_to_noise_and_to_other_styles(encoder: VGGEncoder) -> None:
    disc = MultiScaleDiscriminator()
    load_into(disc, "finetuned", "discriminator")
    rows = judge(disc.eval(), encoder, style_crops(assets.style_images()))
    assert len(rows) == 4
    for r in rows:  # the long run's D: own 0.73-0.95, noise -0.29-0.60, others 0.14-0.48
        assert r.own > r.noise, r
        assert r.own > r.others, r  # real crops of another style under this condition
