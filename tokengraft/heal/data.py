"""Training rows from text: packed LM sequences and byte-aligned ALM rows.

Both streams walk the documents in a seeded permutation per epoch and tokenize lazily, a
block of upcoming documents at a time, so memory holds the text, not all its tokens. A
stream's whole position is three integers (epoch, cursor into the permutation, offset in
the current document): a checkpoint stores them and a resumed run continues with exactly
the rows an uninterrupted run would have seen.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np
import torch

from tokengraft.errors import TokengraftError
from tokengraft.heal.alignment import AlignedDoc, chunk_spans, next_window

logger = logging.getLogger(__name__)

T = TypeVar("T")
BLOCK = 64  # documents tokenized per batch call: fast-tokenizer batching, bounded memory


class _DocWalker(Generic[T]):
    """Seeded document order with a lazily filled cache of encoded documents."""

    def __init__(self, texts: Sequence[str], encode: Callable[[list[str]], list[T]], seed: int,
                 first_epoch: Callable[[np.ndarray], np.ndarray] | None = None):
        if not texts or not any(texts):
            raise TokengraftError("the training corpus is empty: it has no text; check the --corpus specs")
        self.texts, self.encode, self.seed = list(texts), encode, seed
        self.epoch, self.cursor, self.offset = 0, 0, 0
        self._first: np.ndarray | None = None
        if first_epoch is not None:
            self._first = first_epoch(self._permutation(0))
        self._order = self._permutation(0)
        self._cache: dict[int, T] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch == 0 and self._first is not None:
            return self._first
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.texts), generator=gen).numpy()

    def current(self) -> T:
        if self.cursor not in self._cache:
            end = min(self.cursor + BLOCK, len(self._order))
            idx = list(range(self.cursor, end))
            self._cache = dict(zip(idx, self.encode([self.texts[self._order[i]] for i in idx])))
        return self._cache[self.cursor]

    def advance_doc(self) -> None:
        self._cache.pop(self.cursor, None)
        self.cursor, self.offset = self.cursor + 1, 0
        if self.cursor == len(self._order):
            self.epoch, self.cursor = self.epoch + 1, 0
            self._order, self._cache = self._permutation(self.epoch), {}

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor, self.offset = int(state["epoch"]), int(state["cursor"]), int(state["offset"])
        self._order, self._cache = self._permutation(self.epoch), {}


class PackedStream:
    """Fixed-length rows of ``seq_len`` tokens; every document starts with ``start_id`` and
    documents follow each other without padding (a row may hold several or a part of one).

    >>> s = PackedStream(["ab", "c"], lambda ts: [[ord(x) for x in t] for t in ts], 0, 4, seed=0)  # doctest: +SKIP
    >>> s.next_batch(2).shape                                                                       # doctest: +SKIP
    torch.Size([2, 4])
    """

    def __init__(self, texts: Sequence[str], encode: Callable[[list[str]], list[list[int]]],
                 start_id: int, seq_len: int, seed: int,
                 first_epoch: Callable[[np.ndarray], np.ndarray] | None = None):
        self.walker = _DocWalker(texts, lambda ts: [np.asarray([start_id, *ids], np.int64) for ids in encode(ts)], seed,
                                 first_epoch)
        self.seq_len = seq_len

    def next_row(self) -> np.ndarray:
        row, filled, w, empty_docs = [], 0, self.walker, 0
        while filled < self.seq_len:
            doc = w.current()
            if len(doc) <= 1:  # text that tokenizes to nothing: skip, but never loop forever
                empty_docs += 1
                if empty_docs > len(w.texts):
                    raise TokengraftError("every training document tokenizes to no tokens; check the corpus and tokenizer")
                w.advance_doc()
                continue
            take = min(self.seq_len - filled, len(doc) - w.offset)
            row.append(doc[w.offset:w.offset + take])
            filled += take
            w.offset += take
            if w.offset == len(doc):
                w.advance_doc()
        return np.concatenate(row)

    def next_batch(self, n: int) -> torch.Tensor:
        """(n, seq_len) long tensor of the next rows."""
        return torch.from_numpy(np.stack([self.next_row() for _ in range(n)]))

    def state_dict(self) -> dict[str, int]:
        return self.walker.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.walker.load_state_dict(state)


@dataclass
class AlmRow:
    """One ALM row: the same text as student and teacher tokens, each segment led by that
    side's start token, and chunks ``(s0, s1, t0, t1)`` of row positions whose tokens cover
    the same bytes on both sides (position p is scored as log P(token p | tokens < p))."""

    student: list[int] = field(default_factory=list)
    teacher: list[int] = field(default_factory=list)
    chunks: list[tuple[int, int, int, int]] = field(default_factory=list)


class AlignedStream:
    """Rows of at most ``seq_len`` student and ``teacher_len`` teacher tokens, cut only at
    byte offsets where both tokenizations have a boundary, so every chunk is exact."""

    def __init__(self, texts: Sequence[str], align: Callable[[list[str]], list[AlignedDoc]],
                 start_student: int, start_teacher: int, seq_len: int, teacher_len: int, seed: int,
                 first_epoch: Callable[[np.ndarray], np.ndarray] | None = None):
        self.walker = _DocWalker(texts, align, seed, first_epoch)
        self.starts = (start_student, start_teacher)
        self.seq_len, self.teacher_len = seq_len, teacher_len

    def next_row(self) -> AlmRow:
        row, w, idle = AlmRow(), self.walker, 0
        while True:
            doc = w.current()
            if len(doc.bounds) <= 1:
                idle += 1
                if idle > 2 * len(w.texts):
                    raise TokengraftError("no training document has text both tokenizers can align; check the corpus")
                w.advance_doc()
                continue
            room_s, room_t = self.seq_len - len(row.student) - 1, self.teacher_len - len(row.teacher) - 1
            end = next_window(doc.bounds, w.offset, room_s, room_t) if min(room_s, room_t) > 0 else None
            if end is None and row.chunks:
                return row  # the next stretch does not fit: it starts the next row
            if end is None:
                # Not even a fresh row holds the stretch up to the next shared boundary; drop it.
                idle += 1
                if idle > 10 * len(w.texts) + 10:
                    raise TokengraftError(
                        f"the text has no shared token boundary within {self.seq_len} tokens; raise --seq-len")
                logger.debug("skipping a stretch of %d student tokens with no shared boundary",
                          int(doc.bounds[w.offset + 1, 0] - doc.bounds[w.offset, 0]))
                w.offset += 1
            else:
                self._append(row, doc, w.offset, end)
                w.offset = end
            if w.offset == len(doc.bounds) - 1:
                w.advance_doc()

    def _append(self, row: AlmRow, doc: AlignedDoc, begin: int, end: int) -> None:
        (s0, t0), (s1, t1) = doc.bounds[begin], doc.bounds[end]
        base_s, base_t = len(row.student) + 1 - int(s0), len(row.teacher) + 1 - int(t0)
        row.student += [self.starts[0], *doc.student[s0:s1].tolist()]
        row.teacher += [self.starts[1], *doc.teacher[t0:t1].tolist()]
        row.chunks += [(a0 + base_s, a1 + base_s, b0 + base_t, b1 + base_t)
                       for a0, a1, b0, b1 in chunk_spans(doc.bounds[begin:end + 1])]

    def next_batch(self, n: int) -> list[AlmRow]:
        return [self.next_row() for _ in range(n)]

    def state_dict(self) -> dict[str, int]:
        return self.walker.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.walker.load_state_dict(state)
