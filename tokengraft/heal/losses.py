"""Loss functions of healing (pure tensor functions).

Losses return *sums* with their counts, not means: the trainer divides by the count over
the whole global batch, so one process, two processes and gradient accumulation all
optimise the same number.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tokengraft.heal.data import AlmRow
from tokengraft.heal.target_logp import token_logprobs

__all__ = ["token_logprobs", "chunk_sums", "log1mexp", "alm_bce", "AlmBatch", "collate_alm"]


def chunk_sums(token_logp: torch.Tensor, chunk_index: torch.Tensor, num_chunks: int) -> torch.Tensor:
    """(num_chunks,) sum of ``token_logp`` (B, T) over the positions of each chunk;
    ``chunk_index`` (B, T) names the chunk of every position, -1 for positions in none."""
    keep = chunk_index >= 0
    out = token_logp.new_zeros(num_chunks)
    return out.index_add(0, chunk_index[keep], token_logp[keep])


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate at both ends (Maechler 2012)."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


# A chunk log-probability is <= 0, and 0 only through rounding (a token the model is sure
# of); clamping keeps log(1 - p) finite there instead of -inf.
MAX_SCALED_LOGP = -1e-7


def alm_bce(teacher_logp: torch.Tensor, student_logp: torch.Tensor, tau: float) -> torch.Tensor:
    """(n,) binary cross-entropy between p_t = exp(teacher_logp / tau) and
    p_s = exp(student_logp / tau) per chunk, computed in log space (float64):
    -(p_t log p_s + (1 - p_t) log(1 - p_s)). Minimal (the entropy of p_t) when they agree.

    >>> alm_bce(torch.tensor([-5.0]), torch.tensor([-5.0]), 100.0).item()  # doctest: +ELLIPSIS
    0.19...
    """
    xt = (teacher_logp.double() / tau).clamp(max=MAX_SCALED_LOGP)
    xs = (student_logp.double() / tau).clamp(max=MAX_SCALED_LOGP)
    return -(torch.exp(xt) * xs + torch.exp(log1mexp(xt)) * log1mexp(xs))


@dataclass
class AlmBatch:
    student: torch.Tensor        # (B, Ts) long, padded with 0
    student_mask: torch.Tensor   # (B, Ts) long attention mask
    teacher: torch.Tensor        # (B, Tt) long
    teacher_mask: torch.Tensor   # (B, Tt) long
    student_chunk: torch.Tensor  # (B, Ts) long chunk index of each position, -1 outside chunks
    teacher_chunk: torch.Tensor  # (B, Tt) long
    num_chunks: int

    def to(self, device: torch.device | str) -> AlmBatch:
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.__dict__.items()}
        return AlmBatch(**moved)


def collate_alm(rows: list[AlmRow]) -> AlmBatch:
    """Pad rows to the longest of each side and number their chunks 0..n-1 in row order."""
    len_s = max(len(r.student) for r in rows)
    len_t = max(len(r.teacher) for r in rows)
    out = {name: torch.zeros(len(rows), n, dtype=torch.long)
           for name, n in (("student", len_s), ("student_mask", len_s), ("teacher", len_t), ("teacher_mask", len_t))}
    sc = torch.full((len(rows), len_s), -1, dtype=torch.long)
    tc = torch.full((len(rows), len_t), -1, dtype=torch.long)
    k = 0
    for i, row in enumerate(rows):
        out["student"][i, :len(row.student)] = torch.tensor(row.student)
        out["teacher"][i, :len(row.teacher)] = torch.tensor(row.teacher)
        out["student_mask"][i, :len(row.student)] = 1
        out["teacher_mask"][i, :len(row.teacher)] = 1
        for s0, s1, t0, t1 in row.chunks:
            sc[i, s0:s1] = k
            tc[i, t0:t1] = k
            k += 1
    return AlmBatch(student_chunk=sc, teacher_chunk=tc, num_chunks=k, **out)
