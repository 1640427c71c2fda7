"""Pair counts of one category sample at every step of a merge list.

Step ``t`` sees the sample after merges ``0..t-1``: every adjacent pair of symbols inside a
pre-token is counted (overlapping pairs too, as BPE trainers count them), weighted by how
often the pre-token occurs. Applying merge ``t`` replaces its pair left to right, without
overlap, in every pre-token that holds it.

:func:`count_pairs` never recounts: an index maps each pair to the pre-tokens that may
hold it, and a merge touches only those, recording the change of every pair it affects
(as the paper and HF's trainer do). :func:`recount_pairs` is the plain reference that
recounts everything after every merge; the tests hold the two equal.

Pair keys are ``left * base + right`` with ``base`` above every symbol id.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class PairCounts:
    """Counts of one sample along ``T`` merges, stored as changes.

    initial_keys / initial_counts: (P0,) every pair at step 0 and its count.
    step_ptr: (T+1,) changes made by merge t are ``delta_keys/values[step_ptr[t]:step_ptr[t+1]]``.
    merge_counts: (T,) the count of merge t's own pair at step t (before it is applied).
    n_bytes: UTF-8 bytes of the sample (the unit that makes categories comparable).
    """
    initial_keys: np.ndarray
    initial_counts: np.ndarray
    step_ptr: np.ndarray
    delta_keys: np.ndarray
    delta_values: np.ndarray
    merge_counts: np.ndarray
    base: int
    n_bytes: int

    @property
    def num_steps(self) -> int:
        return len(self.merge_counts)

    def head(self, steps: int) -> "PairCounts":
        """The same counts along the first ``steps`` merges only."""
        end = int(self.step_ptr[steps])
        return PairCounts(self.initial_keys, self.initial_counts, self.step_ptr[:steps + 1], self.delta_keys[:end],
                          self.delta_values[:end], self.merge_counts[:steps], self.base, self.n_bytes)

    def at_step(self, t: int) -> dict[int, int]:
        """Every pair with a non-zero count at step ``t`` (slow; for tests and inspection)."""
        counts = Counter(dict(zip(self.initial_keys.tolist(), self.initial_counts.tolist())))
        end = int(self.step_ptr[t])
        for key, value in zip(self.delta_keys[:end].tolist(), self.delta_values[:end].tolist()):
            counts[key] += value
        return {k: v for k, v in counts.items() if v}


def _pairs(word: Sequence[int], base: int) -> Counter[int]:
    return Counter(word[i] * base + word[i + 1] for i in range(len(word) - 1))


def merge_pair(word: list[int], a: int, b: int, new: int) -> list[int]:
    """``word`` with every non-overlapping ``a b`` (left to right) replaced by ``new``."""
    out, i, n = [], 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def count_pairs(words: Sequence[Sequence[int]], weights: Sequence[int], merges: Sequence[tuple[int, int]],
                results: Sequence[int], base: int, n_bytes: int, record_from: int = 0) -> PairCounts:
    """Apply ``merges`` in order to ``words`` (symbol-id sequences, each occurring
    ``weights[i]`` times); record counts from step ``record_from`` on (earlier merges are
    applied but not recorded: ``PairCounts`` then starts at that step)."""
    seqs = [list(w) for w in words]
    where: dict[int, set[int]] = {}
    counts: Counter[int] = Counter()
    for idx, (word, weight) in enumerate(zip(seqs, weights)):
        for key, c in _pairs(word, base).items():
            counts[key] += c * weight
            where.setdefault(key, set()).add(idx)
    initial: dict[int, int] | None = None
    ptr, dkeys, dvals, merge_counts = [0], [], [], []
    for t, ((a, b), new) in enumerate(zip(merges, results)):
        if t == record_from:
            initial = {k: v for k, v in counts.items() if v}
        key = a * base + b
        if t >= record_from:
            merge_counts.append(counts.get(key, 0))
        change: Counter[int] = Counter()
        for idx in where.pop(key, ()):
            word = seqs[idx]
            merged = merge_pair(word, a, b, new)
            if len(merged) == len(word):
                continue  # stale index entry: an earlier merge consumed the pair here
            before, after = _pairs(word, base), _pairs(merged, base)
            w = weights[idx]
            for k, c in before.items():
                change[k] -= c * w
            for k, c in after.items():
                change[k] += c * w
                if k not in before:
                    where.setdefault(k, set()).add(idx)
            seqs[idx] = merged
        for k, c in change.items():
            if c:
                counts[k] += c
                if t >= record_from:
                    dkeys.append(k)
                    dvals.append(c)
        if t >= record_from:
            ptr.append(len(dkeys))
    if initial is None:  # nothing recorded (record_from >= len(merges))
        initial = {k: v for k, v in counts.items() if v}
    keys = np.fromiter(initial.keys(), dtype=np.int64, count=len(initial))
    order = np.argsort(keys)
    return PairCounts(
        initial_keys=keys[order], initial_counts=np.fromiter(initial.values(), dtype=np.int64, count=len(initial))[order],
        step_ptr=np.asarray(ptr, dtype=np.int64), delta_keys=np.asarray(dkeys, dtype=np.int64),
        delta_values=np.asarray(dvals, dtype=np.int64), merge_counts=np.asarray(merge_counts, dtype=np.int64),
        base=base, n_bytes=n_bytes)


def recount_pairs(words: Sequence[Sequence[int]], weights: Sequence[int], merges: Sequence[tuple[int, int]],
                  results: Sequence[int], base: int) -> list[dict[int, int]]:
    """Reference: the full pair counts at every step 0..T, recounted from scratch each time."""
    seqs = [list(w) for w in words]
    out = []
    for step in range(len(merges) + 1):
        counts: Counter[int] = Counter()
        for word, weight in zip(seqs, weights):
            for key, c in _pairs(word, base).items():
                counts[key] += c * weight
        out.append(dict(counts))
        if step < len(merges):
            (a, b), new = merges[step], results[step]
            seqs = [merge_pair(word, a, b, new) for word in seqs]
    return out
