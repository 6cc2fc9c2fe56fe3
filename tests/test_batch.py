"""Batches on the local engine: one style encode for many contents, background I/O, the report,
resume after an interruption, globs, and a bad input that never stops the others."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import content_array, cool_style_array
from PIL import Image

from semstyle.batch import REPORT_NAME, ReportRow, plan, read_report
from semstyle.cli.main import main
from semstyle.config import NetworkConfig, StylizeOptions
from semstyle.errors import InputError


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
    assert rc == 1  # everything else was done first
    assert sorted(p.name for p in out.iterdir()) == ["c0__warm.png", "c1__warm.png", "c2__warm.png", "report.csv"]
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
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["c0__warm.png", "c1__warm.png", "c3__warm.png", "report.csv"]
    errors = [ln for ln in got.err.splitlines() if ln.startswith("semstyle: error:")]
    assert len(errors) == 1 and "c2.png" in errors[0] and "No space left" in errors[0]
    assert "wrote 3 of 4 images" in got.out
    main_thread = threading.main_thread().name
    assert threads["load"] and main_thread not in threads["load"]  # contents decoded by the worker
    assert threads["save"] and main_thread not in threads["save"]  # outputs written by the worker
    for name in ("c0__warm.png", "c3__warm.png"):
        assert np.asarray(Image.open(out / name)).shape == (51, 64, 3)


def _rows(out: Path) -> dict[str, ReportRow]:
    return {Path(r.output).name: r for r in read_report(out / REPORT_NAME)}


def test_report_has_one_row_per_job_with_status_message_and_time(images, tmp_path: Path) -> None:
    folder = _folder(tmp_path, 2)
    (folder / "empty.png").write_bytes(b"")
    (folder / "huge.png").write_bytes(_bomb_png(30000, 30000))  # 900 Mpx in a few kB
    out = tmp_path / "out"
    rc = main(["stylize", str(folder), str(images.style_a), str(images.style_b), "-o", str(out),
               "--size", "64", "--style-size", "64"])
    assert rc == 1
    rows = _rows(out)
    assert len(rows) == 4 * 2  # 4 contents × 2 styles
    ok = {f"c{i}__{s}.png" for i in range(2) for s in ("warm", "cool")}
    assert {n for n, r in rows.items() if r.status == "ok"} == ok
    assert "too large" in rows["huge__warm.png"].message or "pixels" in rows["huge__warm.png"].message
    assert rows["empty__cool.png"].status == "error" and rows["empty__cool.png"].message
    for r in rows.values():
        assert r.input.endswith(".png") and r.style.endswith((".png",)) and r.seconds >= 0 and ":" in r.worker
        assert (Path(r.output).exists()) == (r.status == "ok")


def test_rerun_skips_what_exists_and_redoes_only_the_missing(images, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, 3)
    out = tmp_path / "out"
    argv = ["stylize", str(folder), str(images.style_a), "-o", str(out), "--size", "64", "--style-size", "64"]
    assert main(argv) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    (out / "c1__warm.png").unlink()  # as if the first run had been killed before it
    capsys.readouterr()
    assert main(argv) == 0
    rows = _rows(out)
    assert rows["c1__warm.png"].status == "ok" and (out / "c1__warm.png").exists()
    assert rows["c0__warm.png"].status == rows["c2__warm.png"].status == "skipped"
    assert {p: (out / p).stat().st_mtime_ns for p in ("c0__warm.png", "c2__warm.png")} == \
        {p: first[p] for p in ("c0__warm.png", "c2__warm.png")}  # untouched
    assert "wrote 1 of 3 images" in capsys.readouterr().out
    assert main([*argv, "--overwrite"]) == 0
    assert {r.status for r in _rows(out).values()} == {"ok"}


def test_glob_and_list_inputs_through_the_api(images, tmp_path: Path) -> None:
    from semstyle import StylizeConfig
    from semstyle.batch import stylize_many

    folder = _folder(tmp_path, 3)
    seen = []
    res = stylize_many(str(folder / "c[02].png"), [images.style_b], tmp_path / "out", callback=seen.append,
                       config=StylizeConfig(NetworkConfig(device="cpu"), StylizeOptions(size=64, style_size=64)))
    assert sorted(Path(r.output).name for r in res.rows) == ["c0__cool.png", "c2__cool.png"]
    assert res.written == 2 and res.failed == 0 and [r.output for r in seen] == [r.output for r in res.rows]
    assert res.report == tmp_path / "out" / REPORT_NAME and len(read_report(res.report)) == 2
    with pytest.raises(InputError, match="matches no images"):
        stylize_many(str(folder / "*.jpg"), images.style_b, tmp_path / "out")


def test_plan_refuses_two_inputs_writing_one_output(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="would both write"):
        plan([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], [tmp_path / "s.png"], tmp_path / "out")
    with pytest.raises(InputError, match="must be a folder"):
        plan([tmp_path / "x.png"], [tmp_path / "s.png"], tmp_path / "out.png")


def test_interrupted_batch_leaves_a_report_and_whole_files(images, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from semstyle.pipelines.stylize import Stylizer

    folder = _folder(tmp_path, 4)
    real, calls = Stylizer.run, []

    def interrupt_third(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Stylizer, "run", interrupt_third)
    out = tmp_path / "out"
    argv = ["stylize", str(folder), str(images.style_a), "-o", str(out), "--size", "64", "--style-size", "64"]
    assert main(argv) == 130
    assert sorted(p.name for p in out.iterdir()) == ["c0__warm.png", "c1__warm.png", "report.csv"]  # no temp files
    assert {n: r.status for n, r in _rows(out).items()} == {"c0__warm.png": "ok", "c1__warm.png": "ok"}
    monkeypatch.setattr(Stylizer, "stylize", real)
    assert main(argv) == 0
    assert [r.status for _, r in sorted(_rows(out).items())] == ["skipped", "skipped", "ok", "ok"]


def test_ray_flags_need_the_ray_engine(images, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, 1)
    cases = [(["--workers", "0", "--engine", "ray"], "--workers must be at least 1"),
             (["--ray-address", "10.0.0.1:6379"], "add --engine ray"),
             (["--engine", "ray", "--batch-size", "0"], "--batch-size must be at least 1")]
    for extra, msg in cases:
        assert main(["stylize", str(folder), str(images.style_a), "-o", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert main(["stylize", str(images.content), str(images.style_a), "-o", str(tmp_path / "o.png"),
                 "--engine", "ray"]) == 2
    assert "folder or a glob" in capsys.readouterr().err


def _bomb_png(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = zlib.compress(b"\0" * 64)  # not the whole image: the header alone must get it refused
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", raw) \
        + chunk(b"IEND", b"")


def test_the_local_engine_needs_no_ray(images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the distributed extra were not installed
    folder = _folder(tmp_path, 1)
    argv = ["stylize", str(folder), str(images.style_a), "-o", str(tmp_path / "out"), "--size", "64",
            "--style-size", "64"]
    assert main(argv) == 0
    assert main([*argv, "--engine", "ray", "-o", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["semstyle: error: --engine ray needs Ray: pip install 'semstyle[distributed]' (or 'ray[data]')"]
