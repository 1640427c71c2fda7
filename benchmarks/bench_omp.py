"""Time tokengraft's OMP against mergekit-tokensurgeon's on the same targets, and compare their outputs.

Default data: the real transplant SmolLM2-135M -> Gemma-3's tokenizer with Gemma-3-270M as donor.
Atoms are the donor rows of the shared tokens (45,571 x 640), targets the donor rows of the new
tokens (216,573); the transferred rows are combinations of SmolLM2's own rows of the shared tokens.
A seeded random subset of ``--targets`` new tokens is timed per tool and the time is scaled
linearly to all of them (batches are independent, so the cost is linear in the number of targets).

    python3 benchmarks/bench_omp.py --targets 2048 --k 8,64                  # tokengraft only
    .venvs/mergekit/bin/python benchmarks/bench_omp.py --mergekit ...   # + mergekit 0.1.5

(``.venvs/mergekit``: ``python3 -m venv --system-site-packages`` + ``pip install --no-deps
mergekit==0.1.5 immutables click pydantic``; it sees the system's torch and, run from the repository
root, this checkout.) ``--random`` uses Gaussian rows of the same shape instead of the real pair.

Columns: the one-off set-up (the bfloat16 copy, or the Gram matrix and the kernel's build), seconds
per 1k targets without it, extrapolated minutes for all targets (set-up once + every target), the
speed-up on those minutes against the first row, mean relative residual in the donor space, the
share of targets whose chosen atoms equal the first row's tool (``identical``), and the median /
minimum cosine between each tool's transferred rows and the first row's. ``gram`` runs all
targets in one call (it batches inside), as the omp method does; the others in ``--batch``.
"""
from __future__ import annotations

import argparse
import time

import torch

from tokengraft.transplant.methods.omp_batch import Dictionary, omp_batched, resolve_selection


def real_pair(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(atoms (N, e), targets (T, e), old rows of the atoms (N, d)) for SmolLM2 -> Gemma-3."""
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.transplant.correspondence import build_correspondence

    old_tok, new_tok = load_tokenizer(args.base), load_tokenizer(args.donor)
    base, donor = load_model(args.base), load_model(args.donor)
    old = base.get_input_embeddings().weight.detach().float()
    space = donor.get_input_embeddings().weight.detach().float()[: len(new_tok)]
    corr = build_correspondence(old_tok, new_tok, old_size=old.shape[0])
    usable = space.norm(dim=1) > 0
    shared = ((corr.copied >= 0) & usable).nonzero().squeeze(1)
    wanted = ((corr.copied < 0) & usable).nonzero().squeeze(1)
    order = torch.randperm(wanted.numel(), generator=torch.Generator().manual_seed(args.seed))
    args.total = wanted.numel()
    subset = wanted[order[: args.targets]]
    return space[shared].contiguous(), space[subset].contiguous(), old[corr.copied[shared]].contiguous()


def random_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(args.seed)
    scale = (1.0 + torch.arange(640) / 32.0).rsqrt()  # anisotropic, like real embeddings
    atoms = torch.randn(45_571, 640, generator=g) * scale
    return atoms, torch.randn(args.targets, 640, generator=g) * scale, torch.randn(45_571, 576, generator=g)


def prepare(atoms: torch.Tensor, selection: str) -> tuple[Dictionary, float]:
    """The dictionary with what ``selection`` builds once (bfloat16 copy, or Gram matrix + kernel), and its seconds."""
    start = time.perf_counter()
    dictionary = Dictionary(atoms)
    if resolve_selection(dictionary, selection, atoms.device) == "gram":
        dictionary.gram()
    else:
        dictionary.low()
    return dictionary, time.perf_counter() - start


def run_tokengraft(targets, dictionary, k, batch, selection):
    start = time.perf_counter()
    if resolve_selection(dictionary, selection, targets.device) == "gram":  # all at once, as the omp method does
        fits = [omp_batched(targets, dictionary, k, selection=selection)]
    else:
        fits = [omp_batched(targets[i:i + batch], dictionary, k, selection=selection)
                for i in range(0, targets.shape[0], batch)]
    return time.perf_counter() - start, torch.cat([f.indices for f in fits]), torch.cat([f.coef for f in fits])


def run_mergekit(targets, atoms, k, batch, selection):
    from mergekit.tokensurgeon.omp import batch_omp

    start = time.perf_counter()
    out = [batch_omp(targets[i:i + batch], atoms, k) for i in range(0, targets.shape[0], batch)]
    return time.perf_counter() - start, torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])


def scan_floor(targets, atoms, ks, batch) -> None:
    """Time the bfloat16 product alone (one batch, all atoms): the floor of the screened selection."""
    low, rows = Dictionary(atoms).low(), targets[:batch].bfloat16()
    torch.mm(rows, low.T)
    start = time.perf_counter()
    for _ in range(5):
        torch.mm(rows, low.T)
    step = (time.perf_counter() - start) / 5
    rate = rows.shape[0] * low.shape[1] * low.shape[0] / step / 1e9
    floors = ", ".join(f"k={k}: {k * step / rows.shape[0] * 1000:.2f}" for k in ks)
    print(f"bfloat16 scan alone: {rate:.0f} G multiply-adds/s; s / 1k targets with only the scans: {floors}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", default="smollm2-135m")
    p.add_argument("--donor", default="gemma3-270m")
    p.add_argument("--random", action="store_true", help="Gaussian rows of the real pair's shape")
    p.add_argument("--targets", type=int, default=2048, help="new tokens timed (a seeded random subset)")
    p.add_argument("--k", default="8,64")
    p.add_argument("--batch", type=int, default=512, help="targets per batch (mergekit's default is 512)")
    p.add_argument("--mergekit", action="store_true", help="also run mergekit.tokensurgeon.omp.batch_omp")
    p.add_argument("--selections", default="screened,gram", help="tokengraft's selections to time (gram, screened, exact)")
    p.add_argument("--floor", action="store_true", help="also time the bfloat16 scan alone (the selection's floor)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.total = 216_573
    atoms, targets, old = random_data(args) if args.random else real_pair(args)
    print(f"data {'random' if args.random else args.base + ' -> ' + args.donor}: {atoms.shape[0]} atoms x "
          f"{atoms.shape[1]}, timing {targets.shape[0]} of {args.total} targets, batch {args.batch}, "
          f"{torch.get_num_threads()} threads")
    impls = [("mergekit 0.1.5", run_mergekit, None)] if args.mergekit else []
    impls += [(f"tokengraft {s}", run_tokengraft, s) for s in args.selections.split(",")]
    ready = {}  # selection -> (dictionary, set-up seconds), built once for all k
    for _, fn, selection in impls:
        ready[selection] = prepare(atoms, selection) if fn is run_tokengraft else (atoms, 0.0)
    print("| tool | k | set-up s | s / 1k targets | all targets (min) | speed-up | mean rel. residual | identical |"
          " median row cos | min row cos |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in (int(x) for x in args.k.split(",")):
        first = None
        for name, fn, selection in impls:
            data, setup = ready[selection]
            seconds, idx, coef = fn(targets, data, k, args.batch, selection)
            approx = torch.bmm(coef.unsqueeze(1), atoms[idx]).squeeze(1)
            residual = float(((targets - approx).norm(dim=1) / targets.norm(dim=1)).mean())
            rows = torch.bmm(coef.unsqueeze(1), old[idx]).squeeze(1)
            per_k = seconds / targets.shape[0] * 1000
            total = setup + per_k * args.total / 1000     # the set-up once, the pursuit for every target
            first = first or (total, idx, rows)
            same = float((torch.sort(idx, 1).values == torch.sort(first[1], 1).values).all(1).float().mean())
            cos = torch.cosine_similarity(rows, first[2], dim=1)
            print(f"| {name} | {k} | {setup:.1f} | {per_k:.2f} | {total / 60:.1f} | {first[0] / total:.1f}x |"
                  f" {residual:.4f} | {same:.3f} | {float(cos.median()):.6f} | {float(cos.min()):.4f} |", flush=True)
    if args.floor:
        scan_floor(targets, atoms, [int(x) for x in args.k.split(",")], args.batch)


if __name__ == "__main__":
    main()
