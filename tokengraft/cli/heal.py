"""``tokengraft heal``: flags map one-to-one onto :class:`tokengraft.heal.HealOptions`."""
from __future__ import annotations

import argparse
import os
from typing import Any

EPILOG = """examples:
  tokengraft heal --model out/smollm2-fr --corpus libreoffice:fr:train --mode embeddings --steps 300 \\
      --eval libreoffice:fr:heldout --out out/smollm2-fr-healed
  tokengraft heal --model out/smollm2-fr --corpus libreoffice:fr:train --mode alm --tokens 2000000
  tokengraft heal --model out/smollm2-fr --corpus libreoffice:fr:train --max-seconds 540 --device cpu
  accelerate launch --multi_gpu --num_processes 8 -m tokengraft.cli.main heal --model out/smollm2-fr \\
      --corpus libreoffice:fr:train --mode full --batch-size 64   # DDP on 8 GPUs
  accelerate launch --multi_gpu --num_processes 2 -m tokengraft.cli.main heal ... --device cpu   # DDP on CPU (gloo)

--batch-size is the global batch: the same options give the same training on 1 or N processes.
"""


def register(subparsers: Any) -> None:
    from tokengraft.cli.flags import add_option_flags
    from tokengraft.heal.options import (ALM_PARAMS, DATA_ORDERS, DEVICES, FIT_LOSSES, MODES, PRECISIONS, ROWS,
                                        HealOptions)

    p = subparsers.add_parser(
        "heal", help="train a transplanted model back to health (LoRA, embeddings, ALM, full)",
        description="Continue training a (transplanted) model on text: LoRA adapters with its embeddings (the "
                    "default), only its embeddings, by cross-tokenizer distillation from the original model "
                    "(ALM), or everything.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    budget = ("steps", "tokens")  # one or the other
    add_option_flags(p, HealOptions, skip=budget, required=("model", "corpus"), flags={"progress": "--no-progress"},
                     choices={"mode": MODES, "alm_params": ALM_PARAMS, "device": DEVICES, "precision": PRECISIONS,
                              "fit_loss": FIT_LOSSES, "rows": ROWS, "data_order": DATA_ORDERS},
                     metavars={"model": "DIR", "corpus": "CORPUS", "teacher": "SPEC", "eval": "CORPUS", "out": "DIR"})
    add_option_flags(p.add_mutually_exclusive_group(), HealOptions, only=budget)
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.cli.flags import options_from_args as build
    from tokengraft.heal.options import HealOptions

    return build(args, HealOptions)


def run(args: argparse.Namespace) -> int:
    from tokengraft.heal import heal

    result = heal(options_from_args(args))
    if os.environ.get("RANK", "0") != "0":
        return 0  # under accelerate launch, one process reports
    last = result.eval_curve[-1]["bpb"] if result.eval_curve else {}
    budget = f", budget spent in {result.budget_seconds:.0f} s" if result.stopped_by_budget else ""
    print(f"healed model: {result.out} ({result.steps} steps, {result.tokens_seen:,} tokens, "
          f"{result.tokens_per_second:,.0f} tokens/s, final loss {result.final_loss:.4f}{budget})")
    for name, bpb in last.items():
        print(f"  held-out {name}: {result.eval_curve[0]['bpb'][name]:.4f} -> {bpb:.4f} bits/byte")
    return 0
