"""``tokengraft tokenizer mixture``: flags map one-to-one onto :class:`MixtureOptions`."""
from __future__ import annotations

import argparse
from typing import Any

from tokengraft.errors import TokengraftError

MIXTURE_EPILOG = """examples:
  tokengraft tokenizer mixture --tokenizer gpt2 --category en=libreoffice:en:train \\
      --category de=libreoffice:de:train --category code=python-stdlib:train --merges 10000
  tokengraft tokenizer mixture --tokenizer llama3 --skip 100000 --merges 27066 \\
      --category en=libreoffice:en:train --category ru=libreoffice:ru:train --json out/llama3.json --plot out/llama3.png
"""


def add_parser(sub: Any) -> None:
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.tokenizer.mixture import MixtureOptions

    m = sub.add_parser("mixture", help="infer a BPE tokenizer's training data mixture", epilog=MIXTURE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Read from a BPE merge list what share of its training text each category "
                                   "was (Hayase et al. 2024): counts pairs in a sample of each category at every "
                                   "merge and solves a linear program.")
    m.add_argument("--tokenizer", required=True, metavar="SPEC", help="built-in name, folder or file (BPE only)")
    m.add_argument("--category", action="append", required=True, metavar="NAME=CORPUS",
                   help="a candidate category and a corpus to sample it from, repeatable")
    add_option_flags(m, MixtureOptions, flags={"show_progress": "--no-progress"})
    m.add_argument("--json", metavar="OUT", help="write {category: proportion} as JSON")
    m.add_argument("--plot", metavar="OUT.png", help="write a bar plot")
    m.set_defaults(action=run_mixture)


def parse_categories(items: list[str]) -> dict[str, str]:
    """``["en=libreoffice:en", "python-stdlib"]`` -> ``{"en": "libreoffice:en", "python-stdlib": ...}``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name, spec = (name.strip(), spec.strip()) if sep else (item, item)
        if not name or not spec:
            raise TokengraftError(f"category {item!r} needs a name and a corpus: NAME=CORPUS")
        if name in out:
            raise TokengraftError(f"category {name!r} is given twice; give each category one corpus")
        out[name] = spec
    return out


def run_mixture(args: argparse.Namespace) -> int:
    from tokengraft.assets import load_corpus
    from tokengraft.cli.flags import options_from_args
    from tokengraft.tokenizer.mixture import MixtureOptions, check_options, infer_mixture
    from tokengraft.tokenizer.mixture_report import format_mixture, plot_mixture, write_mixture_json
    from tokengraft.tokenizer.train import read_tokenizer

    options = options_from_args(args, MixtureOptions)
    check_options(options)
    specs = parse_categories(args.category)
    tokenizer = read_tokenizer(args.tokenizer, "tokenizer")
    categories = {name: load_corpus(spec).texts() for name, spec in specs.items()}
    result = infer_mixture(tokenizer, categories, options, name=args.tokenizer)
    print(format_mixture(result))
    if args.json:
        print(f"wrote {write_mixture_json(result, args.json)}")
    if args.plot:
        print(f"wrote {plot_mixture(result, args.plot)}")
    return 0
