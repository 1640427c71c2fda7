"""OMP: express each new token as a sparse combination of shared tokens, then transfer it.

Orthogonal matching pursuit, as in "Training-Free Tokenizer Transplantation via Orthogonal
Matching Pursuit" (2025; mergekit's tokensurgeon). In a space where the new vocabulary has
vectors (a donor model's embeddings on the new tokenizer, else auxiliary vectors) the
dictionary is the shared tokens' vectors; each non-shared token is approximated with ``k``
atoms chosen greedily, and its new row is ``sum_j c_j * old[copied[shared_j]]``.

The pursuit (:mod:`.omp_batch`): by default (``selection="gram"``, :mod:`.omp_gram`) Batch-OMP
with a float16 Gram matrix in a compiled kernel, one token per core through all k steps; where
no C++ compiler or not enough memory is available (or off CPU) it falls back, with one log line,
to ``"screened"``: B targets advance together and each step scans all atoms with one bfloat16
matrix product whose best candidates are re-scored in float32. Both are checked to give the plain
pursuit's picks; ``selection="exact"`` scans in float32. :func:`omp_reference` (one target,
``lstsq`` every step) is the plain version the tests hold both to. ``benchmarks/bench_omp.py``
times them against mergekit's.

Fallbacks (default: the old matrix's mean row): a token whose vector in the space is zero or
non-finite (``fallback:no-vector``), every token when no shared token has a vector
(``fallback:no-dictionary``). ``residual`` = ||x - sum c_j a_j|| / ||x|| per approximated token.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import DONOR, InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import check_fallback, finish, finite_rows, validate
from tokengraft.transplant.methods.omp_batch import SELECTIONS, Dictionary, OMPFit, omp_batched, resolve_selection

__all__ = ["OMPFit", "OMPOptions", "omp", "omp_batched"]

logger = logging.getLogger(__name__)


@dataclass
class OMPOptions:
    k: int = 64              # atoms per token (the paper's reference default)
    space: str = "auto"      # "donor" | "aux" | "auto" (the donor when given, else the auxiliary vectors)
    batch_size: int = 1024   # targets per batched pursuit; memory ~ batch_size x atoms floats
    ridge: float = 1e-6      # Tikhonov term, relative to each chosen atom's squared norm
    fallback: str = "mean"   # "mean" | "normal" for tokens without a vector in the space
    selection: str = "gram"  # "gram" (compiled Batch-OMP; falls back to screened) | "screened" | "exact"


def _space(problem: InitProblem, which: str) -> tuple[str, torch.Tensor]:
    if which not in ("auto", "donor", "aux"):
        raise TokengraftError(f"unknown OMP space {which!r}; choose auto, donor or aux")
    if which in ("auto", "donor") and problem.donor_new is not None:
        return "donor", problem.donor_new
    if which in ("auto", "aux") and problem.aux_new is not None:
        return "aux", problem.aux_new
    raise TokengraftError("omp needs vectors of the new vocabulary: pass --donor SPEC (a model that already"
                          " uses the new tokenizer) or --aux SPEC")


def _check(options: OMPOptions) -> None:
    check_fallback(options.fallback)
    if options.selection not in SELECTIONS:
        raise TokengraftError(f"unknown OMP selection {options.selection!r}; choose one of: {', '.join(SELECTIONS)}")
    if options.k < 1 or options.batch_size < 1 or options.ridge < 0:
        raise TokengraftError(f"OMP options out of range (k={options.k}, batch_size={options.batch_size},"
                              f" ridge={options.ridge}); use k >= 1, batch_size >= 1, ridge >= 0")


@register("omp", OMPOptions, needs=Needs(space=(DONOR, "strings")),
          summary="orthogonal matching pursuit over shared tokens in a donor (or auxiliary) space")
def omp(problem: InitProblem, options: OMPOptions) -> InitResult:
    """Rows of non-shared tokens = sum_j c_j old[shared_j], c from k-atom OMP in the donor/aux space."""
    validate(problem)
    _check(options)
    name, space = _space(problem, options.space)
    if space.shape[0] != problem.new_size:
        raise TokengraftError(f"the {name} matrix has {space.shape[0]} rows for {problem.new_size} new tokens;"
                              " it must cover exactly the new vocabulary")
    copied = problem.copied.to(space.device)
    usable = finite_rows(space) & (space.abs().sum(dim=1) > 0)
    shared = ((copied >= 0) & usable).nonzero().flatten()
    wanted = ((copied < 0) & usable).nonzero().flatten()
    source = ["fallback:no-vector"] * problem.new_size
    rows = torch.zeros(problem.new_size, problem.old.shape[1], device=problem.old.device)
    residual = torch.full((problem.new_size,), float("nan"))
    if shared.numel() == 0:
        source = ["fallback:no-dictionary"] * problem.new_size
        logger.warning("omp: no shared token has a %s vector; every new row is a fallback", name)
        return finish(problem, rows, source, options.fallback, residual)
    atoms = Dictionary(space[shared].float())
    old_atoms = problem.old[problem.copied[shared.to(problem.copied.device)]].float()
    k = min(options.k, atoms.size)
    start = time.perf_counter()
    selection = resolve_selection(atoms, options.selection, space.device)
    # the gram selection takes all tokens at once (it batches inside and keeps memory small)
    every = (omp_batched(space[wanted].float(), atoms, k, ridge=options.ridge, selection=selection)
             if selection == "gram" and wanted.numel() else None)
    for first in range(0, wanted.numel(), options.batch_size):
        ids = wanted[first:first + options.batch_size]
        if every is not None:
            fit = every.slice(first, first + ids.numel())
        else:
            fit = omp_batched(space[ids].float(), atoms, k, ridge=options.ridge, selection=selection)
        picked = old_atoms[fit.indices.to(old_atoms.device)]                 # (B, k, d)
        rows[ids.to(rows.device)] = torch.bmm(fit.coef.to(picked.device).unsqueeze(1), picked).squeeze(1)
        residual[ids.cpu()] = fit.residual.cpu()
        logger.debug("omp: %d / %d tokens", first + ids.numel(), wanted.numel())
    for t in wanted.tolist():
        source[t] = "omp"
    if wanted.numel():
        logger.info("omp in the %s space: %d tokens, %d atoms, k=%d, %s selection, %.1f s, median relative"
                    " residual %.3f", name, wanted.numel(), atoms.size, k, selection, time.perf_counter() - start,
                 float(residual[wanted.cpu()].median()))
    return finish(problem, rows, source, options.fallback, residual)
