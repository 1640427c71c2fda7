"""Infer the training mixture of real tokenizers and time it.

    heavy -x python3 benchmarks/bench_mixture.py --tokenizers gpt2          # a timing: quiet machine
    heavy python3 benchmarks/bench_mixture.py --json out/mixture/real.json  # all six, 30k merges, 1 MB each
    heavy python3 benchmarks/bench_mixture.py --tokenizers llama3@100000     # only the merges after the first 100k

Six categories: LibreOffice help en/de/fr/es/ru (:train) and the Python standard library
(:train), 1 MB sampled from each. ``NAME@N`` skips the first N merges (applied, not
constrained). Target (issue 12): at most 5 minutes per tokenizer on 2 CPU cores for 30k
merges and 1 MB per category. Prints one row per tokenizer; not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CATEGORIES = {"en": "libreoffice:en:train", "de": "libreoffice:de:train", "fr": "libreoffice:fr:train",
              "es": "libreoffice:es:train", "ru": "libreoffice:ru:train", "code": "python-stdlib:train"}
TOKENIZERS = "gpt2,cl100k,llama3,mistral-v3,gemma3-270m,smollm2-135m"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizers", default=TOKENIZERS, help="comma-separated specs, NAME@SKIP allowed")
    parser.add_argument("--merges", type=int, default=30000)
    parser.add_argument("--sample-bytes", type=int, default=1_000_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from tokengraft.assets import load_corpus
    from tokengraft.tokenizer.mixture import MixtureOptions, infer_mixture
    from tokengraft.tokenizer.train import read_tokenizer

    categories = {name: load_corpus(spec).texts() for name, spec in CATEGORIES.items()}
    rows = []
    head = f"{'tokenizer':<20}" + "".join(f"{c:>7}" for c in CATEGORIES) + f"{'slack':>7}{'active':>8}" \
        + f"{'load s':>8}{'count s':>8}{'solve s':>8}{'total s':>8}"
    print(f"{os.cpu_count()} cores; {args.merges:,} merges, {args.sample_bytes:,} bytes per category", flush=True)
    for item in args.tokenizers.split(","):
        spec, _, skip = item.partition("@")
        start = time.perf_counter()
        tok = read_tokenizer(spec, "tokenizer")
        loaded = time.perf_counter() - start
        options = MixtureOptions(merges=args.merges, skip=int(skip or 0), sample_bytes=args.sample_bytes,
                                 show_progress=False)
        result = infer_mixture(tok, categories, options, name=item)
        total = time.perf_counter() - start
        row = result.to_dict() | {"load_seconds": round(loaded, 1), "total_seconds": round(total, 1)}
        rows.append(row)
        print(head if len(rows) == 1 else "", end="\n" if len(rows) == 1 else "")
        print(f"{item:<20}" + "".join(f"{100 * result.proportions[c]:6.1f}%" for c in CATEGORIES)
              + f"{result.slack_share:7.3f}{result.active_merges:>8,}{loaded:8.1f}{result.seconds['count']:8.1f}"
              + f"{result.seconds['solve']:8.1f}{total:8.1f}", flush=True)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
