"""``tokengraft compare``: BPB ratios of models scored by ``tokengraft eval --json`` on the same text,
with a paired bootstrap interval over documents (flags map one-to-one onto :class:`CompareOptions`)."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

EPILOG = """examples:
  tokengraft eval --model smollm2-135m --text libreoffice:de:dev --max-bytes 100000 --json out/original.json
  tokengraft eval --model out/smollm2-de-healed --text libreoffice:de:dev --max-bytes 100000 --json out/healed.json
  tokengraft compare out/original.json out/healed.json

Each ratio is the model's BPB over the first file's, on the same documents; the interval
resamples documents (both models on each draw), so it says how much the choice of text moves
the ratio. It does not cover a training run's own noise: rerun with another seed for that.
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.measure.compare import CompareOptions

    p = subparsers.add_parser("compare", help="BPB ratios of eval results, with a bootstrap interval over documents",
                              description="Compare `tokengraft eval --json` results scored on the same documents: "
                                          "each model's BPB over the first one's, per corpus, with a paired "
                                          "bootstrap interval over documents.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", metavar="JSON", nargs="+", help="eval results; the first is the base of every ratio")
    p.add_argument("--json", metavar="OUT", help="also write the ratios as JSON to this file")
    add_option_flags(p, CompareOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tokengraft.assets.outputs import check_output_file, write_text
    from tokengraft.cli.flags import options_from_args
    from tokengraft.errors import TokengraftError
    from tokengraft.measure.compare import CompareOptions, compare_results, format_ratios

    options = options_from_args(args, CompareOptions)
    options.validate()
    if len(args.results) < 2:
        raise TokengraftError("compare needs at least two eval results: the base first, then the models to compare with it")
    if args.json:
        check_output_file(args.json, flag="--json")
    results = []
    for path in args.results:
        try:
            results.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise TokengraftError(f"{path} does not exist; write it with `tokengraft eval ... --json {path}`") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TokengraftError(f"{path} is not JSON ({exc}); give files written by `tokengraft eval --json`") from None
    rows = compare_results(results[0], results[1:], options, names=args.results)
    print(format_ratios(rows, options.level))
    if args.json:
        write_text(args.json, json.dumps({"options": asdict(options), "ratios": [asdict(r) for r in rows]}, indent=2) + "\n",
                   flag="--json")
    return 0
