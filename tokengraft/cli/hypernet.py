"""``tokengraft hypernet train``: flags map one-to-one onto :class:`tokengraft.hypernet.HypernetTrainOptions`."""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

EPILOG = """examples:
  tokengraft hypernet train --model smollm2-135m --corpus libreoffice:de:fit libreoffice:fr:fit libreoffice:en-US:fit \\
      --max-seconds 900 --out out/hn-smollm2
  tokengraft hypernet train --model smollm2-135m --corpus libreoffice:de:fit --objectives recon head lm --steps 2000 \\
      --device cuda --out out/hn-smollm2-gpu
  tokengraft hypernet train ... --out out/hn-smollm2 --resume          # continue after an interruption
  accelerate launch --multi_gpu --num_processes 4 -m tokengraft.cli.main hypernet train ... --device cuda
  tokengraft transplant --model smollm2-135m --tokenizer out/tok-de --method hypernet --hypernet out/hn-smollm2 --out out/de

Objectives: recon (rebuild the base's own rows from their pieces under a reduced merge list; cheap),
head (cross-entropy of sampled tokenizers' tokens at cached base hidden states; cheap), lm (ZeTT: the
frozen model's loss on text in sampled tokenizers' tokens; costly on a CPU).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hypernet", help="train a ZeTT-style hypernetwork for a base model",
                              description="Hypernetworks predict the rows of any new tokenizer's tokens for one "
                                          "base model (tokengraft transplant --method hypernet --hypernet DIR).")
    sub = p.add_subparsers(dest="hypernet_command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a hypernetwork", epilog=EPILOG,
                           description="Train a hypernetwork for --model on text from --corpus and write it to --out.",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.hypernet.options import OBJECTIVES, PRECISIONS, HypernetTrainOptions

    add_option_flags(train, HypernetTrainOptions, required={"model", "out"}, flags={"progress": "--no-progress"},
                     choices={"precision": PRECISIONS, "device": ("auto", "cpu", "cuda"), "objectives": OBJECTIVES},
                     metavars={"model": "SPEC", "corpus": "CORPUS", "out": "DIR"})
    train.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: p.print_help() or 1)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.cli.flags import options_from_args as build
    from tokengraft.hypernet.options import HypernetTrainOptions

    return build(args, HypernetTrainOptions)


def run_train(args: argparse.Namespace) -> int:
    import json

    from tokengraft.hypernet import train_hypernet

    out = train_hypernet(options_from_args(args))
    if os.environ.get("RANK", "0") != "0":
        return 0
    record = json.loads((out / "hypernet.json").read_text())
    last = record["loss_curve"][-1] if record["loss_curve"] else {}
    shown = ", ".join(f"{k} {last[k]:.4f}" for k in ("recon_in", "recon_out", "head", "lm") if k in last)
    print(f"hypernetwork: {out} ({record['steps']} steps, {record['train_seconds']:.0f} s; last step: {shown})")
    return 0


def add_dynamic_flags(p: argparse.ArgumentParser) -> None:
    """``tokengraft eval --dynamic``: flags of :class:`tokengraft.hypernet.dynamic_eval.DynamicOptions`."""
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.hypernet.dynamic_eval import MODES, DynamicOptions

    g = p.add_argument_group("dynamic tokenization (--dynamic)")
    g.add_argument("--dynamic", action="store_true",
                   help="merge frequent units of each batch (batch-level BPE) and embed them on the fly")
    g.add_argument("--hypernet", metavar="DIR", help="hypernetwork that embeds the merged units (default: FVT means)")
    add_option_flags(g, DynamicOptions, flags={"mode": "--dynamic-mode"}, choices={"mode": MODES})


def run_dynamic(args: argparse.Namespace, eval_options: Any) -> int:
    import torch

    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.errors import TokengraftError
    from tokengraft.hypernet import load_hypernet
    from tokengraft.hypernet.base import Base
    from tokengraft.hypernet.dynamic_eval import DynamicOptions, evaluate_dynamic, format_rows

    if args.tokenizer:
        raise TokengraftError("--dynamic merges the model's own tokens; drop --tokenizer")
    from tokengraft.cli.flags import options_from_args as build

    options = build(args, DynamicOptions)
    corpora = load_corpora(args.text, max_bytes=eval_options.max_bytes)
    loaded = load_hypernet(args.hypernet) if args.hypernet else None
    model = load_model(args.model, dtype=getattr(torch, eval_options.dtype), device=eval_options.device)
    base = Base.from_model(args.model, model, load_tokenizer(args.model))
    results = {}
    for corpus in corpora:
        rows = evaluate_dynamic(base, loaded, corpus.texts(), options)
        print(format_rows(f"{corpus.name} ({options.mode}, units by {args.hypernet or 'FVT'})", rows))
        results[corpus.name] = [{**vars(r), "bpb": r.bpb, "reduction": r.reduction} for r in rows]
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps({"model": args.model, "hypernet": args.hypernet,
                                               "options": vars(options), "results": results}, indent=1))
    return 0
