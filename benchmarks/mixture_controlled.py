"""Controlled data-mixture experiments: train BPE tokenizers on known random mixtures, infer them back.

    heavy python3 benchmarks/mixture_controlled.py --trials 10 --json out/mixture/controlled.json
    heavy python3 benchmarks/mixture_controlled.py --split dev --trials 5 --json out/mixture/dev.json  # calibration

Each trial draws a mixture of the six categories (LibreOffice help en/de/fr/es/ru and the Python
standard library) from a flat Dirichlet, trains an HF ``tokenizers`` byte-level BPE (GPT-2
pre-tokenizer, 30k merges) on ``--train-bytes`` of :train documents in those proportions (of
:fit with ``--split dev``), then infers the mixture from samples of *other* documents
(:heldout, or :dev) for every sample size and number of merges. It also infers with the
trial's largest category left out, to see what the slack does when a category is missing.
Prints the mean absolute error (MAE) of the proportions; writes every trial to ``--json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CATEGORIES = {"en": "libreoffice:en", "de": "libreoffice:de", "fr": "libreoffice:fr", "es": "libreoffice:es",
              "ru": "libreoffice:ru", "code": "python-stdlib"}


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def early_shares(sol) -> dict[str, float]:
    """Slack of the first K merges over their frequency: where counts are large, noise is small."""
    from tokengraft.tokenizer.mixture import early_slack

    return {str(k): early_slack(sol, k) for k in (300, 1000, 3000)}


def run_trial(trial: int, args, train_texts, sample_texts) -> dict:
    import numpy as np

    from tokengraft.tokenizer import TrainOptions, train_tokenizer
    from tokengraft.tokenizer.mixture import category_counts, sample_documents
    from tokengraft.tokenizer.mixture_lp import solve_mixture
    from tokengraft.tokenizer.mixture_merges import merge_list

    names = list(CATEGORIES)
    target = np.random.default_rng(trial).dirichlet(np.ones(len(names)))
    docs, got = [], {}
    for name, share in zip(names, target):
        part, n = sample_documents(train_texts[name], int(round(share * args.train_bytes)), seed=trial)
        docs += part
        got[name] = n
    truth = np.array([got[n] for n in names], dtype=float) / sum(got.values())
    t0 = time.perf_counter()
    tok = train_tokenizer(docs, TrainOptions(vocab_size=257 + args.vocab_merges, show_progress=False))
    ml = merge_list(tok, f"trial {trial}")
    record = {"trial": trial, "truth": dict(zip(names, truth.tolist())), "merges_learned": len(ml),
              "train_seconds": round(time.perf_counter() - t0, 1), "runs": []}
    top = max(args.merges)
    for size in args.sample_bytes:
        counts = [category_counts(sample_texts[n], ml, min(top, len(ml)), 0, n, size, seed=1000 + trial) for n in names]
        keys = np.asarray([a * counts[0].base + b for a, b in ml.merges[:top]], dtype=np.int64)
        for m in args.merges:
            t1 = time.perf_counter()
            sol = solve_mixture([c.head(m) for c in counts], keys[:m], min_count=args.min_count)
            est = sol.proportions
            run = {"sample_bytes": size, "merges": m, "estimate": dict(zip(names, est.tolist())),
                   "mae": float(np.abs(est - truth).mean()), "slack_share": sol.total_slack / sol.merge_frequency,
                   "seconds": round(time.perf_counter() - t1, 1), "rounds": sol.rounds, "early": early_shares(sol)}
            if m == top and args.drop:
                drop = int(np.argmax(truth))
                keep = [i for i in range(len(names)) if i != drop]
                part = solve_mixture([counts[i].head(m) for i in keep], keys[:m], min_count=args.min_count)
                run["dropped"] = names[drop]
                run["slack_share_dropped"] = part.total_slack / part.merge_frequency
                run["early_dropped"] = early_shares(part)
            if m == top and size == max(args.sample_bytes):
                for mc in args.min_count_sweep:
                    other = solve_mixture([c.head(m) for c in counts], keys[:m], min_count=mc).proportions
                    run[f"mae_min_count_{mc}"] = float(np.abs(other - truth).mean())
            record["runs"].append(run)
            print(f"trial {trial} bytes {size} merges {m}: MAE {run['mae']:.4f} slack {run['slack_share']:.3f}"
                  + (f" (without {run['dropped']}: {run['slack_share_dropped']:.3f})" if "dropped" in run else "")
                  + f" [{run['seconds']}s]", flush=True)
    return record


def summarise(records: list[dict], merges: list[int], sizes: list[int]) -> str:
    import numpy as np

    lines = [f"MAE of the proportions, mean over {len(records)} trials (rows: merges; columns: sample bytes per category)",
             f"{'merges':>8}" + "".join(f"{s:>12,}" for s in sizes)]
    for m in merges:
        cells = []
        for s in sizes:
            vals = [r["mae"] for rec in records for r in rec["runs"] if r["merges"] == m and r["sample_bytes"] == s]
            cells.append(f"{np.mean(vals):12.4f}" if vals else f"{'-':>12}")
        lines.append(f"{m:>8,}" + "".join(cells))
    for key in sorted({k for rec in records for r in rec["runs"] for k in r if k.startswith("mae_min_count_")}):
        vals = [r[key] for rec in records for r in rec["runs"] if key in r]
        lines.append(f"{key}: {np.mean(vals):.4f} (largest setting)")
    full = [r["slack_share"] for rec in records for r in rec["runs"] if "slack_share_dropped" in r]
    drop = [r["slack_share_dropped"] for rec in records for r in rec["runs"] if "slack_share_dropped" in r]
    if full:
        lines.append(f"slack share, all categories: min {min(full):.3f} median {np.median(full):.3f} max {max(full):.3f}; "
                     f"largest category left out: min {min(drop):.3f} median {np.median(drop):.3f} max {max(drop):.3f}")
        for k in ("300", "1000"):
            full = [r["early"][k] for rec in records for r in rec["runs"] if "early_dropped" in r]
            drop = [r["early_dropped"][k] for rec in records for r in rec["runs"] if "early_dropped" in r]
            lines.append(f"early slack (first {k} merges), all categories: max {max(full):.3f}; "
                         f"largest left out: min {min(drop):.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--first-trial", type=int, default=0)
    parser.add_argument("--train-bytes", type=int, default=3_000_000)
    parser.add_argument("--vocab-merges", type=int, default=30000, help="merges each tokenizer learns")
    parser.add_argument("--merges", type=ints, default=[1000, 3000, 10000, 30000])
    parser.add_argument("--sample-bytes", type=ints, default=[30000, 100000, 400000])
    parser.add_argument("--split", choices=["heldout", "dev"], default="heldout",
                        help="where samples come from (dev: tokenizers train on :fit)")
    parser.add_argument("--min-count", type=int, default=None, help="default: MixtureOptions'")
    parser.add_argument("--min-count-sweep", type=ints, default=[], help="also these, at the largest setting")
    parser.add_argument("--no-drop", dest="drop", action="store_false", help="skip the missing-category runs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from tokengraft.assets import load_corpus
    from tokengraft.tokenizer.mixture import MixtureOptions

    if args.min_count is None:
        args.min_count = MixtureOptions().min_count
    train_split = "train" if args.split == "heldout" else "fit"
    train_texts = {n: load_corpus(f"{spec}:{train_split}").texts() for n, spec in CATEGORIES.items()}
    sample_texts = {n: load_corpus(f"{spec}:{args.split}").texts() for n, spec in CATEGORIES.items()}
    records = []
    for trial in range(args.first_trial, args.first_trial + args.trials):
        records.append(run_trial(trial, args, train_texts, sample_texts))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"args": vars(args), "trials": records}, indent=1) + "\n")
    print(summarise(records, args.merges, args.sample_bytes))


if __name__ == "__main__":
    main()
