"""``tokengraft generate``: continue a prompt with one model, or byte by byte with a mixture of several.

Flags map one-to-one onto :class:`tokengraft.bytelevel.options.GenerateOptions` (and
``--byte-threshold`` onto ``ByteOptions.threshold``).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

EPILOG = r"""examples:
  tokengraft generate --bytes --model smollm2-135m --prompt "The quick brown fo" --max-bytes 60
  tokengraft generate --bytes --model smollm2-135m --model gemma3-270m --weights 0.3 0.7 --prompt "Die Funktion ber"
  tokengraft generate --model smollm2-135m --prompt "Hello" --temperature 0.8 --seed 1

With --bytes every model gives a next-byte distribution that sums over the tokenizations
covering the prompt's end, so a prompt may stop mid-word or mid-character; several --model
are mixed byte by byte (--weights, equal by default). Without --bytes the prompt is
tokenized as it is and one model generates tokens (the usual way).
"""


def register(subparsers: Any) -> None:
    from tokengraft.bytelevel.options import ByteOptions, GenerateOptions
    from tokengraft.cli.flags import add_option_flags

    p = subparsers.add_parser(
        "generate", help="continue a prompt (byte by byte with --bytes, several models mixed)",
        description="Generate text after a prompt, greedy or sampled, from one model or a byte-level mixture.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", metavar="SPEC", required=True, action="append",
                   help="built-in name, model folder, GGUF file or hub id; repeat to mix models (needs --bytes)")
    p.add_argument("--tokenizer", metavar="SPEC", action="append", help="tokenizer spec per model (default: its own)")
    p.add_argument("--prompt", required=True, help="the text to continue (it may end mid-word)")
    p.add_argument("--bytes", action="store_true", help="generate byte by byte from the byte-level model(s)")
    p.add_argument("--weights", type=float, nargs="+", metavar="W", help="mixture weights, one per --model")
    add_option_flags(p, GenerateOptions, metavars={"stop": "TEXT"})
    add_option_flags(p, ByteOptions, only={"threshold"}, flags={"threshold": "--byte-threshold"})
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.bytelevel.options import GenerateOptions
    from tokengraft.cli.flags import options_from_args as build

    return build(args, GenerateOptions)


def run(args: argparse.Namespace) -> int:
    import torch

    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.bytelevel import generate
    from tokengraft.bytelevel.options import ByteOptions, GenerateOptions
    from tokengraft.errors import TokengraftError
    from tokengraft.measure.runtime import resolve_device

    options = options_from_args(args)
    device = resolve_device(args.device)
    tokenizer_specs = args.tokenizer or []
    if tokenizer_specs and len(tokenizer_specs) != len(args.model):
        raise TokengraftError(f"{len(tokenizer_specs)} --tokenizer for {len(args.model)} --model; give one per model or none")
    if (len(args.model) > 1 or args.weights) and not args.bytes:
        raise TokengraftError("several --model and --weights mix models byte by byte; add --bytes")
    models, tokenizers = [], []
    for i, spec in enumerate(args.model):
        tokenizers.append(load_tokenizer(tokenizer_specs[i] if tokenizer_specs else spec))
        models.append(load_model(spec, device=device).eval())
    with torch.inference_mode():
        out = generate(models, tokenizers, args.prompt, options, weights=args.weights, byte_level=args.bytes,
                       byte_options=ByteOptions(threshold=args.threshold))
    sys.stdout.write((args.prompt.encode("utf-8") + out).decode("utf-8", errors="replace") + "\n")
    return 0
