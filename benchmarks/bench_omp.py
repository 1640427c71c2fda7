"""Time tokengraft's batched OMP at a realistic size and extrapolate to a whole vocabulary.

The default shape is SmolLM2-135M -> Gemma-3's tokenizer with Gemma-3-270M as donor: 45,571
shared tokens as atoms of width 640, 216,573 new tokens to approximate. A few thousand targets
are timed and the time is scaled linearly to ``--total`` (batches are independent, so the
cost is linear in the number of targets). Prints one table row per (implementation, k, batch).

    python3 benchmarks/bench_omp.py --targets 1024 --k 8,16,64 --batch 256,512,1024
    python3 benchmarks/bench_omp.py --matrix gemma.gguf        # real rows (token_embd.weight) or a .npy
    python3 benchmarks/bench_omp.py --mergekit                 # also time mergekit's batch_omp

``same atoms`` and ``median row cos`` compare a run with tokengraft's on the first ``--check``
targets: the share of the same atoms, and the median cosine between the rows each transfers
onto a random "old" matrix (the issue's agreement test with mergekit uses that statistic).
``sel. GFLOPS`` is the useful work of a run, the selection matmuls (2 k N e flops per target),
divided by its time: next to the machine's plain fp32 matmul rate (printed at the start) it
shows how close a run is to the floor an exact pursuit cannot go below. On a shared machine
both move with the load, so compare rows run side by side.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from tokengraft.transplant.methods.omp import omp_batched


def load_matrix(path: str) -> torch.Tensor:
    if path.endswith(".npy"):
        import numpy as np

        return torch.from_numpy(np.load(path)).float()
    import gguf
    from gguf.quants import dequantize

    for tensor in gguf.GGUFReader(path).tensors:
        if tensor.name == "token_embd.weight":
            return torch.from_numpy(dequantize(tensor.data, tensor.tensor_type)).float()
    raise SystemExit(f"{path} has no token_embd.weight")


def make_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """(atoms (N, e), targets (T, e)): random Gaussian rows, or disjoint random rows of a real matrix."""
    g = torch.Generator().manual_seed(args.seed)
    n_targets = max(args.targets, args.check)
    if not args.matrix:
        # anisotropic like real embeddings: column scales fall off slowly
        scale = (1.0 + torch.arange(args.dim) / 32.0).rsqrt()
        atoms = torch.randn(args.atoms, args.dim, generator=g) * scale
        return atoms, torch.randn(n_targets, args.dim, generator=g) * scale
    matrix = load_matrix(args.matrix)
    matrix = matrix[matrix.norm(dim=1) > 0]
    order = torch.randperm(matrix.shape[0], generator=g)
    return matrix[order[: args.atoms]].contiguous(), matrix[order[args.atoms: args.atoms + n_targets]].contiguous()


def gflops(dim: int, atoms: int) -> float:
    a, b = torch.randn(512, dim), torch.randn(atoms, dim)
    a @ b.T
    start = time.perf_counter()
    a @ b.T
    return 2 * 512 * dim * atoms / (time.perf_counter() - start) / 1e9


def run(targets, atoms, k, batch) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    start = time.perf_counter()
    idx, coef, res = [], [], []
    for first in range(0, targets.shape[0], batch):
        fit = omp_batched(targets[first:first + batch], atoms, k)
        idx.append(fit.indices), coef.append(fit.coef), res.append(fit.residual)
    return time.perf_counter() - start, torch.cat(idx), torch.cat(coef), torch.cat(res)


def run_mergekit(targets, atoms, k, batch):
    try:
        from mergekit.tokensurgeon.omp import batch_omp
    except ImportError:
        raise SystemExit("--mergekit needs: pip install --no-deps mergekit && pip install immutables click")
    start = time.perf_counter()
    idx, coef = [], []
    for first in range(0, targets.shape[0], batch):
        i, c = batch_omp(targets[first:first + batch], atoms, k)
        idx.append(i), coef.append(c)
    idx, coef = torch.cat(idx), torch.cat(coef)
    approx = torch.bmm(coef.unsqueeze(1), atoms[idx]).squeeze(1)
    res = (targets - approx).norm(dim=1) / targets.norm(dim=1)
    return time.perf_counter() - start, idx, coef, res


def fidelity(ref: tuple[torch.Tensor, torch.Tensor], other: tuple[torch.Tensor, torch.Tensor],
             old: torch.Tensor) -> tuple[float, float]:
    n = ref[0].shape[0]
    same = sum(len(set(a) & set(b)) for a, b in zip(ref[0].tolist(), other[0][:n].tolist())) / ref[0].numel()
    rows_ref = torch.bmm(ref[1].unsqueeze(1), old[ref[0]]).squeeze(1)
    rows = torch.bmm(other[1][:n].unsqueeze(1), old[other[0][:n]]).squeeze(1)
    return same, float(torch.cosine_similarity(rows_ref, rows, dim=1).median())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--atoms", type=int, default=45_571)
    p.add_argument("--dim", type=int, default=640)
    p.add_argument("--total", type=int, default=216_573, help="targets to extrapolate to")
    p.add_argument("--targets", type=int, default=1024, help="targets actually timed")
    p.add_argument("--k", default="8,16,64")
    p.add_argument("--batch", default="256,512,1024")
    p.add_argument("--check", type=int, default=256, help="targets compared between implementations")
    p.add_argument("--matrix", default="", help=".gguf (token_embd.weight) or .npy rows instead of random data")
    p.add_argument("--mergekit", action="store_true", help="also time mergekit.tokensurgeon.omp.batch_omp")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.check = min(args.check, args.targets)
    if args.threads:
        torch.set_num_threads(args.threads)
    atoms, targets = make_data(args)
    old = torch.randn(atoms.shape[0], 576, generator=torch.Generator().manual_seed(args.seed + 1))
    data = Path(args.matrix).name if args.matrix else "random"
    print(f"data {data}: {atoms.shape[0]} atoms x {atoms.shape[1]}, timing {args.targets} targets, "
          f"extrapolating to {args.total}; {torch.get_num_threads()} threads; "
          f"fp32 matmul now {gflops(atoms.shape[1], atoms.shape[0]):.0f} GFLOPS")
    print("| impl | k | batch | s / 1k targets | total (min) | sel. GFLOPS | mean rel. residual | same atoms |"
          " median row cos |")
    print("|---|---|---|---|---|---|---|---|---|")
    timed = targets[: args.targets]
    impls = ["tokengraft", "mergekit"] if args.mergekit else ["tokengraft"]
    for k in (int(x) for x in args.k.split(",")):
        ours = None
        for batch in (int(x) for x in args.batch.split(",")):
            for impl in impls:
                seconds, idx, coef, res = (run_mergekit if impl == "mergekit" else run)(timed, atoms, k, batch)
                ours = ours or (idx[: args.check], coef[: args.check])
                same, cos = fidelity(ours, (idx, coef), old)
                per_k = seconds / timed.shape[0] * 1000
                rate = 2 * k * atoms.shape[0] * atoms.shape[1] * timed.shape[0] / seconds / 1e9
                print(f"| {impl} | {k} | {batch} | {per_k:.2f} | {per_k * args.total / 1000 / 60:.1f} | {rate:.1f} | "
                      f"{float(res.mean()):.4f} | {same:.3f} | {cos:.5f} |", flush=True)


if __name__ == "__main__":
    main()
