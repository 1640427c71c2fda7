"""Byte-level ensembles: models whose tokenizers differ, mixed byte by byte.

Every member gives a next-byte distribution over the same 257 outcomes, so any two models
can be mixed: P(b | x) = sum_m w_m P_m(b | x), fixed weights at every byte. On a scored
text that only needs each member's log P(byte i | bytes before it).

>>> import numpy as np
>>> a = np.log(np.array([0.5, 0.25])); b = np.log(np.array([0.25, 0.5]))
>>> np.exp(mix_logprobs([a, b], [0.5, 0.5])).round(3).tolist()
[0.375, 0.375]
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tokengraft.errors import TokengraftError


def check_weights(weights: Sequence[float] | None, members: int) -> list[float]:
    """The weights normalised to sum 1; None: equal weights."""
    if weights is None or len(weights) == 0:
        return [1.0 / members] * members
    if len(weights) != members:
        raise TokengraftError(f"{len(weights)} weights for {members} models; pass one weight per --model")
    if any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise TokengraftError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def mix_logprobs(logprobs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """(n,) log P(byte i | before) under the mixture, from each member's (n,) log-probs of the same bytes."""
    stacked = np.stack([np.asarray(lp, dtype=np.float64) for lp in logprobs])
    with np.errstate(divide="ignore"):
        logw = np.log(np.asarray(weights, dtype=np.float64))[:, None]
    return np.logaddexp.reduce(stacked + logw, axis=0)


def tune_weights(logprobs: Sequence[np.ndarray], iterations: int = 200, tol: float = 1e-9) -> list[float]:
    """Mixture weights that maximise the log-likelihood of the given bytes (EM; the problem is concave).

    Tune on a development slice, never on the text you report.
    """
    stacked = np.stack([np.asarray(lp, dtype=np.float64) for lp in logprobs])
    m = stacked.shape[0]
    weights = np.full(m, 1.0 / m)
    last = -math.inf
    for _ in range(iterations):
        joint = stacked + np.log(np.maximum(weights, 1e-300))[:, None]
        total = np.logaddexp.reduce(joint, axis=0)
        ll = float(total.sum())
        weights = np.exp(joint - total).mean(axis=1)
        if ll - last < tol * max(1.0, abs(ll)):
            break
        last = ll
    return weights.tolist()


def bits_per_byte(logprobs: np.ndarray) -> float:
    """BPB of (n,) per-byte log-probs in nats."""
    return -float(np.sum(logprobs)) / math.log(2) / len(logprobs)
