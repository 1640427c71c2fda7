"""Hypernetwork transplants against FVT and graft: BPB ratio on the same bytes (a table, not a test).

    python3 benchmarks/bench_hypernet.py --hypernet out/hn --tokenizer out/tok-de-bpe32k \\
        --eval libreoffice:de:heldout --max-bytes 30000 --methods original,fvt,graft,hypernet --json out/hn-de.json
    python3 benchmarks/bench_hypernet.py --hypernet out/hn-a out/hn-b --tokenizer out/tok-fr-bpe32k \\
        --eval libreoffice:fr:dev --max-bytes 20000 --methods original,fvt,hypernet     # tuning: a dev slice

Each method transplants a freshly loaded base model in this process and scores every eval
corpus, cut to its first ``--max-bytes``, with the BPB meter; ``ratio`` = BPB / the
original model's BPB (own tokenizer) on the same bytes. ``hypernet`` runs once per folder
given to ``--hypernet``. ``seconds`` is the transplant alone (after loading).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any


def score(model: Any, tokenizer: Any, corpora: list[Any]) -> dict[str, float]:
    from tokengraft.measure import EvalOptions, bits_per_byte

    total = bits_per_byte(model, tokenizer, corpora, EvalOptions())
    return {p.name: p.bpb for p in (total.parts or [total])}


def transplant_once(args: argparse.Namespace, method: str, hypernet: str | None) -> tuple[Any, Any, float]:
    """The CLI's own path (plan, load, transplant), the transplant alone timed."""
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.transplant.core import transplant_model
    from tokengraft.transplant.options import TransplantOptions
    from tokengraft.transplant.plan import plan_transplant
    from tokengraft.transplant.run import load_inputs

    options = TransplantOptions(args.model, args.tokenizer, method, hypernet=hypernet,
                                corpus=args.corpus if method == "graft" else None)
    plan = plan_transplant(options)
    model, old_tok, new_tok = load_model(args.model), load_tokenizer(args.model), load_tokenizer(args.tokenizer)
    inputs = load_inputs(plan, options, new_tok)
    start = time.perf_counter()
    model, new_tok, _ = transplant_model(model, old_tok, new_tok, plan=plan, inputs=inputs, copy_tokenizer=False)
    return model, new_tok, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--hypernet", nargs="*", default=[])
    parser.add_argument("--eval", nargs="+", required=True)
    parser.add_argument("--max-bytes", type=int, default=30_000)
    parser.add_argument("--methods", default="original,fvt,hypernet")
    parser.add_argument("--corpus", help="graft's target-language text (default: the tokenizer's training corpus)")
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from tokengraft.assets import load_corpora, load_model, load_tokenizer

    corpora = load_corpora(args.eval, max_bytes=args.max_bytes)
    rows: list[dict[str, Any]] = []
    original: dict[str, float] = {}
    for method in args.methods.split(","):
        if method == "original":
            original = score(load_model(args.model), load_tokenizer(args.model), corpora)
            rows.append({"method": "original", "bpb": original, "seconds": 0.0})
            continue
        for folder in (args.hypernet if method == "hypernet" else [None]):
            model, tok, seconds = transplant_once(args, method, folder)
            rows.append({"method": method if folder is None else f"hypernet {folder}", "bpb": score(model, tok, corpora),
                         "seconds": seconds})
            del model
        print(json.dumps(rows[-1]), flush=True)
    names = [c.name for c in corpora]
    print("| method | " + " | ".join(f"{n} BPB | ratio" for n in names) + " | transplant s |")
    print("|---|" + "---|---|" * len(names) + "---|")
    for row in rows:
        cells = [f"{row['bpb'][n]:.4f} | {row['bpb'][n] / original[n]:.3f}" if original else f"{row['bpb'][n]:.4f} | -"
                 for n in names]
        print(f"| {row['method']} | " + " | ".join(cells) + f" | {row['seconds']:.1f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
