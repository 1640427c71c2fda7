"""``hypernet``: rows predicted by a trained ZeTT-style hypernetwork (:mod:`tokengraft.hypernet`).

The hypernetwork reads the base model's rows of each new token's old pieces and predicts
the token's input and output rows as corrections to FVT's piece mean; an untrained one
gives FVT exactly. It is loaded once by the orchestrator (``--hypernet DIR``) and handed
to the method in ``problem.extras["hypernet"]``; the method itself is a pure function of
the problem and that network. A network trained for another base model is refused.
Copied tokens stay copied; tokens without pieces get the fallback (default: the mean row).
The input call computes input and output rows together and leaves the output rows in
``extras`` for the output call, so a tied base comes out untied with both in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, register
from tokengraft.transplant.methods.fallback import check_fallback, empty_reason, finish, validate

EXTRA = "hypernet"                 # the LoadedHypernet
EXTRA_OUT = "hypernet:old_out"     # the base's output matrix, for a hypernetwork of an untied base
_CACHE = "hypernet:rows_out"


@dataclass
class HypernetOptions:
    fallback: str = "mean"         # rows of tokens without pieces: "mean" | "normal"
    block: int = 4096              # tokens per forward pass of the hypernetwork


@register("hypernet", HypernetOptions, unties=True,
          summary="rows predicted by a trained hypernetwork (ZeTT) from the old pieces' rows; needs --hypernet DIR")
def hypernet(problem: InitProblem, options: HypernetOptions) -> InitResult:
    """Input and output rows from the hypernetwork in ``problem.extras['hypernet']``."""
    from tokengraft.hypernet.apply import predict_rows

    validate(problem)
    check_fallback(options.fallback)
    cached = problem.extras.pop(_CACHE, None) if problem.which == "output" else None
    if cached is not None and cached[0] == (problem.old.shape, len(problem.pieces)):
        rows, source = cached[1], cached[2]
        return finish(problem, rows.to(problem.old.device), list(source), options.fallback)
    loaded = problem.extras.get(EXTRA)
    if loaded is None:
        raise TokengraftError("method hypernet needs a trained hypernetwork: pass --hypernet DIR "
                              "(make one with tokengraft hypernet train)")
    old = problem.old.float()
    if problem.which == "input":
        loaded.check(old)
    old_out = old
    if loaded.net.config.untied:
        old_out = problem.extras.get(EXTRA_OUT)
        if old_out is None or problem.which == "output":
            raise TokengraftError("this hypernetwork reads an untied base's input and output rows; "
                                  "apply it through tokengraft transplant, which provides both")
        old_out = old_out.to(old.device).float()
    net = loaded.net.to(old.device)
    copied = problem.copied.cpu() >= 0
    todo = [t for t, p in enumerate(problem.pieces) if p and not copied[t]]
    rows_in = torch.zeros(problem.new_size, old.shape[1], device=old.device)
    rows_out = rows_in.clone()
    if todo:
        pred_in, pred_out = predict_rows(net, old, old_out, problem.pieces, todo, options.block)
        where = torch.tensor(todo, device=old.device)
        rows_in[where], rows_out[where] = pred_in, pred_out
    source = ["hypernet" if problem.pieces[t] else f"fallback:{empty_reason(problem, t)}"
              for t in range(problem.new_size)]
    if problem.which == "input":
        problem.extras[_CACHE] = ((problem.old.shape, len(problem.pieces)), rows_out.cpu(), list(source))
        return finish(problem, rows_in, source, options.fallback)
    return finish(problem, rows_out, source, options.fallback)
