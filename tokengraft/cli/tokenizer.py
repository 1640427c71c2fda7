"""``tokengraft tokenizer train|compare|mixture``: flags map one-to-one onto the options dataclasses."""
from __future__ import annotations

import argparse
import logging
from typing import Any

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

TRAIN_EPILOG = """examples:
  tokengraft tokenizer train --corpus libreoffice:fr:train --vocab-size 32000 --base smollm2-135m --out out/tok-fr-bpe32k
  tokengraft tokenizer train --corpus libreoffice:fr:train --vocab-size 32000 --kind superbpe --base smollm2-135m \\
      --out out/tok-fr-superbpe32k
  tokengraft tokenizer train --corpus bible:rv1909 --vocab-size 8000 --kind unigram --base gemma3-270m --out out/tok-es-uni8k
"""
COMPARE_EPILOG = """examples:
  tokengraft tokenizer compare --tokenizer smollm2-135m --tokenizer out/tok-fr-bpe32k --corpus libreoffice:fr:heldout
  tokengraft tokenizer compare --tokenizer smollm2-135m --tokenizer gemma3-270m --tokenizer cl100k --parallel \\
      --corpus libreoffice:en:heldout --corpus libreoffice:de:heldout --corpus libreoffice:fr:heldout \\
      --json out/compare.json --plot out/compare.png
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.tokenizer.options import KINDS, TrainOptions

    p = subparsers.add_parser("tokenizer", help="train, compare and analyse tokenizers",
                              description="Train a target tokenizer or compare tokenizers side by side.")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    t = sub.add_parser("train", help="train a BPE, Unigram or SuperBPE tokenizer", epilog=TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a tokenizer that copies a base's specials and conventions; writes a "
                                   "folder AutoTokenizer loads, whole or not at all.")
    t.add_argument("--corpus", nargs="+", action="extend", required=True, metavar="CORPUS", help="training corpora")
    add_option_flags(t, TrainOptions, choices={"kind": KINDS}, metavars={"base": "TOKENIZER"},
                     flags={"show_progress": "--no-progress"})
    t.add_argument("--out", metavar="DIR", required=True, help="output folder")
    t.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    t.set_defaults(action=run_train)

    c = sub.add_parser("compare", help="tokens per byte/word, premiums, overlap", epilog=COMPARE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Measure tokenizers on corpora; with --parallel, the token premium of each "
                                   "language relative to English on aligned documents.")
    c.add_argument("--tokenizer", action="append", required=True, metavar="SPEC",
                   help="built-in name or folder, repeatable; NAME=SPEC sets the label")
    c.add_argument("--corpus", nargs="+", action="extend", required=True, metavar="CORPUS")
    c.add_argument("--parallel", action="store_true", help="align corpora by document id; report token premiums")
    c.add_argument("--reference", metavar="CORPUS", help="premium reference (default: the English corpus)")
    c.add_argument("--max-bytes", type=int, metavar="N", help="bytes per corpus (parallel: of the reference)")
    c.add_argument("--json", metavar="OUT", help="write the report as JSON")
    c.add_argument("--plot", metavar="OUT.png", help="write grouped bar charts")
    c.set_defaults(action=run_compare)
    from tokengraft.cli.tokenizer_mixture import add_parser as add_mixture_parser

    add_mixture_parser(sub)
    p.set_defaults(func=lambda args: args.action(args) if getattr(args, "action", None) else p.print_help() or 1)


def run_train(args: argparse.Namespace) -> int:
    from tokengraft.assets import load_corpora
    from tokengraft.cli.flags import options_from_args
    from tokengraft.tokenizer.options import TrainOptions
    from tokengraft.tokenizer.train import check_output, train_to_folder

    check_output(args.out, args.overwrite)
    options = options_from_args(args, TrainOptions)
    options.validate()  # before the corpora load
    corpora = load_corpora(args.corpus)
    texts = [t for c in corpora for t in c.texts()]
    out = train_to_folder(texts, options, args.out, args.overwrite, corpus_names=args.corpus)
    print(f"wrote {out}")
    return 0


def parse_tokenizer_args(items: list[str]) -> dict[str, str]:
    """``["smollm2-135m", "fr=out/tok"]`` -> ``{"smollm2-135m": ..., "fr": "out/tok"}``."""
    out: dict[str, str] = {}
    for item in items:
        label, sep, spec = item.partition("=")
        label, spec = (label, spec) if sep else (item.rstrip("/").split("/")[-1], item)
        if label in out:
            raise TokengraftError(f"tokenizer label {label!r} is given twice; name them with NAME=SPEC")
        out[label] = spec
    return out


def run_compare(args: argparse.Namespace) -> int:
    from tokengraft.assets import load_corpora
    from tokengraft.assets.outputs import check_output_file
    from tokengraft.tokenizer.compare import compare_tokenizers
    from tokengraft.tokenizer.report import format_table, plot_report, write_json
    from tokengraft.tokenizer.train import read_tokenizer

    for path, flag, example in ((args.json, "--json", "compare.json"), (args.plot, "--plot", "compare.png")):
        if path:
            check_output_file(path, flag=flag, example=example)  # before the measuring whose results it would lose
    specs = parse_tokenizer_args(args.tokenizer)
    tokenizers = {label: read_tokenizer(spec, "tokenizer") for label, spec in specs.items()}
    corpora = load_corpora(args.corpus)
    report = compare_tokenizers(tokenizers, corpora, parallel=args.parallel, max_bytes=args.max_bytes,
                                reference=args.reference)
    print(format_table(report))
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.plot:
        print(f"wrote {plot_report(report, args.plot)}")
    return 0
