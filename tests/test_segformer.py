"""The SegFormer segmenter, offline: a tiny randomly initialised model built from a config.

Nothing here downloads: models are built in memory or saved to a temporary folder, and the one
hub-id test runs in a subprocess with ``HF_HUB_OFFLINE=1`` and an empty HF cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from semstyle.errors import WeightsError
from semstyle.segmentation import segformer as S

if TYPE_CHECKING:  # transformers (the segformer extra, which make test has) is imported by the tests that use it:
    from transformers import SegformerForSemanticSegmentation  # collecting it costs each xdist worker ~6 s

SKY, BUILDING, VEGETATION, WATER, GROUND, PERSON, MOUNTAIN, OTHER = 1, 2, 3, 4, 5, 6, 7, 0


def tiny_model(seed: int = 0, bias: dict[int, float] | None = None) -> SegformerForSemanticSegmentation:
    """A ~20k-parameter SegFormer with the 150 ADE20K labels; ``bias`` rigs the classifier to constant logits."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(seed)
    cfg = SegformerConfig(
        num_labels=150,
        id2label=dict(enumerate(S.ADE20K_CLASSES)),
        label2id={n: i for i, n in enumerate(S.ADE20K_CLASSES)},
        depths=[1, 1, 1, 1],
        hidden_sizes=[8, 8, 16, 16],
        num_attention_heads=[1, 1, 1, 1],
        mlp_ratios=[1, 1, 1, 1],
        decoder_hidden_size=16,
    )
    model = SegformerForSemanticSegmentation(cfg).eval()
    if bias is not None:
        clf = model.decode_head.classifier
        with torch.no_grad():
            clf.weight.zero_()
            clf.bias.fill_(-20.0)
            for i, v in bias.items():
                clf.bias[i] = v
    return model


def random_image(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def tiny() -> SegformerForSemanticSegmentation:
    return tiny_model()


@pytest.fixture(scope="module")
def seg(tiny: SegformerForSemanticSegmentation) -> S.SegformerSegmenter:
    return S.SegformerSegmenter(model=tiny, size=64)


@pytest.mark.parametrize("w,h", [(53, 37), (17, 101), (128, 128), (1, 3)])
def test_labels_at_image_size_in_range_and_deterministic(seg: S.SegformerSegmenter, w: int, h: int) -> None:
    img = random_image(w, h, seed=w * h)
    out = seg(img)
    assert out.shape == (h, w) and out.dtype == np.int64
    assert out.min() >= 0 and out.max() < 150
    assert np.array_equal(out, seg(img))


def test_labels_are_the_upsampled_argmax_of_the_logits(seg: S.SegformerSegmenter, tiny) -> None:
    img = random_image(75, 43, seed=5)
    x = seg._preprocess(img)
    assert x.shape[-2:] == (32, 64)  # longest side 64, aspect kept, multiples of 32
    with torch.no_grad():
        logits = tiny(pixel_values=x).logits
    ref = F.interpolate(logits, size=(43, 75), mode="bilinear", align_corners=False)[0].argmax(0).numpy()
    out = seg(img)
    assert len(np.unique(out)) > 3  # the random model really varies over the image
    assert np.array_equal(out, ref)


def test_chunked_upsampling_equals_full_upsampling() -> None:
    scores = torch.randn(37, 5, 7, generator=torch.Generator().manual_seed(0))
    full = F.interpolate(scores[None], size=(23, 41), mode="bilinear", align_corners=False)[0].argmax(0)
    for budget in (1, 23 * 41 * 4, 1 << 30):  # one channel at a time, 4 at a time, all at once
        assert torch.equal(S.upsample_argmax(scores, (23, 41), budget=budget), full)


def test_inference_size_keeps_aspect_and_rounds() -> None:
    assert S.inference_size(1024, 512, 512) == (512, 256)
    assert S.inference_size(300, 1000, 512) == (160, 512)
    assert S.inference_size(5, 5, 512) == (512, 512)
    assert S.inference_size(10, 1000, 512) == (32, 512)


def test_coarse_grouping_of_ade20k_ids() -> None:
    expect = {
        2: SKY, 1: BUILDING, 25: BUILDING, 48: BUILDING, 84: BUILDING, 0: BUILDING,
        4: VEGETATION, 9: VEGETATION, 17: VEGETATION, 66: VEGETATION, 72: VEGETATION,
        21: WATER, 26: WATER, 60: WATER, 113: WATER, 128: WATER,
        3: GROUND, 6: GROUND, 11: GROUND, 13: GROUND, 29: GROUND, 46: GROUND, 52: GROUND,
        12: PERSON, 16: MOUNTAIN, 34: MOUNTAIN, 68: MOUNTAIN,
        20: OTHER, 7: OTHER, 126: OTHER, 149: OTHER,
    }  # fmt: skip
    for ade_id, group in expect.items():
        assert S.ADE20K_COARSE[ade_id] == group, S.ADE20K_CLASSES[ade_id]
    assert len(S.ADE20K_COARSE) == 150 and set(S.ADE20K_COARSE.values()) == set(S.COARSE_NAMES)
    assert S.COARSE_NAMES[SKY] == "sky" and S.COARSE_NAMES[OTHER] == "other"
    # names as other configs spell them: synonyms after ';' or ',', stray spaces, capitals
    lut = S.coarse_lut({0: "Building;edifice", 1: "sky ", 2: "tree, arbor", 3: "windowpane;window "})
    assert lut.tolist() == [BUILDING, SKY, VEGETATION, OTHER]


def test_names_come_from_the_config(seg: S.SegformerSegmenter, tiny) -> None:
    assert seg.names()[2] == "sky" and seg.names()[48] == "skyscraper" and len(seg.names()) == 150
    coarse = S.SegformerSegmenter(model=tiny, size=64, coarse=True)
    assert coarse.names() == S.COARSE_NAMES


def test_rigged_model_fine_and_coarse() -> None:
    img = random_image(45, 31)
    model = tiny_model(bias={48: 5.0})  # every pixel "skyscraper"
    assert np.all(S.SegformerSegmenter(model=model, size=64)(img) == 48)
    assert np.all(S.SegformerSegmenter(model=model, size=64, coarse=True)(img) == BUILDING)
    # sky is the single most likely class, but tree + plant + palm together outweigh it:
    # the coarse label is the group with the largest summed probability
    model = tiny_model(bias={2: 1.0, 4: 0.9, 17: 0.9, 72: 0.9})
    assert np.all(S.SegformerSegmenter(model=model, size=64)(img) == 2)
    assert np.all(S.SegformerSegmenter(model=model, size=64, coarse=True)(img) == VEGETATION)


def test_local_folder_round_trip(tmp_path: Path, tiny, seg: S.SegformerSegmenter, monkeypatch) -> None:
    folder = tmp_path / "tiny-segformer"
    tiny.save_pretrained(folder)
    img = random_image(40, 29, seed=9)
    loaded = S.SegformerSegmenter(str(folder), size=64)
    assert np.array_equal(loaded(img), seg(img))
    monkeypatch.setenv(S.ENV_VAR, str(folder))
    S.clear_shared()
    try:
        shared = S.shared_segmenter("cpu")
        assert shared.source == str(folder)
        assert S.shared_segmenter(torch.device("cpu")) is shared  # one instance per process
        assert S.shared_segmenter("cpu", coarse=True) is not shared
        assert np.array_equal(shared(img), S.SegformerSegmenter(model=tiny)(img))  # default size 512
    finally:
        S.clear_shared()


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_local_folder_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(S.ENV_VAR, str(tmp_path / "no-such-model"))
    with pytest.raises(WeightsError, match="no SegFormer model folder") as err:
        S.SegformerSegmenter()
    msg = _one_line(err)
    assert "no SegFormer model folder" in msg and "no-such-model" in msg and S.ENV_VAR in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no SegFormer model folder"):
        S.SegformerSegmenter(tmp_path / "empty")


def test_broken_local_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "segformer"}')
    with pytest.raises(WeightsError, match="could not download or load") as err:
        S.SegformerSegmenter(str(tmp_path))
    msg = _one_line(err)
    assert "could not download or load" in msg and S.ENV_VAR in msg


def test_missing_transformers_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(WeightsError, match=r"pip install semstyle\[segformer\]") as err:
        S.SegformerSegmenter("nvidia/whatever")
    assert "pip install semstyle[segformer]" in _one_line(err)


def test_offline_hub_id_without_cache_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop(S.ENV_VAR, None)
    code = (
        "from semstyle.segmentation.segformer import SegformerSegmenter\n"
        "from semstyle.errors import WeightsError\n"
        "try:\n    SegformerSegmenter()\nexcept WeightsError as e:\n    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    msg = res.stdout.strip()
    assert msg.startswith("could not download or load the SegFormer model 'nvidia/segformer-b0-finetuned-ade-512-512'")
    assert S.ENV_VAR in msg and "\n" not in msg


def test_stylizer_semantic_segformer_end_to_end(stylizer, images, monkeypatch) -> None:
    # a content-dependent model: a random tiny net whose labels vary across the image
    tiny_seg = S.SegformerSegmenter(model=tiny_model(seed=3), size=64)
    calls: list[str] = []

    def fake_shared(device: object, coarse: bool = False) -> S.SegformerSegmenter:
        calls.append(str(device))
        return tiny_seg

    monkeypatch.setattr(S, "shared_segmenter", fake_shared)
    res = stylizer.stylize(images.content, images.style_a, semantic="segformer")
    content = Image.open(images.content).convert("RGB")
    assert calls == ["cpu"]
    assert res.image.size == content.size
    # the pipeline's labels are the segmenter's (up to tiny regions merged into their neighbours)
    raw = tiny_seg(content)
    assert len(np.unique(raw)) > 1 and np.mean(res.content_labels == raw) > 0.9
    assert set(np.unique(res.content_labels)) <= set(np.unique(raw))
    raw_style = tiny_seg(Image.open(images.style_a).convert("RGB"))
    assert np.mean(res.style_labels[0] == raw_style) > 0.9
    arr = np.asarray(res.image, dtype=np.float64)
    assert np.isfinite(arr).all() and arr.std() > 5  # a real picture, not a flat fill
    plain = np.asarray(stylizer.stylize(images.content, images.style_a).image, dtype=np.float64)
    assert np.abs(arr - plain).mean() > 0.5  # the regions changed the result
