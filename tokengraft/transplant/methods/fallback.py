"""Shared pieces of every method: the documented fallbacks and the checks of a problem.

A new token that a method cannot estimate (its decomposition is empty, it has no donor
vector, the estimate came out non-finite) gets one of two documented rows:

- ``"mean"``: the mean row of the old matrix (no randomness; the FVT/WVT/OMP default);
- ``"normal"``: a draw from N(mu, sigma) of the old matrix, per dimension, seeded by
  ``problem.seed`` (the draws follow the order of the fallback tokens, so the same problem
  and seed give the same rows).

Its ``source`` is ``"fallback:<reason>"``. Copied tokens (``problem.copied[t] >= 0``) get the
old row itself, bit for bit, from the orchestrator (:func:`tokengraft.transplant.core.run_method`).
"""
from __future__ import annotations

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult

FALLBACKS = ("mean", "normal")


def check_fallback(how: str) -> str:
    if how not in FALLBACKS:
        raise TokengraftError(f"unknown fallback {how!r}; choose one of: {', '.join(FALLBACKS)}")
    return how


def finite_rows(rows: torch.Tensor) -> torch.Tensor:
    """(V,) bool: rows without NaN/Inf. One pass and no (V, d) mask: a row sum is finite iff every
    entry is (or a finite row overflowed float32, which is as unusable)."""
    return torch.isfinite(rows.sum(dim=1, dtype=torch.float32))


def column_stats(old: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d,), (d,) float32 mean and standard deviation of each column, ignoring non-finite rows.

    >>> [t.tolist() for t in column_stats(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))]
    [[2.0, 0.0], [1.0, 0.0]]
    """
    old = old.float()
    finite = finite_rows(old)
    if not bool(finite.all()):
        old = old[finite]
    if old.shape[0] == 0:
        zero = torch.zeros(old.shape[1], device=old.device)
        return zero, zero.clone()
    # population std (correction 0): defined for a single row, and the scale a new row should have
    return old.mean(dim=0), old.std(dim=0, correction=0)


def normal_rows(old: torch.Tensor, n: int, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """(n, d) float32 rows drawn from N(mu_j, scale * sigma_j) of ``old``'s columns, on ``old``'s device.

    The draw happens on the CPU generator so that CPU and CUDA runs give the same rows.
    """
    mean, std = column_stats(old)
    noise = torch.randn(n, old.shape[1], generator=generator).to(old.device)
    return noise.mul_(std * scale).add_(mean)


def fallback_rows(old: torch.Tensor, n: int, how: str, generator: torch.Generator) -> torch.Tensor:
    """(n, d) float32 fallback rows: the mean row repeated, or seeded normal draws."""
    if check_fallback(how) == "mean":
        return column_stats(old)[0].expand(n, -1).clone()
    return normal_rows(old, n, generator)


def empty_reason(problem: InitProblem, t: int) -> str:
    """Why token ``t`` has no decomposition: a special / byteless token, or bytes the old side cannot spell."""
    return "no-bytes" if problem.new_bytes[t] is None else "empty-decomposition"


def validate(problem: InitProblem) -> None:
    """One-line errors for a problem whose parts disagree in size (an orchestrator bug or bad input)."""
    n, v_old = problem.new_size, problem.old.shape[0]
    if problem.old.dim() != 2:
        raise TokengraftError(f"the old matrix must be 2-D (V_old, d), got shape {tuple(problem.old.shape)}")
    if problem.copied.shape != (n,) or len(problem.pieces) != n:
        raise TokengraftError(f"correspondence sizes disagree: {n} new tokens, copied {tuple(problem.copied.shape)},"
                              f" {len(problem.pieces)} decompositions; rebuild the correspondence")
    if n and int(problem.copied.max()) >= v_old:
        raise TokengraftError(f"a copied token points at old row {int(problem.copied.max())} but the matrix has"
                              f" {v_old} rows; the old tokenizer and model disagree")


def finish(problem: InitProblem, rows: torch.Tensor, source: list[str], how: str,
           residual: torch.Tensor | None = None) -> InitResult:
    """Complete a method's result with its fallback rows.

    ``rows`` (V_new, d) float32 holds the method's estimates; rows whose ``source`` starts
    with ``"fallback:"`` (copied tokens aside) are overwritten with fallback rows, drawn in id
    order. Returns rows in ``old.dtype``. Copied rows and non-finite estimates are not its
    business: the orchestrator copies the overlap and repairs non-finite rows, once, for every method.
    """
    copied = problem.copied.to(rows.device) >= 0
    todo = torch.tensor([s.startswith("fallback:") for s in source], dtype=torch.bool, device=rows.device) & ~copied
    if bool(todo.any()):
        rows[todo] = fallback_rows(problem.old, int(todo.sum()), how, problem.generator()).to(rows.device)
    if residual is not None:
        residual = residual.float().clone()
        residual[todo.to(residual.device)] = float("nan")
    return InitResult(rows=rows.to(problem.old.dtype), source=source, residual=residual)
