"""docs/BENCHMARKS.md's rebuild keeps the sections other benchmarks wrote after its marker."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the report generator lives with the scripts that write docs/

from bench_report import KEPT, write_markdown  # noqa: E402


def test_rebuild_keeps_the_sections_after_the_marker(tmp_path: Path) -> None:
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    runs.mkdir()
    docs.mkdir()
    tail = f"{KEPT}\n\n## Web server under load\n\n| clients | 20 |\n"
    (docs / "BENCHMARKS.md").write_text("# Benchmarks\n\nan old build\n\n" + tail)
    text = write_markdown(runs, docs).read_text()
    assert "an old build" not in text and text.startswith("# Benchmarks\n\nBuilt on ")
    assert text.endswith("\n\n" + tail) and text.count(KEPT) == 1
    again = write_markdown(runs, docs).read_text()
    assert again.count(KEPT) == 1 and again.endswith("\n\n" + tail)  # stable across rebuilds
    (docs / "BENCHMARKS.md").write_text("# Benchmarks\n\nno marker\n")
    assert KEPT not in write_markdown(runs, docs).read_text()


def test_the_committed_page_has_the_marker_before_the_web_section() -> None:
    text = (REPO / "docs" / "BENCHMARKS.md").read_text()
    assert KEPT in text and text.index(KEPT) < text.index("## Web server under load")
