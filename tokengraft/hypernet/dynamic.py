"""Dynamic tokenization (Feher et al., "Retrofitting LMs with Dynamic Tokenization"): batch-level BPE.

The base tokenizer splits a batch of texts into words (its pre-tokens) of base tokens.
BPE then runs on the batch itself: the most frequent adjacent pair of units inside a word
becomes a new unit, up to ``budget`` merges or until no pair occurs ``min_count`` times,
so frequent words and word pieces of *this* batch become single units. A unit is a tuple
of base ids; the hypernetwork embeds it on the fly from exactly those pieces.

Pair counts are updated incrementally (only the words that hold the merged pair change)
and the next pair comes from a lazy max-heap: ties go to the lowest symbol ids, so the
result depends only on the batch.

>>> words = {(1, 2, 3): 5, (1, 2): 2, (4, 1, 2): 1}
>>> merges, seg = batch_bpe(words, budget=5, min_count=2, first_new=10)
>>> merges, seg[(1, 2, 3)], seg[(4, 1, 2)]
([(1, 2), (10, 3)], [11], [4, 10])
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Iterable, Sequence

from tokengraft.tokenizer.mixture_counts import merge_pair


def _pairs(symbols: Sequence[int]) -> Iterable[tuple[int, int]]:
    return zip(symbols, symbols[1:])


def batch_bpe(words: dict[tuple[int, ...], int], budget: int, min_count: int = 2,
              first_new: int = 0) -> tuple[list[tuple[int, int]], dict[tuple[int, ...], list[int]]]:
    """Learn up to ``budget`` merges on ``words`` (base-id tuple -> count in the batch).

    New units get ids ``first_new, first_new + 1, ...`` in merge order. Returns the merges
    (pairs of symbol ids) and every word's final segmentation (a list of symbol ids).
    """
    keys = list(words)
    symbols = [list(k) for k in keys]
    counts = [words[k] for k in keys]
    pair_count: dict[tuple[int, int], int] = defaultdict(int)
    holders: dict[tuple[int, int], set[int]] = defaultdict(set)
    for w, syms in enumerate(symbols):
        for pair in _pairs(syms):
            pair_count[pair] += counts[w]
            holders[pair].add(w)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while len(merges) < budget and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:
            continue  # stale entry: the count changed since it was pushed
        if -neg < min_count:
            break
        z = first_new + len(merges)
        merges.append(pair)
        touched: set[tuple[int, int]] = set()
        for w in sorted(holders.pop(pair, ())):
            old = symbols[w]
            for p in _pairs(old):
                pair_count[p] -= counts[w]
                touched.add(p)
            new = merge_pair(old, pair[0], pair[1], z)
            symbols[w] = new
            for p in _pairs(old):
                if p != pair:
                    holders[p].discard(w)
            for p in _pairs(new):
                pair_count[p] += counts[w]
                holders[p].add(w)
                touched.add(p)
        pair_count.pop(pair, None)
        for p in touched:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_count.pop(p, None)
    return merges, {k: s for k, s in zip(keys, symbols)}


def unit_pieces(merges: Sequence[tuple[int, int]], first_new: int) -> list[tuple[int, ...]]:
    """Base ids of each new unit (in merge order), expanding units made of units.

    >>> unit_pieces([(1, 2), (10, 3)], first_new=10)
    [(1, 2), (1, 2, 3)]
    """
    out: list[tuple[int, ...]] = []
    for a, b in merges:
        left = out[a - first_new] if a >= first_new else (a,)
        right = out[b - first_new] if b >= first_new else (b,)
        out.append(left + right)
    return out
