"""Batch throughput: one style encode for many contents, and the CLI's background I/O worker."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import content_array, cool_style_array
from PIL import Image

from semstyle.cli.main import main


def test_n_contents_cost_n_content_passes_and_one_style_encode(stylizer, monkeypatch: pytest.MonkeyPatch) -> None:
    style = Image.fromarray(cool_style_array(120, 88, seed=11))  # new to the session's style cache; its own shape
    contents = [Image.fromarray(content_array(128, 128, seed=20 + i)) for i in range(4)]
    calls: list[tuple[int, int]] = []
    encode = stylizer.networks.encode
    def counting(x, taps=("relu4_1",)):
        calls.append(tuple(x.shape[-2:]))
        return encode(x, taps)

    monkeypatch.setattr(stylizer.networks, "encode", counting)
    for c in contents:
        stylizer.stylize(c, style)
    style_shape = (96, 128)  # resized to 128×94 (style_size 128), padded to 128×96
    assert calls.count(style_shape) == 1
    assert len(calls) == len(contents) + 1


def _folder(root: Path, n: int) -> Path:
    folder = root / "contents"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(content_array(80, 64, seed=30 + i)).save(folder / f"c{i}.png")
    return folder


def test_cli_folder_reports_a_bad_image_in_one_line_and_writes_the_rest(
    images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, 3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    rc = main(["stylize", str(folder), str(images.style_a), "-o", str(out), "--size", "64", "--style-size", "64"])
    got = capsys.readouterr()
    assert rc == 2
    assert sorted(p.name for p in out.iterdir()) == ["c0__warm.png", "c1__warm.png", "c2__warm.png"]
    errors = [ln for ln in got.err.splitlines() if ln.startswith("semstyle: error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert "wrote 3 of 4 images" in got.out and "Traceback" not in got.err


def test_cli_worker_loads_and_saves_off_the_main_thread_and_reports_write_failures(
    images, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import semstyle.io.images as io_images

    folder = _folder(tmp_path, 4)
    threads: dict[str, set[str]] = {"load": set(), "save": set()}
    load, save = io_images.load_image, io_images.save_image

    def spy_load(src, *a, **k):
        if isinstance(src, (str, Path)) and Path(src).parent == folder:
            threads["load"].add(threading.current_thread().name)
        return load(src, *a, **k)

    def spy_save(im, path, *a, **k):
        threads["save"].add(threading.current_thread().name)
        if Path(path).name.startswith("c2"):
            raise OSError(28, "No space left on device")
        return save(im, path, *a, **k)

    monkeypatch.setattr(io_images, "load_image", spy_load)
    monkeypatch.setattr(io_images, "save_image", spy_save)
    out = tmp_path / "out"
    rc = main(["stylize", str(folder), str(images.style_a), "-o", str(out), "--size", "64", "--style-size", "64"])
    got = capsys.readouterr()
    assert rc == 2
    assert sorted(p.name for p in out.iterdir()) == ["c0__warm.png", "c1__warm.png", "c3__warm.png"]
    errors = [ln for ln in got.err.splitlines() if ln.startswith("semstyle: error:")]
    assert len(errors) == 1 and "c2.png" in errors[0] and "No space left" in errors[0]
    assert "wrote 3 of 4 images" in got.out
    main_thread = threading.main_thread().name
    assert threads["load"] and main_thread not in threads["load"]  # contents decoded by the worker
    assert threads["save"] and main_thread not in threads["save"]  # outputs written by the worker
    for name in ("c0__warm.png", "c3__warm.png"):
        assert np.asarray(Image.open(out / name)).shape == (51, 64, 3)
