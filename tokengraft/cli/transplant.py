"""``tokengraft transplant``: flags map one-to-one onto :class:`TransplantOptions`."""
from __future__ import annotations

import argparse
import json
from dataclasses import fields
from typing import Any

from tokengraft.errors import TokengraftError

EPILOG = """examples:
  tokengraft transplant --model smollm2-135m --tokenizer out/tok-fr-bpe32k --method fvt --out out/smollm2-fr
  tokengraft transplant --model smollm2-135m --tokenizer gemma3-270m --method omp --donor gemma3-270m --out out/smollm2-gemma
  tokengraft transplant --list-methods
"""


def register(subparsers: Any) -> None:
    from tokengraft.transplant.options import TransplantOptions

    defaults = {f.name: f.default for f in fields(TransplantOptions)}
    p = subparsers.add_parser(
        "transplant", help="give a pretrained model a new tokenizer",
        description="Compute embeddings for a new tokenizer's vocabulary and write a model folder that "
                    "transformers loads as it is.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", metavar="SPEC", help="base model: built-in name, folder or hub id")
    p.add_argument("--tokenizer", metavar="SPEC", help="the new tokenizer: built-in name, folder or file")
    p.add_argument("--method", metavar="NAME", default=defaults["method"], help="init method (default: %(default)s)")
    p.add_argument("--donor", metavar="SPEC", default=defaults["donor"], help="model that already uses the new tokenizer")
    p.add_argument("--aux", metavar="SPEC", default=defaults["aux"], help="auxiliary embedder (e.g. minilm-l6)")
    p.add_argument("--corpus", metavar="CORPUS", default=defaults["corpus"], help="text for methods that need it")
    p.add_argument("--out", metavar="DIR", default=defaults["out"], help="output folder (written whole or not at all)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=defaults["device"])
    p.add_argument("--seed", type=int, metavar="N", default=defaults["seed"])
    p.add_argument("--pad-to-multiple-of", type=int, metavar="N", default=defaults["pad_to_multiple_of"],
                   help="pad the vocabulary; padded rows are the mean row and never sampled")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--method-option", metavar="KEY=VALUE", action="append", default=[], dest="method_options",
                   help="an option of the method's dataclass, repeatable (values parsed as JSON when they can be)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=defaults["dtype"],
                   help="dtype of the saved weights (default: the model's)")
    p.add_argument("--kind", choices=["causal", "encoder"], default=defaults["kind"],
                   help="causal LM (input and output embeddings) or encoder (input only)")
    p.add_argument("--allow-id-gaps", action="store_true",
                   help="accept a new tokenizer with unused ids below its largest (they get fallback rows)")
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

    rows = [(m.name + ("*" if m.name == DEFAULT_METHOD else ""), ",".join(m.needs) or "-", m.summary)
            for m in sorted(METHODS.values(), key=lambda m: m.name)]
    width = max((len(r[0]) for r in rows), default=4)
    lines = [f"{'name':<{width}}  {'needs':<16}  summary"]
    lines += [f"{n:<{width}}  {needs:<16}  {summary}" for n, needs, summary in rows]
    return "\n".join(lines + ["* the default"])


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.transplant.options import TransplantOptions

    if not args.model or not args.tokenizer:
        raise TokengraftError("tokengraft transplant needs --model SPEC and --tokenizer SPEC (or --list-methods)")
    return TransplantOptions(
        model=args.model, tokenizer=args.tokenizer, method=args.method, donor=args.donor, aux=args.aux,
        corpus=args.corpus, out=args.out, device=args.device, seed=args.seed,
        pad_to_multiple_of=args.pad_to_multiple_of, overwrite=args.overwrite,
        method_options=parse_method_options(args.method_options), dtype=args.dtype, kind=args.kind,
        allow_id_gaps=args.allow_id_gaps,
    )


def run(args: argparse.Namespace) -> int:
    if args.list_methods:
        print(methods_table())
        return 0
    from tokengraft.transplant.run import transplant

    result = transplant(options_from_args(args))
    print(result.table())
    print(f"transplant took {result.seconds:.1f} s after loading" + (f"; wrote {result.out}" if result.out else ""))
    return 0
