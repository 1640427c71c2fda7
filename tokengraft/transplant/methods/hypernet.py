"""``hypernet``: rows predicted by a trained ZeTT-style hypernetwork (:mod:`tokengraft.hypernet`).

The hypernetwork reads the base model's rows of each new token's old pieces and predicts
the token's input and output rows as corrections to FVT's piece mean; an untrained one
gives FVT exactly. The provider ``hypernet`` (``--hypernet DIR``) loads it, checks that it
belongs to this base model and hands it over with the base's rows in
``problem.extras["hypernet"]`` (a :class:`HypernetInputs`); the method is then a pure
function of the problem and that network. Input and output rows are predicted together,
once (``prepare``), and each matrix takes its own; a tied base comes out untied. Copied
tokens stay copied; tokens without pieces get the fallback (default: the mean row).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import check_fallback, empty_reason, finish, validate

EXTRA = "hypernet"


@dataclass
class HypernetInputs:
    """What the provider hands to the method: the network and the base rows it reads."""
    loaded: Any                     # tokengraft.hypernet.store.LoadedHypernet, checked against the base
    old_in: torch.Tensor            # (V_old, d) float32 input rows of the base
    old_out: torch.Tensor           # (V_old, d) output rows (the same tensor when tied)


@dataclass
class HypernetOptions:
    fallback: str = "mean"          # rows of tokens without pieces: "mean" | "normal"
    block: int = 4096               # tokens per forward pass of the hypernetwork


def predict_both(problem: InitProblem, options: HypernetOptions) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(V_new, d) input rows, output rows and sources; rows of copied and piece-less tokens are 0."""
    from tokengraft.hypernet.apply import predict_rows

    check_fallback(options.fallback)
    given = problem.extras.get(EXTRA)
    if not isinstance(given, HypernetInputs):
        raise TokengraftError("method hypernet needs a trained hypernetwork: pass --hypernet DIR "
                              "(make one with: tokengraft hypernet train --model SPEC --corpus CORPUS --out DIR)")
    old_in, old_out = given.old_in, given.old_out
    copied = problem.copied.cpu() >= 0
    todo = [t for t, p in enumerate(problem.pieces) if p and not copied[t]]
    rows_in = torch.zeros(problem.new_size, old_in.shape[1], device=old_in.device)
    rows_out = torch.zeros_like(rows_in)
    if todo:
        pred_in, pred_out = predict_rows(given.loaded.net.to(old_in.device), old_in, old_out, problem.pieces, todo,
                                         options.block)
        where = torch.tensor(todo, device=old_in.device)
        rows_in[where], rows_out[where] = pred_in, pred_out
    source = ["hypernet" if problem.pieces[t] else f"fallback:{empty_reason(problem, t)}"
              for t in range(problem.new_size)]
    return rows_in, rows_out, source


@register("hypernet", HypernetOptions, needs=Needs(extras=(EXTRA,)), unties=True, prepare=predict_both,
          summary="rows predicted by a trained hypernetwork (ZeTT) from the old pieces' rows; needs --hypernet DIR")
def hypernet(problem: InitProblem, options: HypernetOptions) -> InitResult:
    """The input or output rows that ``predict_both`` computed once for both matrices."""
    validate(problem)
    rows_in, rows_out, source = problem.shared if problem.shared is not None else predict_both(problem, options)
    rows = rows_in if problem.which == "input" else rows_out
    return finish(problem, rows.to(problem.old.device).clone(), list(source), options.fallback)
