"""OMP without a donor, in a sentence embedder's space, beside FVT (a table, not a test).

    python3 benchmarks/bench_omp_aux.py --lang de --tokenizer out/tok-de-bpe32k
    python3 benchmarks/bench_omp_aux.py --lang fr --tokenizer out/tok-fr-bpe32k --ks 8,32,64

Each transplant goes through ``transplant(TransplantOptions(...))``, the path of
``tokengraft transplant --method omp --aux minilm-l6``. ``k`` is chosen on the first
``--max-bytes`` of ``libreoffice:<lang>:dev`` (lowest BPB); only the chosen ``k`` and FVT are
then scored on ``libreoffice:<lang>:heldout``. Ratio = BPB / BPB of the base model with its own
tokenizer on the same bytes.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def bpb(model: Any, tokenizer: Any, corpus: Any) -> float:
    from tokengraft.measure import EvalOptions, bits_per_byte

    return bits_per_byte(model, tokenizer, corpus, EvalOptions()).bpb


def transplanted(args: argparse.Namespace, method: str, **method_options: Any) -> tuple[Any, Any, float]:
    from tokengraft.transplant import TransplantOptions, transplant

    aux = args.aux if method == "omp" else None
    start = time.perf_counter()
    result = transplant(TransplantOptions(args.model, args.tokenizer, method=method, aux=aux,
                                          method_options=method_options))
    return result.model, result.tokenizer, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", required=True, help="LibreOffice help language: its :dev and :heldout splits")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--aux", default="minilm-l6", help="the embedder whose space OMP works in")
    parser.add_argument("--ks", default="8,32,64", help="OMP k values tried on :dev")
    parser.add_argument("--max-bytes", type=int, default=20_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from tokengraft.assets import load_corpora, load_model, load_tokenizer

    dev, held = load_corpora([f"libreoffice:{args.lang}:dev", f"libreoffice:{args.lang}:heldout"], args.max_bytes)
    base, base_tok = load_model(args.model), load_tokenizer(args.model)
    ref = {"dev": bpb(base, base_tok, dev), "heldout": bpb(base, base_tok, held)}
    del base
    rows: dict[str, dict[str, float]] = {}
    for k in [int(x) for x in args.ks.split(",")]:
        model, tok, seconds = transplanted(args, "omp", k=k)
        rows[f"omp k={k}"] = {"dev": bpb(model, tok, dev), "seconds": seconds}
        print(f"omp k={k}: dev BPB {rows[f'omp k={k}']['dev']:.4f} ({seconds:.0f} s)", flush=True)
    best = min(rows, key=lambda name: rows[name]["dev"])
    model, tok, _ = transplanted(args, "omp", k=int(best.split("=")[1]))
    rows[best]["heldout"] = bpb(model, tok, held)
    model, tok, seconds = transplanted(args, "fvt")
    rows["fvt"] = {"dev": bpb(model, tok, dev), "heldout": bpb(model, tok, held), "seconds": seconds}
    lines = [f"{args.model} -> {args.tokenizer}; {args.max_bytes:,} bytes of libreoffice:{args.lang}:dev / :heldout;"
             f" original BPB {ref['dev']:.4f} / {ref['heldout']:.4f}; k chosen on dev: {best}",
             "| method | dev BPB | dev ratio | heldout BPB | heldout ratio | transplant s |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        held_cells = (f"{r['heldout']:.4f} | {r['heldout'] / ref['heldout']:.3f}" if "heldout" in r else "- | -")
        lines.append(f"| {name} | {r['dev']:.4f} | {r['dev'] / ref['dev']:.3f} | {held_cells} | {r['seconds']:.0f} |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"original": ref, "rows": rows, "chosen": best, "args": vars(args)},
                                              indent=1))


if __name__ == "__main__":
    main()
