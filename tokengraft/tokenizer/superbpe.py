"""SuperBPE stage 2: keep merging across whitespace, fast (Liu et al. 2025).

Stage 1 is an ordinary BPE; its tokens are fixed. Stage 2 sees the corpus as chunks (text
between newlines and sentence punctuation) already segmented by stage 1 and keeps adding
the most frequent adjacent pair as a new token, now also across spaces, as long as the
result spans at most ``max_words`` words.

Speed comes from never recounting: the pair counts are built once with numpy, an index
maps each pair to the positions where it may occur, and a merge touches only those
positions, adjusting the counts of the neighbouring pairs. A heap with lazy deletion
gives the most frequent pair. ``tokengraft.tokenizer.merges.learn_merges_reference`` is
the obviously-correct version (recount everything every step) that tests compare against.

Ties are broken by the smaller (left id, right id), so training is deterministic.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

Progress = Callable[[str, int, int], None]


@dataclass
class SuperwordResult:
    merges: list[tuple[int, int]]          # (left id, right id) in rank order; merge r makes id first_id + r
    first_id: int                          # id of the first new token (= size of the stage-1 vocabulary)
    strings: list[str]                     # vocab spelling of each new token, in merge order
    segmentation: list[list[int]] | None   # final ids of every input chunk (only when asked for)


def word_shape(data: bytes) -> tuple[int, bool, bool]:
    """(number of words, starts inside a word, ends inside a word) of a token's bytes.

    >>> word_shape(b" de la")
    (2, False, True)
    """
    return len(data.split()), not data[:1].isspace(), not data[-1:].isspace()


def merged_words(shape_a: tuple[int, bool, bool], shape_b: tuple[int, bool, bool]) -> int:
    """Words spanned by the concatenation: a word cut between the two pieces counts once."""
    return shape_a[0] + shape_b[0] - int(shape_a[2] and shape_b[1])


def _flatten(chunks: Sequence[np.ndarray], weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunks laid end to end with a -1 separator after each; per-position chunk weight."""
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    flat = np.full(int((lengths + 1).sum()), -1, dtype=np.int64)
    if lengths.sum():
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat[np.repeat(starts, lengths) + offsets] = np.concatenate([np.asarray(c, dtype=np.int64) for c in chunks])
    return flat, np.repeat(np.asarray(weights, dtype=np.int64), lengths + 1), starts


class _PairState:
    """Pair counts, the pair -> positions index and the linked list of live positions."""

    def __init__(self, flat: np.ndarray, wflat: np.ndarray, shapes: list[tuple[int, bool, bool]],
                 ok: list[bool], max_words: int, key_base: int) -> None:
        self.shapes, self.ok, self.max_words, self.K = shapes, ok, max_words, key_base
        n = len(flat)
        self.tok = flat.tolist()
        self.w = wflat.tolist()
        live = flat >= 0
        self.nxt = np.where(np.append(live[1:], False), np.arange(1, n + 1), -1).tolist()
        self.prv = np.where(np.insert(live[:-1], 0, False), np.arange(-1, n - 1), -1).tolist()
        left, right = flat[:-1], flat[1:]
        valid = (left >= 0) & (right >= 0)
        lc, rc = np.where(valid, left, 0), np.where(valid, right, 0)
        nw = np.array([s[0] for s in shapes]); starts_in = np.array([s[1] for s in shapes])
        ends_in = np.array([s[2] for s in shapes]); okarr = np.array(ok, dtype=bool)
        valid &= okarr[lc] & okarr[rc] & (nw[lc] + nw[rc] - (ends_in[lc] & starts_in[rc]) <= max_words)
        pos = np.nonzero(valid)[0]
        keys = left[pos] * key_base + right[pos]
        uniq, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse, weights=wflat[pos]).astype(np.int64)
        order = np.argsort(inverse, kind="stable")  # positions stay ascending inside each pair
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))])
        sorted_pos = pos[order]
        self.counts: dict[int, int] = dict(zip(uniq.tolist(), counts.tolist()))
        self.positions: dict[int, object] = {
            k: sorted_pos[bounds[i]:bounds[i + 1]] for i, k in enumerate(uniq.tolist())}

    def allowed(self, a: int, b: int) -> bool:
        return self.ok[a] and self.ok[b] and merged_words(self.shapes[a], self.shapes[b]) <= self.max_words

    def _dec(self, key: int, w: int) -> None:
        c = self.counts.get(key)
        if c is not None:
            self.counts[key] = c - w

    def _inc(self, a: int, b: int, w: int, pos: int, touched: set[int]) -> None:
        if not self.allowed(a, b):
            return
        key = a * self.K + b
        self.counts[key] = self.counts.get(key, 0) + w
        self.positions.setdefault(key, []).append(pos)  # type: ignore[union-attr]
        touched.add(key)

    def merge(self, a: int, b: int, new: int) -> set[int]:
        """Replace every live (a, b) by ``new``, left to right; return pairs whose count grew."""
        key = a * self.K + b
        found = self.positions.pop(key, [])
        order = found.tolist() if isinstance(found, np.ndarray) else sorted(set(found))
        tok, nxt, prv, w, K = self.tok, self.nxt, self.prv, self.w, self.K
        touched: set[int] = set()
        for i in order:
            j = nxt[i]
            if tok[i] != a or j < 0 or tok[j] != b:
                continue  # stale entry: this position was merged into something else
            wi, p, n = w[i], prv[i], nxt[j]
            if p >= 0:
                self._dec(tok[p] * K + a, wi)
                self._inc(tok[p], new, wi, p, touched)
            if n >= 0:
                self._dec(b * K + tok[n], wi)
                self._inc(new, tok[n], wi, i, touched)
                prv[n] = i
            tok[i], tok[j], nxt[i] = new, -2, n
        self.counts.pop(key, None)
        return touched


def learn_superword_merges(
    chunks: Sequence[np.ndarray], weights: np.ndarray, token_bytes: Sequence[bytes],
    token_strings: Sequence[str], num_merges: int, *, max_words: int, min_frequency: int,
    mergeable: Sequence[bool] | None = None, progress: Progress | None = None,
    show_progress: bool = False, keep_segmentation: bool = False,
) -> SuperwordResult:
    """Learn up to ``num_merges`` merges on stage-1 segmented chunks.

    chunks: (C,) int arrays of stage-1 ids; weights: (C,) how often each chunk occurs.
    token_bytes / token_strings: (V,) exact bytes and vocab spelling of every stage-1 id.
    mergeable: (V,) False for ids that must stay alone (specials, byte-fallback pieces).
    A pair whose spelling is already in the vocabulary is skipped, so every new token is
    new and applying merges by rank (what ``tokenizers`` does) reproduces this training.
    """
    V = len(token_strings)
    shapes = [word_shape(b) for b in token_bytes]
    ok = list(mergeable) if mergeable is not None else [True] * V
    flat, wflat, starts = _flatten(chunks, weights)
    state = _PairState(flat, wflat, shapes, ok, max_words, key_base=V + num_merges + 1)
    heap = [(-c, k) for k, c in state.counts.items()]
    heapq.heapify(heap)
    strings, known = list(token_strings), set(token_strings)
    merges: list[tuple[int, int]] = []
    bar = tqdm(total=num_merges, desc="superword merges", disable=not show_progress, unit="merge")
    while len(merges) < num_merges and heap:
        negc, key = heapq.heappop(heap)
        count = state.counts.get(key, 0)
        if count != -negc:  # stale heap entry (counts only fall): requeue the current count
            if count > 0:
                heapq.heappush(heap, (-count, key))
            continue
        if count < min_frequency:
            break
        a, b = divmod(key, state.K)
        spelling = strings[a] + strings[b]
        if spelling in known:
            state.counts.pop(key, None)
            state.positions.pop(key, None)
            continue
        new = V + len(merges)
        shapes.append((merged_words(shapes[a], shapes[b]), shapes[a][1], shapes[b][2]))
        ok.append(True)
        for k in state.merge(a, b, new):
            if state.counts[k] > 0:
                heapq.heappush(heap, (-state.counts[k], k))
        strings.append(spelling)
        known.add(spelling)
        merges.append((a, b))
        bar.update(1)
        if progress is not None and len(merges) % 64 == 0:
            progress("superword merges", len(merges), num_merges)
    bar.close()
    segmentation = None
    if keep_segmentation:
        segmentation = []
        for s in starts.tolist():
            ids, i = [], s if state.tok[s] >= 0 else -1
            while i >= 0:
                ids.append(state.tok[i])
                i = state.nxt[i]
            segmentation.append(ids)
    return SuperwordResult(merges=merges, first_id=V, strings=strings[V:], segmentation=segmentation)
