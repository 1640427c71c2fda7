"""``RowAdamW``: AdamW that steps only the embedding rows a batch uses, at the cost of those rows.

A sparse step (:mod:`tokengraft.heal.sparse_rows`) moves only the rows its batch reads or
predicts. Done with a dense AdamW, every step still paid for every row of both 32k x 576
matrices: it decayed every moment, stepped every row, then put the unused rows back. On 2 CPU
cores that was about a fifth of a heal step of the German SmolLM2 transplant (session 30's
profile: AdamW 0.50 s of 2.6 s a step, most of it on the two matrices).

This optimizer keeps, for such a matrix, the step at which each row last stepped. A row whose
gradient was zero for ``k - 1`` steps has moments ``beta^(k-1)`` times what they were (that
is all a dense step does to them), so the decay is applied when the row steps again, and then
the usual AdamW update of that row. Rows not named keep their values and moments, as the dense
step with the rows put back left them: the result is the same up to float rounding
(``tests/test_heal_row_adam.py`` against ``torch.optim.AdamW`` with the rows put back). Every
other parameter steps in ``torch.optim.AdamW`` itself.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch


class RowAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` whose ``row_params`` step only the rows named by :meth:`select_rows`.

    >>> w = torch.nn.Parameter(torch.zeros(3, 2)); opt = RowAdamW([w], lr=0.1, row_params=[w])
    >>> w.grad = torch.ones(3, 2); opt.select_rows(w, torch.tensor([True, False, True])); _ = opt.step()
    >>> [round(x, 4) for x in w.detach()[:, 0].tolist()]
    [-0.1, 0.0, -0.1]
    """

    def __init__(self, params: Iterable[Any], lr: float, row_params: Iterable[torch.nn.Parameter] = ()) -> None:
        super().__init__(params, lr=lr)
        self.row_ids = {id(p) for p in row_params}
        self._rows: dict[int, torch.Tensor] = {}

    def select_rows(self, param: torch.nn.Parameter, used: torch.Tensor) -> None:
        """The rows of ``param`` (a (rows,) bool mask) that the next step moves; without a call, all."""
        if id(param) not in self.row_ids:
            raise ValueError("select_rows: this parameter was not given as a row parameter")
        self._rows[id(param)] = used.to(param.device).nonzero().squeeze(1)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        held = []
        for group in self.param_groups:
            if group["amsgrad"] or group["maximize"]:
                raise ValueError("RowAdamW steps rows with plain AdamW: no amsgrad, no maximize")
            for p in group["params"]:
                if id(p) in self.row_ids and p.grad is not None:
                    held.append((group, p, p.grad))
                    p.grad = None  # hidden from the dense step
        try:
            loss = super().step(closure)
        finally:
            for _, p, grad in held:
                p.grad = grad
        for group, p, grad in held:
            row_step(self.state[p], group, p, grad, self._rows.get(id(p)))
        self._rows.clear()
        return loss


def row_step(state: dict[str, Any], group: dict[str, Any], param: torch.Tensor, grad: torch.Tensor,
             rows: torch.Tensor | None) -> None:
    """One AdamW step of ``param``'s ``rows`` (all when None), after the decay of the steps they skipped."""
    beta1, beta2 = group["betas"]
    lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
    if "exp_avg" not in state:
        state["step"] = torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    if "last" not in state:  # fresh, or moments a dense step kept current (an older checkpoint)
        state["last"] = torch.full((param.shape[0],), float(state["step"]), device=param.device)
    state["step"] += 1
    t = float(state["step"])
    if rows is None:
        rows = torch.arange(param.shape[0], device=param.device)
    if rows.numel() == 0:
        return
    skipped = (t - 1 - state["last"][rows]).unsqueeze(1)  # steps since the row last stepped, this one not counted
    m = state["exp_avg"][rows] * torch.pow(beta1, skipped)
    v = state["exp_avg_sq"][rows] * torch.pow(beta2, skipped)
    g = grad[rows].to(m.dtype)
    m.lerp_(g, 1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    w = param[rows]
    w.mul_(1 - lr * decay)
    denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)
    w.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))
    param[rows] = w
    state["exp_avg"][rows] = m
    state["exp_avg_sq"][rows] = v
    state["last"][rows] = t
