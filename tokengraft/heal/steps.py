"""One micro-step of each loss: forward, loss sums, and the number to backpropagate.

Every function returns ``(objective, sums)``: ``objective`` is this process's share of
the global-batch mean (its sums divided by the global counts, times the number of
processes, because DDP averages gradients over processes); ``sums`` is the detached
float64 pair (next-token NLL sum, ALM excess-BCE sum) that the trainer reduces over processes
and turns into logged means with :func:`step_losses`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tokengraft.heal.losses import AlmBatch, alm_bce, chunk_sums, token_logprobs


@dataclass(frozen=True)
class Counts:
    """Normalisers of one optimizer step, counted over the global batch."""

    tokens: int        # predicted student tokens
    chunks: int = 0    # ALM chunks
    world: int = 1     # processes


def lm_micro(model: Any, ids: torch.Tensor, counts: Counts,
             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token loss on packed rows ``ids`` (b, T) (no padding); ``weights`` (b, T-1) scale the
    loss of each target (``--continuation-weight``), while the logged loss stays the plain mean."""
    logits = model(input_ids=ids).logits
    logp = token_logprobs(logits, ids)[:, 1:]
    nll = -logp.sum()
    objective = nll if weights is None else -(logp * weights.to(logp.device)).sum()
    return objective * (counts.world / counts.tokens), torch.stack([nll.detach(), torch.zeros_like(nll)]).double()


def teacher_chunk_logps(teacher: Any, batch: AlmBatch) -> torch.Tensor:
    """(num_chunks,) chunk log-probabilities of the teacher, without gradients."""
    with torch.no_grad():
        logits = teacher(input_ids=batch.teacher, attention_mask=batch.teacher_mask).logits
        return chunk_sums(token_logprobs(logits, batch.teacher), batch.teacher_chunk, batch.num_chunks)


def alm_micro(model: Any, teacher_logp: torch.Tensor, batch: AlmBatch, counts: Counts,
              tau: float, lm_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ALM loss (mean BCE per chunk) plus ``lm_weight`` x the mean next-token loss."""
    logits = model(input_ids=batch.student, attention_mask=batch.student_mask).logits
    token_logp = token_logprobs(logits, batch.student)
    student_logp = chunk_sums(token_logp, batch.student_chunk, batch.num_chunks)
    alm = alm_bce(teacher_logp, student_logp, tau).sum()
    nll = -(token_logp[:, 1:] * batch.student_mask[:, 1:]).sum()
    objective = (alm / max(counts.chunks, 1) + lm_weight * nll.double() / counts.tokens) * counts.world
    # The BCE's floor is the teacher's own entropy, which varies from batch to batch; the
    # logged ALM loss subtracts it (a Bernoulli KL, 0 when every chunk matches).
    floor = alm_bce(teacher_logp, teacher_logp, tau).sum()
    return objective.float(), torch.stack([nll.detach().double(), (alm - floor).detach()])


def step_losses(sums: torch.Tensor, counts: Counts, alm: bool, lm_weight: float) -> dict[str, float]:
    """Logged means of one optimizer step from the globally reduced ``sums``."""
    lm = float(sums[0]) / counts.tokens
    if not alm:
        return {"loss": lm, "lm_loss": lm}
    kl = float(sums[1]) / max(counts.chunks, 1)
    return {"loss": kl + lm_weight * lm, "lm_loss": lm, "alm_loss": kl}
