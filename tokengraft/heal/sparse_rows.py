"""Sparse ("lazy") updates of embedding rows: a step moves only the rows its batch uses.

Adam divides each gradient by its own running scale, so a row that gets a tiny gradient
moves as far as one that gets a large one. The output matrix gets a gradient in every row
at every position (the softmax pushes every token but the next one down), so with a dense
Adam step the rows of tokens that the training text never shows all move by the full step
size, step after step, in the direction that lowers them. On German help text this is
what made a healed transplant worse than the zero-shot one on other German text (man
pages): on ``manpages:de:dev``, after 88 dense steps on ``libreoffice:de:fit``, tokens absent
from the first MB of that text lost 2.8 nats each on average, those seen there 100-999 times
gained 2.0 (``benchmarks/heal_drift.py``).

A sparse step (TensorFlow's LazyAdam; ``torch.optim.SparseAdam`` for sparse gradients)
updates only the rows the batch uses: input rows of tokens it reads, output rows of tokens
it predicts (both, for one tied matrix). Other rows keep their values and their gradient
is not counted; their moments decay as usual. The rows used by a step are computed from the
whole global batch, so every process of a multi-process run keeps the same rows.

Hard negatives (``--sparse-negatives N``): a sparse step would never lower a token the model
predicts where it does not come next unless that token is also a target somewhere in the
batch, so a fresh transplant's overrated rows stayed overrated. The output rows outside the
batch's targets with the N largest gradients also step: a non-target row's gradient sums, over
the batch's positions, the probability the model gives that token times the state there, so
these are the tokens it most wrongly predicts in this batch. The thousands of rows it gives
next to nothing keep their values.
Gradients are already summed over processes when the rows are chosen, so all pick the same.
On dev text (lora, 88 steps of 2 x 512 on ``libreoffice:de:fit``, three quarters of the change
kept), 2,048 negatives took LibreOffice dev text from 0.836 to 0.802 of the original's BPB and
kept man pages at 1.144 (1.146 without); 8,192 gained more on the first and lost a little on the
second, as a dense step does (README, "Heal on a CPU budget").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from tokengraft.heal.modes import unwrap


def used_rows(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """(vocab,) bool mask of the rows ``ids`` name (ids outside [0, vocab) are ignored).

    >>> used_rows(torch.tensor([[0, 2], [2, 7]]), 5).tolist()
    [True, False, True, False, False]
    """
    used = torch.zeros(vocab, dtype=torch.bool)
    used[ids[(ids >= 0) & (ids < vocab)]] = True
    return used


def hard_negatives(grad: torch.Tensor, used: torch.Tensor, n: int) -> torch.Tensor:
    """(V,) bool mask of the ``n`` rows outside ``used`` whose gradient rows are longest.

    >>> g = torch.tensor([[9.0], [1.0], [3.0], [0.0], [2.0]])
    >>> hard_negatives(g, torch.tensor([True, False, False, False, False]), 2).tolist()
    [False, False, True, False, True]
    """
    norms = grad.detach().float().norm(dim=1).cpu()
    norms[used] = -1.0
    out = torch.zeros(len(norms), dtype=torch.bool)
    out[norms.topk(min(n, int((~used).sum()))).indices] = True
    return out


def batch_ids(rows: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, next tokens) of a training batch: a (B, L) tensor, or ALM rows with ``.student`` ids."""
    if isinstance(rows, torch.Tensor):
        return rows[:, :-1].reshape(-1), rows[:, 1:].reshape(-1)
    reads = [t for r in rows for t in r.student[:-1]]
    predicts = [t for r in rows for t in r.student[1:]]
    return torch.tensor(reads, dtype=torch.long), torch.tensor(predicts, dtype=torch.long)


@dataclass
class SparseRows:
    """Keeps the rows a step does not use where they were (call ``mask`` before the step, ``restore`` after).

    With a :class:`~tokengraft.heal.row_adam.RowAdamW` (``optimizer``) the step itself touches only
    the used rows of the matrices it was given; any other matrix gets its unused rows put back."""

    read_param: torch.nn.Parameter                  # the input embedding matrix
    predict_param: torch.nn.Parameter               # the output matrix (the same object when tied)
    negatives: int = 0                              # output rows outside the targets that step too (largest gradients)
    optimizer: Any = None                           # a RowAdamW that steps only the rows it is told
    _kept: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @classmethod
    def of(cls, model: Any, negatives: int = 0, optimizer: Any = None) -> "SparseRows | None":
        """For a model whose embedding matrices are trained, else None."""
        base = unwrap(model)
        emb, head = base.get_input_embeddings(), base.get_output_embeddings()
        predict = head.weight if head is not None else emb.weight
        if not (emb.weight.requires_grad or predict.requires_grad):
            return None
        return cls(emb.weight, predict, negatives, optimizer)

    def plan(self, rows: Any) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
        """(matrix, (rows,) bool mask of the rows this step uses) for each trained matrix."""
        reads, predicts = batch_ids(rows)
        read = used_rows(reads, self.read_param.shape[0])
        predict = used_rows(predicts, self.predict_param.shape[0])
        if self.negatives and self.predict_param.grad is not None:
            taken = read | predict if self.predict_param is self.read_param else predict
            predict |= hard_negatives(self.predict_param.grad, taken, self.negatives)
        if self.predict_param is self.read_param:
            return [(self.read_param, read | predict)]
        return [(self.read_param, read), (self.predict_param, predict)]

    def mask(self, rows: Any) -> None:
        """Zero the gradients of unused rows (before clipping and the step) and have the step keep them."""
        self._kept = []
        for param, used in self.plan(rows):
            if not param.requires_grad or param.grad is None:
                continue
            unused = ~used.to(param.device)
            param.grad[unused] = 0
            if self.optimizer is not None and id(param) in self.optimizer.row_ids:
                self.optimizer.select_rows(param, used)
            else:
                self._kept.append((param, unused, param.detach()[unused].clone()))

    def restore(self) -> None:
        """Put the unused rows back as they were before the step (Adam's momentum moves them otherwise)."""
        with torch.no_grad():
            for param, unused, values in self._kept:
                param[unused] = values
        self._kept = []
