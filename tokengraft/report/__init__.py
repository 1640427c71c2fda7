"""``tokengraft report DIR...``: one self-contained HTML page per run, from the folder's records."""
from __future__ import annotations

from tokengraft.report.options import ReportOptions
from tokengraft.report.page import REPORT, render, write_report

__all__ = ["REPORT", "ReportOptions", "render", "write_report", "write_reports"]


def write_reports(options: ReportOptions) -> list:
    """Check ``options``, then write one page per folder; return the pages' paths."""
    options.validate()
    return [write_report(folder, options.out) for folder in options.folders]
