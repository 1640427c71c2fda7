"""``tokengraft tokenizer train|compare|mixture``: flags map one-to-one onto the options dataclasses."""
from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from typing import Any

from tokengraft.errors import TokengraftError

log = logging.getLogger(__name__)

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
    from tokengraft.tokenizer.options import KINDS, TrainOptions

    d = {f.name: f.default for f in fields(TrainOptions)}
    p = subparsers.add_parser("tokenizer", help="train, compare and analyse tokenizers",
                              description="Train a target tokenizer or compare tokenizers side by side.")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    t = sub.add_parser("train", help="train a BPE, Unigram or SuperBPE tokenizer", epilog=TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a tokenizer that copies a base's specials and conventions; writes a "
                                   "folder AutoTokenizer loads, whole or not at all.")
    t.add_argument("--corpus", nargs="+", action="extend", required=True, metavar="CORPUS", help="training corpora")
    t.add_argument("--vocab-size", type=int, default=d["vocab_size"], metavar="N", help="default: %(default)s")
    t.add_argument("--kind", choices=KINDS, default=d["kind"], help="default: %(default)s")
    t.add_argument("--base", metavar="TOKENIZER", default=d["base"],
                   help="tokenizer whose specials and conventions to copy (default: GPT-2 style byte-level)")
    t.add_argument("--transition", type=int, default=d["transition"], metavar="N",
                   help="superbpe: stage-1 vocabulary size (default: 0.8 x vocab size)")
    t.add_argument("--max-words", type=int, default=d["max_words"], metavar="N",
                   help="superbpe: most words one token may span (default: %(default)s)")
    t.add_argument("--min-frequency", type=int, default=d["min_frequency"], metavar="N", help="default: %(default)s")
    t.add_argument("--max-bytes", type=int, default=d["max_bytes"], metavar="N",
                   help="train on a seeded random sample of about N bytes of documents")
    t.add_argument("--seed", type=int, default=d["seed"], metavar="N", help="default: %(default)s")
    t.add_argument("--keep-unused-specials", action="store_true", help="also copy the base's <unusedN> placeholders")
    t.add_argument("--out", metavar="DIR", required=True, help="output folder")
    t.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    t.add_argument("--no-progress", action="store_true", help="hide progress bars")
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
    from tokengraft.tokenizer.options import TrainOptions
    from tokengraft.tokenizer.train import check_output, train_to_folder

    check_output(args.out, args.overwrite)
    options = TrainOptions(
        vocab_size=args.vocab_size, kind=args.kind, base=args.base, transition=args.transition,
        max_words=args.max_words, min_frequency=args.min_frequency, max_bytes=args.max_bytes, seed=args.seed,
        keep_unused_specials=args.keep_unused_specials, show_progress=not args.no_progress)
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
    from tokengraft.tokenizer.compare import compare_tokenizers
    from tokengraft.tokenizer.report import format_table, plot_report, write_json
    from tokengraft.tokenizer.train import read_tokenizer

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
