"""``tokengraft report``: a self-contained HTML page for each output folder."""
from __future__ import annotations

import argparse
from typing import Any

from tokengraft.errors import TokengraftError

EPILOG = """examples:
  tokengraft report out/smollm2-fr                       # -> out/smollm2-fr/report.html
  tokengraft report out/smollm2-fr out/smollm2-fr-healed
  tokengraft report out/smollm2-fr --out /tmp/fr.html

The page shows bits per byte and tokens per byte before and after (transplant.json, heal.json,
eval*.json), where the new rows came from and the tokens with the worst diagnostics
(transplant_tokens.jsonl), and the heal curve; plots are embedded PNGs, the page needs no other file.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="write an HTML report page for transplant/heal output folders",
                              description="Write one self-contained HTML page per run folder.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", metavar="DIR", nargs="+", help="output folders of tokengraft transplant or heal")
    p.add_argument("--out", metavar="FILE", help="where to write the page (one folder only; default DIR/report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tokengraft.report import write_report

    if args.out and len(args.folders) > 1:
        raise TokengraftError("--out names one page; with several folders each gets its own DIR/report.html")
    for folder in args.folders:
        print(f"wrote {write_report(folder, args.out)}")
    return 0
