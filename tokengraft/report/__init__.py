"""``tokengraft report DIR...``: one self-contained HTML page per run, from the folder's records."""
from __future__ import annotations

from tokengraft.report.page import REPORT, render, write_report

__all__ = ["REPORT", "render", "write_report"]
