"""``tokengraft report``: a self-contained HTML page for each output folder
(flags map one-to-one onto :class:`tokengraft.report.ReportOptions`)."""
from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  tokengraft report out/smollm2-fr                       # -> out/smollm2-fr/report.html
  tokengraft report out/smollm2-fr out/smollm2-fr-healed
  tokengraft report out/smollm2-fr --out /tmp/fr.html

The page shows bits per byte and tokens per byte before and after (transplant.json, heal.json,
eval*.json), where the new rows came from and the tokens with the worst diagnostics
(transplant_tokens.jsonl), and the heal curve; plots are embedded PNGs, the page needs no other file.
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.flags import add_option_flags, field_comments
    from tokengraft.report.options import ReportOptions

    p = subparsers.add_parser("report", help="write an HTML report page for transplant/heal output folders",
                              description="Write one self-contained HTML page per run folder.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", metavar="DIR", nargs="+", help=field_comments(ReportOptions)["folders"])
    add_option_flags(p, ReportOptions, skip={"folders"}, metavars={"out": "FILE"})
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.cli.flags import options_from_args as build
    from tokengraft.report.options import ReportOptions

    return build(args, ReportOptions)


def run(args: argparse.Namespace) -> int:
    from tokengraft.report import write_reports

    for page in write_reports(options_from_args(args)):
        print(f"wrote {page}")
    return 0
