"""Quality per budget: BPB ratio and tokens per byte after 0, 60, 180 and 540 s of healing (a table and a plot).

    python3 benchmarks/bench_budget.py --pair de --stage transplant       # the zero-shot transplants (once)
    heavy -x python3 benchmarks/bench_budget.py --pair de --stage train --methods default,fair \
        --budgets 540 --side-by-side                                        # budgeted runs: a quiet machine
    heavy -x python3 benchmarks/bench_budget.py --pair de --stage score --methods default,fair \
        --budgets 0,540 --jobs 2                                            # BPB of every folder (load-free)
    python3 benchmarks/bench_budget.py --pair de --stage table --plot out/bench-budget/de.png
    python3 benchmarks/bench_budget.py --pair de --stage train --methods default,fair --budgets 60,300 \
        --side-by-side --device cuda                                        # the same on a GPU (score: --device cuda)

Pairs: ``de`` SmolLM2-135M -> the 32k German BPE (trained on libreoffice:de:train, judged on
libreoffice:de:heldout and on German man pages, text from outside LibreOffice); ``fr`` -> the
quickstart's 32k French BPE; ``superbpe`` -> the 32k French SuperBPE (both judged on
libreoffice:fr:heldout); ``de-unigram`` -> a German Unigram asked for 32k tokens (``tokengraft
tokenizer train --kind unigram``: 17,833 on this text; another kind than the BPE the defaults were
chosen with; judged like ``de``). Methods (each ``tokengraft heal --max-seconds B`` from a transplant):

- ``default``: the default transplant (graft) healed in heal's default mode (LoRA adapters and
  the embeddings, sparse row steps with 2,048 hard negatives, lr 3e-3, three quarters of the change
  kept: ``--interpolate 0.75``, documents in coverage order, input rows moving with their old pieces);
- ``cont2``: ``default`` with ``--continuation-weight 2`` (the loss counts twice at targets that
  continue a word; ``fair-cont2``: the original trained the same way);
- ``lora-cov``: heal's default of session 10 (no shared piece changes: ``--share-pieces 0``);
- ``lora-neg``: heal's default of session 9 (documents in random order: ``--data-order random``);
- ``lora3e3``: heal's default of session 8 (the same without hard negatives: ``--sparse-negatives 0``);
- ``lora2e3``: heal's default of session 7 (the same at lr 2e-3);
- ``lora1``: heal's default of session 6 (lr 2e-3, all of the change kept: ``--interpolate 1``);
- ``emb``: heal's default before session 6 (``--mode embeddings``: the embeddings only);
- ``dense-b8``: heal's default before session 4 (batches of 8 rows, dense Adam steps on every row);
- ``hypernet``: the transplant a trained hypernetwork makes (``--hypernet DIR`` at the transplant
  stage), healed like ``emb``; ``hypernet-lora``, ``hypernet-lora2e3``, ``hypernet-lora1``: the same
  transplant healed like ``default``, ``lora2e3``, ``lora1`` (``hypernet-lora3e3``: like ``lora3e3``);
- ``emb-fvt``: plain LM-loss training of the embeddings from FVT (ReTok-style);
- ``fit``: ``--mode fit`` from graft (hidden-state matching, output-row fit, then LM training);
- ``alm``: ALM distillation from graft;
- ``fair``: the original model with its own tokenizer trained the same way as the default, on
  the same text for the same time (``fair-lora-neg``, ``fair-lora3e3``, ``fair-lora2e3``, ``fair-lora1``,
  ``fair-emb``, ``fair-dense-b8``: the same as ``lora-neg``, ``lora3e3``, ``lora2e3``, ``lora1``, ``emb``,
  ``dense-b8``).

Every method but ``default``, ``fair``, the ``cont2`` pair, ``lora-cov`` and the ``lora-neg`` pair pins ``--sparse-negatives 0``,
every one but ``default``, ``fair``, the ``cont2`` pair and ``lora-cov`` pins ``--data-order random``, and every one but ``default``,
``fair`` and the ``cont2`` pair pins ``--share-pieces 0``: each names heal's default of an earlier session, or a method
measured before hard negatives, the coverage order or shared piece changes existed (the fair runs
start from the original, which has no old pieces to share).

``--side-by-side`` runs the budgeted trainings two at a time, one torch thread each, so that
the two runs of a pair (e.g. ``default`` and ``fair``) see the same machine.

Ratio = BPB / BPB of the untouched original model with its own tokenizer on the same bytes
(= 1.000). Training and scoring are separate stages: only training depends on the machine's
load, so only ``--stage train`` needs ``heavy -x``; every run's record (steps, seconds) is kept.
A folder already scored on the same bytes is not scored again, also through a link: the SuperBPE
pair's fair runs can be links to the French pair's (the same model, text and budgets).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path("out/bench-budget")
BUDGETS = (0, 60, 180, 540)
ARTIFACTS = Path("out")  # tokenizers made as the README does: out/tok-<lang>-bpe32k


@dataclass(frozen=True)
class Pair:
    name: str
    tokenizer: str
    train: str
    evals: tuple[str, ...]
    base: str = "smollm2-135m"


PAIRS = {
    "de": Pair("de", str(ARTIFACTS / "tok-de-bpe32k"), "libreoffice:de:train",
               ("libreoffice:de:heldout", "manpages:de:heldout")),
    "fr": Pair("fr", str(ARTIFACTS / "tok-fr-bpe32k"), "libreoffice:fr:train", ("libreoffice:fr:heldout",)),
    "superbpe": Pair("superbpe", str(ARTIFACTS / "tok-fr-superbpe32k"), "libreoffice:fr:train",
                     ("libreoffice:fr:heldout",)),
    "de-unigram": Pair("de-unigram", str(ARTIFACTS / "tok-de-unigram32k"), "libreoffice:de:train",
                       ("libreoffice:de:heldout", "manpages:de:heldout")),
}
# method -> (transplant it starts from: "graft" | "fvt" | "original", heal flags)
NO_SHARE = ["--share-pieces", "0"]
RANDOM = ["--data-order", "random", *NO_SHARE]
NO_NEG = ["--sparse-negatives", "0", *RANDOM]
METHODS: dict[str, tuple[str, list[str]]] = {
    "default": ("graft", []),
    "fair": ("original", []),
    "cont2": ("graft", ["--continuation-weight", "2"]),
    "fair-cont2": ("original", ["--continuation-weight", "2"]),
    "lora-cov": ("graft", NO_SHARE),
    "lora-neg": ("graft", RANDOM),
    "fair-lora-neg": ("original", RANDOM),
    "lora3e3": ("graft", NO_NEG),
    "fair-lora3e3": ("original", NO_NEG),
    "hypernet-lora3e3": ("hypernet", NO_NEG),
    "emb": ("graft", ["--mode", "embeddings", *NO_NEG]),
    "fair-emb": ("original", ["--mode", "embeddings", *NO_NEG]),
    "dense-b8": ("graft", ["--mode", "embeddings", "--batch-size", "8", "--no-sparse-rows", *RANDOM]),
    "fair-dense-b8": ("original", ["--mode", "embeddings", "--batch-size", "8", "--no-sparse-rows", *RANDOM]),
    "hypernet": ("hypernet", ["--mode", "embeddings", *NO_NEG]),
    "hypernet-lora": ("hypernet", []),
    "lora1": ("graft", ["--lr", "2e-3", "--interpolate", "1", *NO_NEG]),
    "fair-lora1": ("original", ["--lr", "2e-3", "--interpolate", "1", *NO_NEG]),
    "hypernet-lora1": ("hypernet", ["--lr", "2e-3", "--interpolate", "1", *NO_NEG]),
    "lora2e3": ("graft", ["--lr", "2e-3", *NO_NEG]),
    "fair-lora2e3": ("original", ["--lr", "2e-3", *NO_NEG]),
    "hypernet-lora2e3": ("hypernet", ["--lr", "2e-3", *NO_NEG]),
    "emb-fvt": ("fvt", ["--mode", "embeddings", *NO_NEG]),
    "fit": ("graft", ["--mode", "fit", *NO_NEG]),
    "alm": ("graft", ["--mode", "alm", *NO_NEG]),
}

OLD_DEFAULTS = ("lora-cov", "lora-neg", "fair-lora-neg", "lora3e3", "fair-lora3e3", "lora2e3", "fair-lora2e3", "lora1",
                "fair-lora1", "emb", "fair-emb", "dense-b8", "fair-dense-b8")


def tool(*args: str) -> list[str]:
    return [sys.executable, "-m", "tokengraft.cli.main", *args]


def start_folder(pair: Pair, start: str, root: Path) -> str:
    return pair.base if start == "original" else str(root / f"transplant-{start}")


def stage_transplant(pair: Pair, root: Path, hypernet: str | None) -> None:
    for method in ("fvt", "graft", "hypernet"):
        out = root / f"transplant-{method}"
        if out.exists() or (method == "hypernet" and hypernet is None):
            continue
        t0 = time.perf_counter()
        extra = ["--hypernet", hypernet] if method == "hypernet" else ["--corpus", pair.train]
        subprocess.run(tool("transplant", "--model", pair.base, "--tokenizer", pair.tokenizer, "--method", method,
                            *extra, "--out", str(out)), check=True)
        print(f"transplant {method}: {time.perf_counter() - t0:.0f} s (loading included)", flush=True)


def stage_train(pair: Pair, root: Path, methods: list[str], budgets: list[int], side_by_side: bool,
                device: str = "cpu", seed: int = 0) -> None:
    runs = []
    for budget in budgets:
        for method in methods:
            start, flags = METHODS[method]
            out = root / f"{method}-{budget}"
            if budget == 0 or (out / "heal.json").exists():
                continue
            runs.append((f"{method} {budget} s", out, tool(
                "heal", "--model", start_folder(pair, start, root), "--corpus", pair.train, "--max-seconds",
                str(budget), "--device", device, "--save-every", "0", "--eval-every", "0", "--no-progress",
                "--out", str(out), "--overwrite", "--seed", str(seed), *flags)))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") if side_by_side else None
    width = 2 if side_by_side else 1
    for i in range(0, len(runs), width):
        t0 = time.perf_counter()
        group = [(name, subprocess.Popen(cmd, env=env, stdout=open(f"{out}.log", "w"), stderr=subprocess.STDOUT))
                 for name, out, cmd in runs[i:i + width]]
        for name, proc in group:
            if proc.wait():
                raise SystemExit(f"{name} failed (exit {proc.returncode}); see its log")
            print(f"{name}: finished after {time.perf_counter() - t0:.0f} s", flush=True)


def score_folder(folder: str, evals: tuple[str, ...], max_bytes: int, threads: int = 0,
                 device: str = "cpu") -> dict[str, Any]:
    import torch

    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.measure import EvalOptions, bits_per_byte

    if threads:
        torch.set_num_threads(threads)
    model, tok = load_model(folder), load_tokenizer(folder)
    out = {}
    for corpus in load_corpora(list(evals), max_bytes=max_bytes):
        r = bits_per_byte(model, tok, corpus, EvalOptions(device=device))
        out[corpus.name] = {"bpb": r.bpb, "tokens_per_byte": r.tokens_per_byte, "bytes": r.bytes,
                            "document_ids": r.document_ids, "document_bits": r.document_bits}
    return out


def real(folder: str) -> str:
    return str(Path(folder).resolve())


def known_scores(root: Path, folders, evals: tuple[str, ...]) -> dict[tuple[str, int], dict[str, Any]]:
    """Score records holding every one of ``evals``, by (real folder, max_bytes): this root's, and those
    in the ``scores.json`` beside each folder's real location (a link to another pair's run on the
    same text: the French fair baseline serves the SuperBPE pair)."""
    files = {root / "scores.json", *(Path(real(f)).parent / "scores.json" for f in folders)}
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(files):
        for record in (json.loads(path.read_text()) if path.exists() else {}).values():
            if record.get("folder") and set(evals) <= set(record.get("scores", {})):
                out.setdefault((real(record["folder"]), record.get("max_bytes")), record)
    return out


def stage_score(pair: Pair, root: Path, methods: list[str], budgets: list[int], max_bytes: int, jobs: int,
                only: set[str] | None = None, device: str = "cpu") -> None:
    """BPB of every folder not scored yet on these bytes (of the keys in ``only``, when given);
    ``jobs`` processes of one thread each."""
    from concurrent.futures import ProcessPoolExecutor

    path = root / "scores.json"
    scores = json.loads(path.read_text()) if path.exists() else {}
    todo = {"original": pair.base}
    for method in methods:
        start, _ = METHODS[method]
        for budget in budgets:
            folder = start_folder(pair, start, root) if budget == 0 else str(root / f"{method}-{budget}")
            if budget == 0 or Path(folder, "heal.json").exists():
                todo[f"{method}-{budget}"] = folder
    scored = known_scores(root, todo.values(), pair.evals)
    reused = {k: {**scored[(real(f), max_bytes)], "folder": f} for k, f in todo.items()
              if k not in scores and (real(f), max_bytes) in scored}
    if reused:  # a zero-shot transplant that several methods start from, or a link to another pair's run, is scored once
        scores.update(reused)
        path.write_text(json.dumps(scores, indent=1))
    todo = {k: f for k, f in todo.items() if not (k in scores and scores[k].get("max_bytes") == max_bytes)
            and (only is None or k in only)}
    first: dict[str, str] = {}  # real folder -> the key that scores it (the fair baseline at 0 s is the original)
    for key, folder in todo.items():
        first.setdefault(real(folder), key)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {key: pool.submit(score_folder, folder, pair.evals, max_bytes, 1 if jobs > 1 else 0, device)
                   for key, folder in todo.items() if first[real(folder)] == key}
        for key, folder in todo.items():
            record = {"folder": folder, "max_bytes": max_bytes, "device": device,
                      "scores": futures[first[real(folder)]].result()}
            heal_json = Path(folder, "heal.json")
            if heal_json.exists():
                heal_record = json.loads(heal_json.read_text())
                record.update({k: heal_record.get(k) for k in ("steps", "tokens_seen", "budget_seconds", "seconds")})
            # another score process (other --methods) may have written meanwhile: keep its keys
            scores = {**(json.loads(path.read_text()) if path.exists() else {}), key: record}
            path.write_text(json.dumps(scores, indent=1))
            print(key, {k: round(v["bpb"], 4) for k, v in record["scores"].items()}, flush=True)


def ratio_cell(score: dict[str, Any], base: dict[str, Any]) -> tuple[float, str]:
    """BPB over the base's, with a 95% paired bootstrap interval over documents when both records
    keep each document's bits on the same documents (scored since session 28)."""
    from tokengraft.measure.compare import paired_ratio

    ratio = score["bpb"] / base["bpb"]
    if score.get("document_bits") and score.get("document_ids") == base.get("document_ids"):
        _, low, high = paired_ratio(base["document_bits"], score["document_bits"])
        return ratio, f"{ratio:.3f} ({low:.3f}-{high:.3f})"
    return ratio, f"{ratio:.3f}"


def stage_table(pair: Pair, root: Path, methods: list[str], budgets: list[int], plot: str | None,
                against: str = "original") -> None:
    scores = json.loads((root / "scores.json").read_text())
    if against not in scores:
        raise SystemExit(f"--against {against}: no such key in {root / 'scores.json'}; score it first "
                         f"(keys: {', '.join(sorted(scores))})")
    base = scores[against]["scores"]
    print(f"ratios: BPB over {against}'s on the same bytes; in brackets, 95% bootstrap over documents")
    head = "| method | budget s | " + " | ".join(f"{e} ratio | tok/B" for e in pair.evals) + " | steps |"
    print(head)
    print("|" + "---|" * (3 + 2 * len(pair.evals)))
    curves: dict[str, list[tuple[int, float]]] = {}
    for method in methods:
        for budget in budgets:
            entry = scores.get(f"{method}-{budget}")
            if entry is None and budget == 0 and METHODS[method][0] == "original":
                entry = scores["original"]  # the fair baseline before training is the original itself
            if entry is None:
                continue
            cells = []
            for e in pair.evals:
                ratio, cell = ratio_cell(entry["scores"][e], base[e])
                cells.append(f"{cell} | {entry['scores'][e]['tokens_per_byte']:.4f}")
                label = method if len(pair.evals) == 1 else f"{method}, {e.split(':')[0]}"
                curves.setdefault(label, []).append((budget, ratio))
            print(f"| {method} | {budget} | " + " | ".join(cells) + f" | {entry.get('steps') or 0} |")
    print(f"{against} BPB: " + ", ".join(f"{e} {base[e]['bpb']:.4f} (tok/B {base[e]['tokens_per_byte']:.4f})"
                                        for e in pair.evals))
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, max(4.0, 1.5 + 0.2 * len(curves))))
        colors = plt.cm.tab20.colors  # one colour per method, one marker per text; earlier defaults dashed
        names = list(dict.fromkeys(label.split(",")[0] for label in curves))
        for label, points in curves.items():
            name, text = label.split(",")[0], label.split(", ")[-1]
            marker = "os^"[[e.split(":")[0] for e in pair.evals].index(text) % 3] if "," in label else "o"
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=label,
                    color=colors[names.index(name) % len(colors)], ls="--" if name in OLD_DEFAULTS else "-")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set(xlabel="healing seconds (the README says on which device, how many threads and what ran beside)",
               ylabel=f"BPB / {against}'s (held-out)" if len(pair.evals) > 1 else f"BPB ratio on {pair.evals[0]}",
               title=f"SmolLM2-135M -> {Path(pair.tokenizer).name}")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
        print(f"plot: {plot}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", choices=sorted(PAIRS), default="de")
    p.add_argument("--stage", choices=["transplant", "train", "score", "table"], required=True)
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    p.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    p.add_argument("--max-bytes", type=int, default=100_000, help="bytes of each held-out corpus scored")
    p.add_argument("--root", default=None, help=f"folder of the runs (default: {ROOT}/<pair>)")
    p.add_argument("--plot", default=None, help="PNG of ratio against seconds (table stage)")
    p.add_argument("--against", default="original", help="table stage: the scores.json key every ratio divides by "
                   "(e.g. fair-540 for the gap to the fair baseline)")
    p.add_argument("--jobs", type=int, default=1, help="score stage: folders scored at once (one thread each)")
    p.add_argument("--only", default=None, help="score stage: only these keys (e.g. original,default-0), so that "
                   "two score processes split the folders")
    p.add_argument("--hypernet", default=None, help="transplant stage: a trained hypernetwork folder for the "
                   "hypernet method's transplant (tokengraft hypernet train)")
    p.add_argument("--device", default="cpu", help="train and score stages: cpu or cuda (a GPU: the same runs and "
                   "budgets, scored there too; every folder of one root should be scored on one device)")
    p.add_argument("--seed", type=int, default=0, help="train stage: heal's --seed (the batches drawn; a repeat of "
                   "the same runs in another root measures the runs' own noise)")
    p.add_argument("--side-by-side", action="store_true",
                   help="train stage: two runs at a time (in the order budget, method), one torch thread each")
    args = p.parse_args()
    pair = PAIRS[args.pair]
    root = Path(args.root or ROOT / pair.name)
    root.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    budgets = [int(b) for b in args.budgets.split(",")]
    if args.stage == "transplant":
        stage_transplant(pair, root, args.hypernet)
    elif args.stage == "train":
        stage_train(pair, root, methods, budgets, args.side_by_side, args.device, args.seed)
    elif args.stage == "score":
        stage_score(pair, root, methods, budgets, args.max_bytes, args.jobs,
                    set(args.only.split(",")) if args.only else None, args.device)
    else:
        stage_table(pair, root, methods, budgets, args.plot, args.against)


if __name__ == "__main__":
    main()
