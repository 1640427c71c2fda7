"""``tokengraft eval``: bits per byte of a model on corpora; flags map one-to-one onto :class:`EvalOptions`."""
from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from typing import Any

logger = logging.getLogger(__name__)

EPILOG = """examples:
  tokengraft eval --model smollm2-135m --text libreoffice:en:heldout libreoffice:de:heldout --max-bytes 200000
  tokengraft eval --model out/smollm2-de --tokenizer out/tok-de --text notes.txt --json out/bpb.json
  tokengraft eval --model gemma3-270m --text libreoffice:fr:heldout --device cuda --dtype bfloat16 --batch-tokens 131072
  tokengraft eval --model smollm2-135m --text libreoffice:de:heldout --dynamic --hypernet out/hn --merges 0 300 1000
  tokengraft compare out/bpb-a.json out/bpb-b.json    # B's BPB over A's, with an interval over documents

BPB = total negative log-likelihood in bits / UTF-8 bytes of the scored text; it stays
comparable when the tokenizer changes. Every document starts with one start token
(--start auto: the BOS the tokenizer adds itself, else <|endoftext|>, else bos, else eos).
--json also keeps each document's bits, for `tokengraft compare`.
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.eval_bytes import EPILOG as BYTES_EPILOG, register_flags as register_byte_flags
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.cli.hypernet import add_dynamic_flags
    from tokengraft.measure.options import DTYPES, EvalOptions

    p = subparsers.add_parser(
        "eval", help="measure bits per byte of a model on text",
        description="Score every document of each corpus with the model and print bytes, tokens, "
                    "tokens per byte, bits per byte (BPB), time and tokens/s per corpus.",
        epilog=EPILOG + "\n" + BYTES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", metavar="SPEC", required=True, action="append",
                   help="built-in name, model folder, GGUF file or hub id (several with --bytes: their mixture)")
    p.add_argument("--tokenizer", metavar="SPEC", action="append", help="tokenizer spec (default: the model's own)")
    p.add_argument("--text", metavar="CORPUS", nargs="+", required=True,
                   help="corpora: built-in name (libreoffice:en:heldout), file, folder, glob or jsonl/parquet")
    p.add_argument("--json", metavar="OUT", help="also write every result as JSON to this file")
    add_option_flags(p, EvalOptions, choices={"dtype": DTYPES}, metavars={"device": "DEVICE", "start": "TOKEN"})
    register_byte_flags(p)
    add_dynamic_flags(p)
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.cli.flags import options_from_args as build
    from tokengraft.measure.options import EvalOptions

    return build(args, EvalOptions)


def run(args: argparse.Namespace) -> int:
    import torch

    from tokengraft.assets import load_corpora, load_model, load_tokenizer, model_folder
    from tokengraft.assets.outputs import check_output_file
    from tokengraft.measure import bits_per_byte, format_table, write_json
    from tokengraft.measure.inputs import check_scorable

    options = options_from_args(args)
    options.validate()  # fail before minutes of model loading
    if args.json:
        check_output_file(args.json, flag="--json")  # before the scoring whose results it would lose
    if args.bytes:
        from tokengraft.cli.eval_bytes import run_bytes
        from tokengraft.errors import TokengraftError

        if args.dynamic:
            raise TokengraftError("--bytes and --dynamic exclude each other; score one way at a time")

        return run_bytes(args, options)
    if args.weights or len(args.model) > 1:
        from tokengraft.errors import TokengraftError

        raise TokengraftError("several --model and --weights mix models byte by byte; add --bytes")
    args.model, args.tokenizer = args.model[0], (args.tokenizer or [None])[-1]
    if args.dynamic:
        from tokengraft.cli.hypernet import run_dynamic

        return run_dynamic(args, options)
    # Cheapest first, so that a bad corpus or tokenizer spec fails before the model loads.
    corpora = load_corpora(args.text, max_bytes=options.max_bytes)
    check_scorable(corpora)
    if not args.tokenizer:
        model_folder(args.model)  # so that a bad --model is reported as a model, not as a tokenizer
    tokenizer = load_tokenizer(args.tokenizer or args.model)
    model = load_model(args.model, dtype=getattr(torch, options.dtype), device=options.device)
    result = bits_per_byte(model, tokenizer, corpora, options)
    print(format_table(result))
    if args.json:
        meta = {"model": args.model, "tokenizer": args.tokenizer or args.model, "options": asdict(options)}
        write_json(args.json, result, meta)
        logger.info("wrote %s", args.json)
    return 0
