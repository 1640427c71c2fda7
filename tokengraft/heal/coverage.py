"""Document order that shows the vocabulary early: greedy coverage of token types.

A CPU budget reads a few pages of a large corpus (540 s of one thread: 20k-80k tokens). In a random order
those pages repeat the frequent tokens and leave most of the vocabulary unseen, so the rows
of every token they miss keep their zero-shot values. Ordering the documents greedily by the
token types they add per token read shows far more of the vocabulary in the same time.
"""
from __future__ import annotations

import heapq
from typing import Callable, Sequence

import numpy as np

MIN_LEN = 64  # a document shorter than this is charged as this long: tiny pages do not jump the queue


def coverage_order(docs: Sequence[Sequence[int]]) -> list[int]:
    """Indices of ``docs`` (token id sequences), each next one adding the most token types not
    yet covered per token it costs (lazy greedy); ties go to the earlier document.

    >>> coverage_order([[1, 1, 1, 1], [1, 2, 3, 4], [2, 3]])
    [1, 0, 2]
    >>> coverage_order([[6], [5]])
    [0, 1]
    """
    types = [set(map(int, d)) for d in docs]
    cost = [max(len(d), MIN_LEN) for d in docs]
    covered: set[int] = set()

    def gain(i: int) -> float:
        return len(types[i] - covered) / cost[i]

    heap = [(-gain(i), i) for i in range(len(docs))]
    heapq.heapify(heap)
    order = []
    while heap:
        _, i = heapq.heappop(heap)
        now = gain(i)
        if heap and (-now, i) > heap[0]:  # stale: its gain fell since it was pushed
            heapq.heappush(heap, (-now, i))
            continue
        order.append(i)
        covered |= types[i]
    return order


POOL_BYTES = 16_000_000  # text ordered by coverage; a larger corpus's other documents follow in random order


def coverage_first_epoch(texts: Sequence[str], encode: Callable[[list[str]], list[list[int]]]
                         ) -> Callable[[np.ndarray], np.ndarray]:
    """A stream's first-epoch order: its seeded permutation with the first documents, up to
    POOL_BYTES of text, reordered by :func:`coverage_order` of their tokens (``encode``: texts
    to ids). A resumed run recomputes the same order."""
    return lambda perm: coverage_permutation(texts, encode, perm)


def coverage_permutation(texts: Sequence[str], encode: Callable[[list[str]], list[list[int]]],
                         perm: np.ndarray) -> np.ndarray:
    """``perm`` with its first documents, up to POOL_BYTES of text, in coverage order."""
    used, pool = 0, []
    for i in perm:
        if used >= POOL_BYTES:
            break
        pool.append(int(i))
        used += len(texts[i].encode("utf-8"))
    ids = []
    for k in range(0, len(pool), 256):
        ids += encode([texts[i] for i in pool[k:k + 256]])
    order = coverage_order(ids)  # ties: the seeded order, as pool is in it
    return np.concatenate([np.asarray(pool, np.int64)[order], np.asarray(perm[len(pool):], np.int64)])
