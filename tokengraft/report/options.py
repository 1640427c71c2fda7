"""What ``tokengraft report`` is asked for: :class:`ReportOptions`, checked before any page is written."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tokengraft.errors import TokengraftError


@dataclass
class ReportOptions:
    folders: list[str] = field(default_factory=list)  # output folders of tokengraft transplant or heal
    out: str | None = None      # where to write the page (one folder only); default: DIR/report.html

    def validate(self) -> None:
        """One-line errors before any page is written: every folder is a run's, ``out`` can be written."""
        from tokengraft.assets.outputs import check_output_file
        from tokengraft.report.data import read_run

        if not self.folders:
            raise TokengraftError("tokengraft report needs at least one output folder (DIR ...)")
        if self.out is not None:
            if len(self.folders) > 1:
                raise TokengraftError("--out names one page; with several folders each gets its own DIR/report.html")
            check_output_file(self.out, flag="--out", example="report.html")
        for folder in self.folders:
            read_run(folder)  # a folder without records fails here, before any page is written
            page = Path(folder) / "report.html"
            if self.out is None and page.is_dir():
                raise TokengraftError(f"{page} is a folder; remove it or pass --out FILE")
