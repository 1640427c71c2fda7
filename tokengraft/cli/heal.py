"""``tokengraft heal``: flags map one-to-one onto :class:`tokengraft.heal.HealOptions`."""
from __future__ import annotations

import argparse
import os
from dataclasses import fields
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
    from tokengraft.heal.options import ALM_PARAMS, DEFAULT_STEPS, FIT_LOSSES, MODES, PRECISIONS, HealOptions

    d = {f.name: f.default for f in fields(HealOptions) if not callable(f.default_factory)}  # type: ignore[misc]
    p = subparsers.add_parser(
        "heal", help="train a transplanted model back to health (embeddings, ALM, LoRA, full)",
        description="Continue training a (transplanted) model on text: only its embeddings, by cross-tokenizer "
                    "distillation from the original model (ALM), with LoRA, or everything.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", metavar="DIR", required=True, help="transplant output folder (or any causal LM spec)")
    p.add_argument("--corpus", metavar="CORPUS", nargs="+", required=True, help="training text specs")
    p.add_argument("--mode", choices=MODES, default=d["mode"], help="what and how to train (default: %(default)s)")
    p.add_argument("--teacher", metavar="SPEC", default=d["teacher"],
                   help="ALM teacher (default: the base model named in the model's transplant.json)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, metavar="N", default=d["steps"],
                        help=f"optimizer steps (default: {DEFAULT_STEPS}, or unlimited with --max-seconds)")
    budget.add_argument("--tokens", type=int, metavar="N", default=d["tokens"], help="training budget in tokens instead")
    p.add_argument("--max-seconds", type=float, metavar="S", default=d["max_seconds"],
                   help="wall-clock budget (loading and writing included, evaluation excluded): training stops in "
                        "time to write the folder, the LR decays over the budget, --resume continues with a new one")
    p.add_argument("--seq-len", type=int, metavar="N", default=d["seq_len"], help="tokens per row (default: %(default)s)")
    p.add_argument("--batch-size", type=int, metavar="N", default=d["batch_size"],
                   help="rows per optimizer step over all processes (default: %(default)s)")
    p.add_argument("--grad-accum", type=int, metavar="N", default=d["grad_accum"], help="micro-steps per optimizer step")
    p.add_argument("--lr", type=float, metavar="X", default=d["lr"], help="peak learning rate (default: by mode)")
    p.add_argument("--warmup", type=int, metavar="N", default=d["warmup"], help="warm-up steps (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, metavar="X", default=d["weight_decay"])
    p.add_argument("--max-grad-norm", type=float, metavar="X", default=d["max_grad_norm"], help="0: no clipping")
    p.add_argument("--tau", type=float, metavar="X", default=d["tau"], help="ALM temperature (default: %(default)s)")
    p.add_argument("--alm-lm-weight", type=float, metavar="X", default=d["alm_lm_weight"],
                   help="weight of the LM loss added to ALM (default: %(default)s)")
    p.add_argument("--alm-params", choices=ALM_PARAMS, default=d["alm_params"], help="what ALM trains (default: %(default)s)")
    p.add_argument("--only-new", action="store_true", help="train only the embedding rows the transplant did not copy")
    fit = p.add_argument_group("fit mode (hidden-state matching, output-row fit, then LM training)")
    fit.add_argument("--fit-input", type=float, metavar="SHARE", default=d["fit_input"],
                     help="share of the training time matching hidden states (default: %(default)s)")
    fit.add_argument("--fit-output", type=float, metavar="SHARE", default=d["fit_output"],
                     help="share caching final states and fitting output rows (default: %(default)s)")
    fit.add_argument("--fit-layer", type=int, metavar="K", default=d["fit_layer"],
                     help="match hidden states after K layers (default: a third of them)")
    fit.add_argument("--fit-loss", choices=FIT_LOSSES, default=d["fit_loss"],
                     help="mse on states, or kl of the base model's predictions (default: %(default)s)")
    fit.add_argument("--fit-lr", type=float, metavar="X", default=d["fit_lr"], help="hidden-state matching step size")
    fit.add_argument("--fit-output-lr", type=float, metavar="X", default=d["fit_output_lr"],
                     help="output-row fit step size")
    fit.add_argument("--fit-anchor", type=float, metavar="X", default=d["fit_anchor"],
                     help="pull of fitted output rows towards their training-free start")
    fit.add_argument("--fit-seq-len", type=int, metavar="N", default=d["fit_seq_len"],
                     help="student tokens per hidden-state matching row")
    p.add_argument("--lora-r", type=int, metavar="N", default=d["lora_r"])
    p.add_argument("--lora-alpha", type=int, metavar="N", default=d["lora_alpha"])
    p.add_argument("--eval", metavar="CORPUS", nargs="+", default=[], help="held-out text for bits per byte")
    p.add_argument("--eval-every", type=int, metavar="N", default=d["eval_every"], help="0: only before and after")
    p.add_argument("--eval-max-bytes", type=int, metavar="N", default=d["eval_max_bytes"])
    p.add_argument("--save-every", type=int, metavar="N", default=d["save_every"], help="checkpoint interval, 0: none")
    p.add_argument("--keep-checkpoints", type=int, metavar="N", default=d["keep_checkpoints"])
    p.add_argument("--out", metavar="DIR", default=d["out"], help="output model folder (default: <model>-heal-<mode>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of --out")
    p.add_argument("--seed", type=int, metavar="N", default=d["seed"])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d["device"])
    p.add_argument("--precision", choices=PRECISIONS, default=d["precision"],
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from tokengraft.heal.options import HealOptions

    names = {f.name for f in fields(HealOptions)}
    return HealOptions(**{k: v for k, v in vars(args).items() if k in names})


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
