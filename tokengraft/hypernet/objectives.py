"""What one training step asks of the hypernetwork, and the losses of its answers.

Every objective turns the step's random generator into a :class:`Part`: the decompositions
whose rows it needs, and a function from the predicted rows to its loss. The trainer
predicts the rows of every part in one batched call (one forward pass, which is also what
DDP wants) and sums the weighted losses.

* :class:`Reconstruction` (``recon``): base tokens cut by a reduced merge list
  (:mod:`~tokengraft.hypernet.forest`); loss = squared error of the predicted rows against
  the base model's own rows, per dimension in units of the base rows' std.
* ``head`` and ``lm`` (:mod:`~tokengraft.hypernet.textual`): cross-entropy of text
  tokenized by a sampled tokenizer, on cached base hidden states or through the frozen body.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from tokengraft.hypernet.base import Base
from tokengraft.hypernet.forest import MergeForest

Loss = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Part:
    pieces: list[list[int]]            # decompositions whose (input, output) rows the part needs
    loss: Loss                         # (rows_in, rows_out) of exactly those -> (scalar, logged numbers)
    weight: float = 1.0
    name: str = ""


def local_slice(n: int, rank: int, world: int) -> slice:
    """This process's share of ``n`` items of the global batch (contiguous, sizes differ by <= 1)."""
    per, extra = divmod(n, world)
    start = rank * per + min(rank, extra)
    return slice(start, start + per + (1 if rank < extra else 0))


@dataclass
class Reconstruction:
    base: Base
    forest: MergeForest
    batch: int                          # tokens per step (global)
    k_min: int                          # lowest merge rank a cut may keep
    max_pieces: int
    out_weight: float = 1.0             # weight of the output-row error (input rows weigh 1)
    std_in: torch.Tensor | None = field(default=None, repr=False)
    std_out: torch.Tensor | None = field(default=None, repr=False)

    def part(self, rng: np.random.Generator, rank: int, world: int) -> Part:
        tokens, pieces = self.forest.sample(rng, self.batch, self.k_min, limit=self.base.old_in.shape[0],
                                            max_pieces=self.max_pieces)
        mine = local_slice(len(tokens), rank, world)
        tokens, pieces = tokens[mine], pieces[mine]
        ids = torch.tensor(tokens, dtype=torch.long, device=self.base.old_in.device)
        target_in, target_out = self.base.old_in[ids], self.base.old_out[ids]
        std_in, std_out = self.std_in, self.std_out

        def loss(rows_in: torch.Tensor, rows_out: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            err_in = ((rows_in.float() - target_in) / std_in).pow(2).mean()
            err_out = ((rows_out.float() - target_out) / std_out).pow(2).mean()
            total = (err_in + self.out_weight * err_out) / (1.0 + self.out_weight)
            return total, {"recon_in": float(err_in.detach()), "recon_out": float(err_out.detach())}

        return Part(pieces, loss, name="recon")


def sampled_cross_entropy(hidden: torch.Tensor, fixed_rows: torch.Tensor, new_rows: torch.Tensor,
                          offsets: torch.Tensor, targets: torch.Tensor, head: object) -> torch.Tensor:
    """Mean cross-entropy of ``targets`` (N,) over [fixed rows; new rows], logits shifted by ``offsets``.

    ``hidden`` (N, d); ``fixed_rows`` (F, d) copied base rows; ``new_rows`` (M, d) predicted;
    ``offsets`` (F + M,) added to the logits (log of how many unsampled tokens each sampled
    negative stands for, 0 elsewhere); ``head``: a measure ``OutputHead``-like object whose
    ``softcap`` and ``scale`` are applied as the model's own head applies them.
    """
    weight = torch.cat([fixed_rows, new_rows.to(fixed_rows.dtype)])
    logits = F.linear(hidden.to(weight.dtype), weight).float()
    scale, softcap = getattr(head, "scale", 1.0), getattr(head, "softcap", None)
    if scale != 1.0:
        logits = logits * scale
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits + offsets, targets)


def negative_offset(rest: int, drawn: int) -> float:
    """log(rest / drawn): each of ``drawn`` uniform negatives stands for rest / drawn tokens."""
    return math.log(rest / drawn) if drawn and rest > drawn else 0.0
