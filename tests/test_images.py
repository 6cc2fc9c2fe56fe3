"""Image input: every mode and array kind becomes 8-bit RGB; EXIF; pixel limits; atomic saves."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle.errors import InputError
from semstyle.io import images as I
from semstyle.io.files import list_images
from semstyle.io.images import check_output_path, load_image, resize_longest, save_image, to_pil, to_tensor

W, H = 24, 16


def _rgb(im: Image.Image) -> np.ndarray:
    assert im.mode == "RGB"
    assert im.size == (W, H)
    return np.asarray(im).astype(int)


def test_grayscale_file(tmp_path: Path) -> None:
    p = tmp_path / "g.png"
    Image.new("L", (W, H), 100).save(p)
    assert (_rgb(load_image(p)) == 100).all()


def test_rgba_file_is_composited_over_white(tmp_path: Path) -> None:
    arr = np.zeros((H, W, 4), np.uint8)
    arr[..., 0] = 255  # red
    arr[:, : W // 2, 3] = 255  # left half opaque
    arr[:, W // 2 :, 3] = 0  # right half transparent
    p = tmp_path / "a.png"
    Image.fromarray(arr, "RGBA").save(p)
    out = _rgb(load_image(p))
    assert (out[:, : W // 2] == [255, 0, 0]).all()
    assert (out[:, W // 2 :] == [255, 255, 255]).all()


def test_la_file(tmp_path: Path) -> None:
    p = tmp_path / "la.png"
    Image.new("LA", (W, H), (50, 255)).save(p)
    assert (_rgb(load_image(p)) == 50).all()


def test_palette_file_without_transparency(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, : W // 2] = (10, 200, 30)
    rgb[:, W // 2 :] = (240, 20, 100)
    p = tmp_path / "p.png"
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert "transparency" not in im.info
    im.save(p)
    assert Image.open(p).mode == "P"
    assert (_rgb(load_image(p)) == rgb).all()


def test_palette_file_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (W, H), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    im.paste(1, (0, 0, W // 2, H))  # left half colour 1 (blue), right half colour 0 (transparent)
    p = tmp_path / "pt.png"
    im.save(p, transparency=0)
    assert Image.open(p).info.get("transparency") == 0
    out = _rgb(load_image(p))
    assert (out[:, : W // 2] == [0, 0, 255]).all()
    assert (out[:, W // 2 :] == [255, 255, 255]).all()  # transparent → white, not black


def test_cmyk_file(tmp_path: Path) -> None:
    p = tmp_path / "c.jpg"
    Image.new("CMYK", (W, H), (0, 255, 255, 0)).save(p, quality=100)  # pure red ink mix
    assert Image.open(p).mode == "CMYK"
    out = _rgb(load_image(p))
    assert (np.abs(out - [255, 0, 0]) < 12).all()


def test_16_bit_png(tmp_path: Path) -> None:
    arr = np.zeros((H, W), np.uint16)
    arr[:, : W // 2] = 65535
    arr[:, W // 2 :] = 32896  # 128·257
    p = tmp_path / "16.png"
    Image.fromarray(arr).save(p)
    assert Image.open(p).mode.startswith("I")
    out = _rgb(load_image(p))
    assert (out[:, : W // 2] == 255).all()
    assert (out[:, W // 2 :] == 128).all()


def test_float_numpy_array() -> None:
    arr = np.zeros((H, W, 3), np.float32)
    arr[..., 1] = 0.5
    arr[0, 0] = [2.0, -1.0, 1.0]  # out of range values are clipped
    out = _rgb(load_image(arr))
    assert (out[1:, :, 1] == 128).all() and (out[1:, :, 0] == 0).all()
    assert out[0, 0].tolist() == [255, 0, 255]


def test_float_numpy_with_nan_is_refused() -> None:
    arr = np.zeros((H, W, 3))
    arr[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        load_image(arr)


def test_uint16_numpy_array() -> None:
    arr = np.full((H, W, 3), 65535, np.uint16)
    arr[..., 2] = 257 * 64
    out = _rgb(load_image(arr))
    assert (out[..., 0] == 255).all() and (out[..., 2] == 64).all()


def test_grayscale_and_rgba_numpy_arrays() -> None:
    assert (_rgb(load_image(np.full((H, W), 7, np.uint8))) == 7).all()
    assert (_rgb(load_image(np.full((H, W, 1), 9, np.uint8))) == 9).all()
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = 255
    assert (_rgb(load_image(rgba)) == 0).all()


@pytest.mark.parametrize("shape", [(3, H, W), (1, 3, H, W)])
def test_tensor_input(shape: tuple[int, ...]) -> None:
    t = torch.zeros(shape)
    t[..., 0, :, :] = 1.0
    t[..., 2, :, :] = 0.25
    out = _rgb(load_image(t))
    assert (out == [255, 0, 64]).all()


def test_tensor_round_trip() -> None:
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    t = to_tensor(im)
    assert t.shape == (1, 3, H, W) and t.dtype == torch.float32 and 0 <= float(t.min()) <= float(t.max()) <= 1
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(im))
    assert np.array_equal(np.asarray(load_image(t)), np.asarray(im))


@pytest.mark.parametrize(
    ("bad", "message"),
    [(np.zeros((H, W, 2), np.uint8), r"array must be \(H, W\) or \(H, W, 3\|4\), got shape \(16, 24, 2\)"),
     (np.zeros((2, H, W, 3), np.uint8), r"array must be \(H, W\) or \(H, W, 3\|4\), got shape \(2, 16, 24, 3\)"),
     (torch.zeros(2, 3, H, W), r"tensor must be \(3, H, W\) or \(1, 3, H, W\), got \(2, 3, 16, 24\)"),
     (np.zeros((H, W, 3), np.int64), r"unsupported dtype int64; use uint8, uint16 or float"),
     (42, r"must be a path, PIL image, numpy array or tensor, got int")],
    ids=["2-channels", "4-d-array", "batch-tensor", "int64", "number"],
)
def test_unsupported_inputs_are_input_errors(bad: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_image(bad)  # type: ignore[arg-type]


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red
    arr[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    p = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(p, exif=exif, quality=95)
    assert Image.open(p).size == (40, 20)
    im = load_image(p)
    assert im.size == (20, 40)  # transposed
    out = np.asarray(im).astype(int)
    # turning clockwise puts the left half on top
    assert out[:15, :, 0].mean() > 200 and out[:15, :, 2].mean() < 50
    assert out[25:, :, 2].mean() > 200 and out[25:, :, 0].mean() < 50


def test_exif_orientation_of_pil_input() -> None:
    im = Image.new("RGB", (40, 20))
    exif = im.getexif()
    exif[0x0112] = 8
    im.info["exif"] = exif.tobytes()
    assert load_image(im).size == (20, 40)


def test_pixel_limit_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "big.png"
    Image.new("RGB", (100, 50)).save(p)
    assert load_image(p, max_pixels=5000).size == (100, 50)
    with pytest.raises(InputError, match=r"100x50 = 5,000 pixels, over the limit of 4,999.*--max-pixels"):
        load_image(p, max_pixels=4999)
    with pytest.raises(InputError, match="over the limit"):
        load_image(Image.new("RGB", (100, 50)), max_pixels=4999)
    with pytest.raises(InputError, match="over the limit"):
        load_image(np.zeros((50, 100, 3), np.uint8), max_pixels=4999)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (a decompression bomb in spirit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [5000, 100_000])
def test_oversized_header_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_claiming(side, side))
    with pytest.raises(InputError, match="over the limit|too large"):
        load_image(p, max_pixels=1_000_000)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b""), "is an empty file"),
        (lambda p: p.write_text("hello, not an image"), "is not an image file"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["missing", "empty", "text", "folder"],
)
def test_bad_files(tmp_path: Path, make, message: str) -> None:
    p = tmp_path / "x.jpg"
    make(p)
    with pytest.raises(InputError, match=message):
        load_image(p)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_files(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(0)
    p = tmp_path / f"t.{fmt}"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(InputError, match="damaged or truncated"):
        load_image(p)


def test_resize_longest_keeps_aspect_ratio() -> None:
    assert resize_longest(Image.new("RGB", (200, 90)), 128).size == (128, 58)  # 90·0.64 = 57.6
    assert resize_longest(Image.new("RGB", (90, 200)), 128).size == (58, 128)
    assert resize_longest(Image.new("RGB", (50, 20)), 100).size == (100, 40)  # upscaling too
    im = Image.new("RGB", (200, 90))
    assert resize_longest(im, 0) is im


def test_save_image_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "new" / "sub" / "out.png"
    im = Image.new("RGB", (8, 6), (1, 2, 3))
    assert save_image(im, out) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.png"]  # no temp file left
    assert np.asarray(Image.open(out)).tolist() == np.asarray(im).tolist()
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        save_image(Image.new("RGB", (8, 6)), out)
    assert np.asarray(Image.open(out))[0, 0].tolist() == [1, 2, 3]  # untouched
    save_image(Image.new("RGB", (8, 6), (9, 9, 9)), out, overwrite=True)
    assert np.asarray(Image.open(out))[0, 0].tolist() == [9, 9, 9]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.png"]


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.jpg"

    def boom(self, fp, format=None, **params):  # noqa: A002
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_image(Image.new("RGB", (8, 6)), out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".PNG"])
def test_save_formats(tmp_path: Path, suffix: str) -> None:
    out = save_image(Image.new("RGB", (8, 6), (200, 100, 50)), tmp_path / f"o{suffix}")
    assert Image.open(out).format == I.OUTPUT_FORMATS[suffix.lower()]


def test_check_output_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown output extension '\.xyz'"):
        check_output_path(tmp_path / "o.xyz", overwrite=True)
    with pytest.raises(InputError, match="unknown output extension ''"):
        check_output_path(tmp_path / "noext", overwrite=True)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path / "d.png", overwrite=False)


def test_list_images(tmp_path: Path) -> None:
    for name in ["b.png", "a.JPG", "c.txt", "d.gif"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "e.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "d.gif"]
