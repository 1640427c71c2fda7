"""``tokengraft hypernet train``: flags map one-to-one onto :class:`tokengraft.hypernet.HypernetTrainOptions`."""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import MISSING, fields
from typing import Any

EPILOG = """examples:
  tokengraft hypernet train --model smollm2-135m --corpus libreoffice:de:fit libreoffice:fr:fit libreoffice:en-US:fit \\
      --max-seconds 900 --out out/hn-smollm2
  tokengraft hypernet train --model smollm2-135m --corpus libreoffice:de:fit --objectives recon,head,lm --steps 2000 \\
      --device cuda --out out/hn-smollm2-gpu
  tokengraft hypernet train ... --out out/hn-smollm2 --resume          # continue after an interruption
  accelerate launch --multi_gpu --num_processes 4 -m tokengraft.cli.main hypernet train ... --device cuda
  tokengraft transplant --model smollm2-135m --tokenizer out/tok-de --method hypernet --hypernet out/hn-smollm2 --out out/de

Objectives: recon (rebuild the base's own rows from their pieces under a reduced merge list; cheap),
head (cross-entropy of sampled tokenizers' tokens at cached base hidden states; cheap), lm (ZeTT: the
frozen model's loss on text in sampled tokenizers' tokens; costly on a CPU).
"""
# flags that are not a plain "--name VALUE" of the options dataclass
SPECIAL = {"model", "corpus", "out", "objectives", "overwrite", "resume", "progress", "device", "precision"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hypernet", help="train a ZeTT-style hypernetwork for a base model",
                              description="Hypernetworks predict the rows of any new tokenizer's tokens for one "
                                          "base model (tokengraft transplant --method hypernet).")
    sub = p.add_subparsers(dest="hypernet_command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a hypernetwork", epilog=EPILOG,
                           description="Train a hypernetwork for --model on text from --corpus and write it to --out.",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_flags(train)
    train.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: p.print_help() or 1)


def add_train_flags(p: argparse.ArgumentParser) -> None:
    from tokengraft.hypernet.options import OBJECTIVES, PRECISIONS, HypernetTrainOptions

    p.add_argument("--model", metavar="SPEC", required=True, help="base model: built-in name, folder or hub id")
    p.add_argument("--corpus", metavar="CORPUS", nargs="+", default=[], help="training text specs")
    p.add_argument("--out", metavar="DIR", required=True, help="output hypernetwork folder")
    p.add_argument("--objectives", default="recon,head", help=f"comma-separated, of {', '.join(OBJECTIVES)} "
                                                              "(default: %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --out")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    for f in fields(HypernetTrainOptions):
        if f.name in SPECIAL:
            continue
        default = f.default if f.default is not MISSING else None
        kind = float if f.name == "max_seconds" else type(default)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, metavar="X", default=default,
                       help=f"(default: {default})")


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.hypernet.options import HypernetTrainOptions

    names = {f.name for f in fields(HypernetTrainOptions)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["objectives"] = [x.strip() for x in str(args.objectives).split(",") if x.strip()]
    return HypernetTrainOptions(**values)


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
    from tokengraft.hypernet.dynamic_eval import MODES, DynamicOptions

    d = DynamicOptions()
    g = p.add_argument_group("dynamic tokenization (--dynamic)")
    g.add_argument("--dynamic", action="store_true",
                   help="merge frequent units of each batch (batch-level BPE) and embed them on the fly")
    g.add_argument("--hypernet", metavar="DIR", help="hypernetwork that embeds the merged units (default: FVT means)")
    g.add_argument("--merges", type=int, nargs="+", metavar="N", default=d.merges,
                   help="merge budgets per batch; 0 = the base tokenization (default: %(default)s)")
    g.add_argument("--min-count", type=int, metavar="N", default=d.min_count, help="(default: %(default)s)")
    g.add_argument("--segment-bytes", type=int, metavar="N", default=d.segment_bytes, help="(default: %(default)s)")
    g.add_argument("--batch-segments", type=int, metavar="N", default=d.batch_segments,
                   help="segments merged together (default: %(default)s)")
    g.add_argument("--dynamic-mode", choices=MODES, default=d.mode,
                   help="full: read and predict units; prefill: units in the first half, score the rest")
    g.add_argument("--forward-rows", type=int, metavar="N", default=d.forward_rows, help="(default: %(default)s)")


def run_dynamic(args: argparse.Namespace, eval_options: Any) -> int:
    import torch

    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.errors import TokengraftError
    from tokengraft.hypernet import load_hypernet
    from tokengraft.hypernet.base import Base
    from tokengraft.hypernet.dynamic_eval import DynamicOptions, evaluate_dynamic, format_rows

    if args.tokenizer:
        raise TokengraftError("--dynamic merges the model's own tokens; drop --tokenizer")
    options = DynamicOptions(merges=args.merges, min_count=args.min_count, segment_bytes=args.segment_bytes,
                             batch_segments=args.batch_segments, mode=args.dynamic_mode, forward_rows=args.forward_rows)
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
