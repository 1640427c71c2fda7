"""``tokengraft transplant``: flags map one-to-one onto :class:`TransplantOptions`."""
from __future__ import annotations

import argparse
import json
from typing import Any

from tokengraft.errors import TokengraftError

EPILOG = """examples:
  tokengraft transplant --model smollm2-135m --tokenizer out/tok-fr-bpe32k --method fvt --out out/smollm2-fr
  tokengraft transplant --model smollm2-135m --tokenizer gemma3-270m --method omp --donor gemma3-270m --out out/smollm2-gemma
  tokengraft transplant --model smollm2-135m --tokenizer out/tok-de-bpe32k --method omp --aux minilm-l6 --out out/smollm2-de-omp
  tokengraft transplant --list-methods
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.transplant.options import DEVICES, DTYPES, KINDS, TransplantOptions

    p = subparsers.add_parser(
        "transplant", help="give a pretrained model a new tokenizer",
        description="Compute embeddings for a new tokenizer's vocabulary and write a model folder that "
                    "transformers loads as it is.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_option_flags(p, TransplantOptions, skip={"method_options"},
                     choices={"device": DEVICES, "dtype": DTYPES, "kind": KINDS},
                     metavars={"model": "SPEC", "tokenizer": "SPEC", "method": "NAME", "donor": "SPEC", "aux": "SPEC",
                               "corpus": "CORPUS", "out": "DIR"})
    p.add_argument("--method-option", metavar="KEY=VALUE", action="append", default=[], dest="method_options",
                   help="an option of the method's dataclass (or of a provider it uses), repeatable; values are"
                        " parsed as JSON when they can be")
    p.add_argument("--list-methods", action="store_true", help="print the registered methods and exit")
    p.set_defaults(func=run)


def parse_method_options(items: list[str]) -> dict[str, Any]:
    """``["k=3", "name=x", "flag=true"]`` -> ``{"k": 3, "name": "x", "flag": True}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TokengraftError(f"--method-option expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def methods_table() -> str:
    import tokengraft.transplant.methods  # noqa: F401  registers the methods
    from tokengraft.transplant.methods.base import METHODS
    from tokengraft.transplant.options import DEFAULT_METHOD

    rows = [(m.name + ("*" if m.name == DEFAULT_METHOD else ""), m.needs.describe(), m.summary)
            for m in sorted(METHODS.values(), key=lambda m: m.name)]
    width = max((len(r[0]) for r in rows), default=4)
    lines = [f"{'name':<{width}}  {'needs':<21}  summary"]
    lines += [f"{n:<{width}}  {needs:<21}  {summary}" for n, needs, summary in rows]
    return "\n".join(lines + ["* the default; needs: a|b = one of (--donor for donor, --aux for an embedder's"
                               " space), + = also"])


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.cli.flags import options_from_args as build
    from tokengraft.transplant.options import TransplantOptions

    if not args.model or not args.tokenizer:
        raise TokengraftError("tokengraft transplant needs --model SPEC and --tokenizer SPEC (or --list-methods)")
    return build(args, TransplantOptions, method_options=parse_method_options(args.method_options))


def run(args: argparse.Namespace) -> int:
    if args.list_methods:
        print(methods_table())
        return 0
    from tokengraft.transplant.run import transplant

    result = transplant(options_from_args(args))
    print(result.table())
    print(f"transplant took {result.seconds:.1f} s after loading" + (f"; wrote {result.out}" if result.out else ""))
    return 0
