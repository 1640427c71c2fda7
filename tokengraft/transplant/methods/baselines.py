"""The two baselines that every method must beat.

- ``random``: each new row drawn from N(mu_j, sigma_j), the old matrix's per-column mean and
  standard deviation, seeded by ``problem.seed``.
- ``mean``: each new row is the old matrix's mean row.

Copied tokens keep their old rows in both. No token can fail, so there is no fallback.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tokengraft.transplant.methods.base import InitProblem, InitResult, register
from tokengraft.transplant.methods.fallback import column_stats, finish, normal_rows, validate


@dataclass
class RandomOptions:
    scale: float = 1.0  # multiplies sigma; 1.0 = the old matrix's own spread


@dataclass
class MeanOptions:
    pass  # nothing to choose: the mean row is the mean row


@register("random", RandomOptions, summary="seeded N(mean, std) of the old matrix per dimension; overlap copied")
def random_init(problem: InitProblem, options: RandomOptions) -> InitResult:
    """(V_new, d) rows: copied where the token exists in the old vocabulary, else a seeded normal draw.

    Draws are made for the non-copied tokens in id order, so a seed fixes every row.
    """
    validate(problem)
    todo = (problem.copied < 0).cpu()
    rows = torch.zeros(problem.new_size, problem.old.shape[1], device=problem.old.device)
    n = int(todo.sum())
    if n:
        rows[todo.to(rows.device)] = normal_rows(problem.old, n, problem.generator(), options.scale)
    return finish(problem, rows, ["random"] * problem.new_size, "mean")


@register("mean", MeanOptions, summary="the old matrix's mean row for every new token; overlap copied")
def mean_init(problem: InitProblem, options: MeanOptions) -> InitResult:
    """(V_new, d) rows: copied where possible, else the mean row of ``problem.old``."""
    validate(problem)
    mean, _ = column_stats(problem.old)
    rows = mean.expand(problem.new_size, -1).clone()
    return finish(problem, rows, ["mean"] * problem.new_size, "mean")
