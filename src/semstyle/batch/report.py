"""The batch report: ``OUTDIR/report.csv``, one row per job (input, style, output, status, message,
seconds, worker). It is rewritten atomically (temporary file, then rename) as rows arrive, at most
every ``interval`` seconds and once at the end, so a crash leaves the last complete version."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

from semstyle.batch.jobs import ReportRow

REPORT_NAME = "report.csv"
COLUMNS = tuple(f.name for f in fields(ReportRow))


@dataclass
class Report:
    """The rows of one batch run, written to ``path`` as they come."""

    path: Path  # where the CSV goes (its folder is created)
    interval: float = 2.0  # rewrite the file at most this often while rows arrive
    rows: list[ReportRow] = field(default_factory=list)
    _written: float = field(default=0.0, init=False, repr=False)  # when the file was last rewritten

    def add(self, row: ReportRow) -> None:
        self.rows.append(row)
        if time.monotonic() - self._written >= self.interval:
            self.write()

    def write(self) -> Path:
        """Rewrite the whole file atomically; rows are sorted by output path (stable across engines)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for row in sorted(self.rows, key=lambda r: r.output):
            w.writerow(astuple(row))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="") as f:
                f.write(buf.getvalue())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._written = time.monotonic()
        return self.path

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)


def read_report(path: str | os.PathLike) -> list[ReportRow]:
    """The rows of a report file (as written by :class:`Report`)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [ReportRow(**{**r, "seconds": float(r["seconds"])}) for r in rows]  # type: ignore[arg-type]


__all__ = ["COLUMNS", "REPORT_NAME", "Report", "read_report"]
