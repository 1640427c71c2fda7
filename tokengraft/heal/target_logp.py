"""The log-probability of each next token, without float32 copies of the whole logits tensor.

``F.cross_entropy(logits.float(), ...)`` on a (positions x vocabulary) bf16 tensor makes a float32
copy of it, a float32 log-softmax, a float32 gradient and a bf16 cast of that gradient: four
passes over 130 MB for 2 x 512 positions and a 32k vocabulary. :class:`TargetLogProb` reads the logits in
blocks of rows that stay in cache: the forward pass keeps one float per row (the log-partition),
the backward pass writes the gradient once, in the logits' own dtype. Same numbers as the
reference up to float32 rounding, and a bf16 gradient one rounding away from the reference's
(``tests/test_heal_target_logp.py``). Session 32, 2-core Xeon with AMX: the head's product, log-probabilities
and backward 627 -> 314 ms (``benchmarks/logprob_probe.py``); a whole heal step 2-10% shorter (3.4-4.2 s
there), peak memory 0.1-0.5 GB lower.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK_ELEMENTS = 1 << 20   # float32 elements of one block of rows (4 MB)


def _block_rows(vocab: int) -> int:
    return max(1, BLOCK_ELEMENTS // vocab)


class TargetLogProb(torch.autograd.Function):
    """(n,) float32 log P(target_i) under softmax(logits_i); 0 (and no gradient) where the target is < 0."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, vocab = logits.shape
        rows = _block_rows(vocab)
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        for s in range(0, n, rows):
            lse[s:s + rows] = torch.logsumexp(logits[s:s + rows].float(), dim=1)
        keep = targets >= 0
        picked = logits.gather(1, targets.clamp(min=0)[:, None])[:, 0].float()
        ctx.save_for_backward(logits, targets, lse)
        return torch.where(keep, picked - lse, torch.zeros_like(lse))

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        logits, targets, lse = ctx.saved_tensors
        n, vocab = logits.shape
        rows = _block_rows(vocab)
        g = torch.where(targets >= 0, grad_out.float(), torch.zeros_like(lse))
        grad = torch.empty_like(logits)
        for s in range(0, n, rows):  # d logp / d logits = onehot(target) - softmax
            grad[s:s + rows] = logits[s:s + rows].float().sub_(lse[s:s + rows, None]).exp_().mul_(-g[s:s + rows, None])
        at = torch.arange(n, device=logits.device)
        idx = targets.clamp(min=0)
        grad[at, idx] = (grad[at, idx].float() + g).to(grad.dtype)
        return grad, None


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B, T) float32: entry p is log P(ids[:, p] | ids[:, :p]); column 0 is 0 (not predicted).

    logits: (B, T, V) from a causal LM on ``ids`` (B, T).
    """
    b, t, v = logits.shape
    targets = torch.cat([ids[:, 1:], ids.new_full((b, 1), -1)], dim=1).reshape(-1)
    logp = TargetLogProb.apply(logits.reshape(-1, v), targets).view(b, t)
    return torch.cat([logp.new_zeros(b, 1), logp[:, :-1]], dim=1)


def token_logprobs_reference(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """:func:`token_logprobs` the plain way (a float32 cross-entropy over every position)."""
    b, t, v = logits.shape
    logp = -F.cross_entropy(logits[:, :-1].float().reshape(-1, v), ids[:, 1:].reshape(-1), reduction="none")
    return torch.cat([logp.new_zeros(b, 1), logp.view(b, t - 1)], dim=1)
