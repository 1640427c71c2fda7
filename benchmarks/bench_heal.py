"""Heal a transplanted model for a fixed budget and print held-out BPB before/after.

Beside the transplant it heals the fair baseline: the original model with its own
tokenizer, trained in the same mode on the same data with the same token budget (an ALM
baseline would distil the model from itself, so the baseline uses ``embeddings`` then).
Training on LibreOffice text adapts to its domain too, so only that baseline tells what
the tokenizer swap costs or wins. Prints one row per model: BPB on French and English
held-out text before and after, tokens per byte, training tokens/s, peak memory, time.

    python3 benchmarks/bench_heal.py --model out/smollm2-fr --mode embeddings --steps 20 --seq-len 256
    python3 benchmarks/bench_heal.py --model out/smollm2-fr --mode alm --tokens 20000000 --device cuda \\
        --batch-size 32 --seq-len 1024 --eval-max-bytes 300000 --json out/bench-heal-alm.json

On CPU keep the budget tiny (a step of SmolLM2-135M at 8 x 256 tokens takes seconds);
on CUDA the run uses bf16 autocast. Memory is the CUDA peak allocated per run, or on CPU
the process's peak RSS so far (it only grows: read the first row as the transplant's).
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from tokengraft.heal import HealOptions, heal
from tokengraft.heal.sources import default_teacher


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="transplant output folder")
    p.add_argument("--baseline", default=None, help="original model spec (default: transplant.json's base; 'none' skips)")
    p.add_argument("--mode", default="embeddings", choices=["embeddings", "alm", "full", "lora"])
    p.add_argument("--corpus", nargs="+", default=["libreoffice:fr:train"])
    p.add_argument("--eval", nargs="+", default=["libreoffice:fr:heldout", "libreoffice:en:heldout"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=20)
    budget.add_argument("--tokens", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--alm-lm-weight", type=float, default=0.0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--eval-max-bytes", type=int, default=50_000)
    p.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: before and after)")
    p.add_argument("--out-root", default=None, help="where healed folders go (default: a temporary folder)")
    p.add_argument("--json", default=None, help="also write the rows and curves as JSON")
    return p.parse_args()


def run_one(label: str, model: str, mode: str, args: argparse.Namespace, out_root: Path) -> dict:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    options = HealOptions(
        model=model, corpus=args.corpus, mode=mode, steps=args.steps, tokens=args.tokens, seq_len=args.seq_len,
        batch_size=args.batch_size, lr=args.lr, alm_lm_weight=args.alm_lm_weight, eval=args.eval,
        eval_every=args.eval_every, eval_max_bytes=args.eval_max_bytes, save_every=0, device=args.device,
        out=str(out_root / label), overwrite=True, progress=False)
    t0 = time.perf_counter()
    result = heal(options)
    first, last = result.eval_curve[0], result.eval_curve[-1]
    return {
        "label": label, "model": model, "mode": mode, "steps": result.steps, "tokens": result.tokens_seen,
        "bpb_before": first["bpb"], "bpb_after": last["bpb"], "tokens_per_byte": last["tokens_per_byte"],
        "tokens_per_second": result.tokens_per_second, "peak_memory_gb": result.peak_memory_bytes / 2**30,
        "seconds": time.perf_counter() - t0, "eval_curve": result.eval_curve,
        "loss_curve": [{"tokens": e["tokens"], "loss": e["loss"]} for e in result.loss_curve],
    }


def print_table(rows: list[dict], corpora: list[str]) -> None:
    head = f"{'model':<10} {'mode':<10} {'tokens':>9}"
    for name in corpora:
        short = name.split(":")[1] if ":" in name else Path(name).name
        head += f" {short + ' before':>10} {short + ' after':>9} {short + ' tok/B':>9}"
    print(head + f" {'train tok/s':>11} {'peak GB':>8} {'time s':>7}")
    for r in rows:
        line = f"{r['label']:<10} {r['mode']:<10} {r['tokens']:>9,}"
        for name in corpora:
            line += f" {r['bpb_before'][name]:>10.4f} {r['bpb_after'][name]:>9.4f} {r['tokens_per_byte'][name]:>9.4f}"
        print(line + f" {r['tokens_per_second']:>11,.0f} {r['peak_memory_gb']:>8.2f} {r['seconds']:>7.0f}")


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    baseline = args.baseline or default_teacher(args.model)
    with tempfile.TemporaryDirectory(prefix="bench-heal-") as tmp:
        out_root = Path(args.out_root or tmp)
        rows = [run_one("transplant", args.model, args.mode, args, out_root)]
        if baseline != "none":
            rows.append(run_one("original", baseline, "embeddings" if args.mode == "alm" else args.mode, args, out_root))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    print(f"\nheal benchmark on {device}: {args.corpus} -> held-out {args.eval}, {args.eval_max_bytes:,} bytes each")
    print_table(rows, args.eval)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "device": device, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
