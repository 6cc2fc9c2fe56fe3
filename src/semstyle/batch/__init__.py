"""Batch stylisation: many contents × many styles into a folder, resumable, with a report, on one
machine (``engine="local"``) or on a Ray cluster (``engine="ray"``).

Layout: ``jobs`` (plain-data jobs and the runner both engines share) → ``local`` / ``distributed``
(the engines) → ``report`` (the CSV) → ``api`` (:func:`stylize_many`, :func:`run_batch`).
"""

from __future__ import annotations

from semstyle.batch.api import BatchResult, run_batch, stylize_many
from semstyle.batch.distributed import RayOptions
from semstyle.batch.jobs import BatchJob, BatchOptions, ReportRow, expand_inputs, plan
from semstyle.batch.report import REPORT_NAME, read_report

__all__ = ["REPORT_NAME", "BatchJob", "BatchOptions", "BatchResult", "RayOptions", "ReportRow", "expand_inputs",
           "plan", "read_report", "run_batch", "stylize_many"]
