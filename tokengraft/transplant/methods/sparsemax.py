"""Sparsemax (Martins & Astudillo 2016): the Euclidean projection onto the probability simplex.

Like softmax it maps scores to weights that sum to 1, but low scores get weight exactly 0,
which is why FOCUS uses it: a new token becomes a convex combination of a *few* anchors.

    sparsemax(z) = max(z - tau, 0), tau chosen so that the output sums to 1.

With z sorted descending (z_(1) >= z_(2) >= ...), the support size is
k = max{j : 1 + j * z_(j) > sum_{i<=j} z_(i)} and tau = (sum_{i<=k} z_(i) - 1) / k.

>>> sparsemax(torch.tensor([1.0, 0.5, 0.1])).tolist()
[0.75, 0.25, 0.0]
"""
from __future__ import annotations

import torch


def sparsemax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Exact sparsemax of ``z`` along ``dim`` (any shape, batched over the other dims).

    ``-inf`` entries are allowed (they get weight 0) as long as each slice has one finite
    entry; the result is computed in float64 internally so that ties and near-ties give
    weights that sum to 1 within float precision.
    """
    if z.shape[dim] == 0:
        raise ValueError("sparsemax needs at least one entry along dim")
    moved = z.transpose(dim, -1).to(torch.float64)
    moved = moved - moved.max(dim=-1, keepdim=True).values  # shift-invariant; keeps numbers small
    sorted_z = moved.sort(dim=-1, descending=True).values
    finite = torch.isfinite(sorted_z)
    cumsum = torch.where(finite, sorted_z, torch.zeros_like(sorted_z)).cumsum(dim=-1)
    ranks = torch.arange(1, sorted_z.shape[-1] + 1, dtype=sorted_z.dtype, device=z.device)
    in_support = finite & (1 + ranks * sorted_z > cumsum)
    # the support condition holds for a prefix of the sorted entries; its length is k
    k = in_support.sum(dim=-1, keepdim=True)
    tau = (cumsum.gather(-1, k - 1) - 1) / k.to(sorted_z.dtype)
    out = torch.clamp(moved - tau, min=0)
    return out.to(z.dtype if z.is_floating_point() else torch.float32).transpose(dim, -1)
