"""Exact byte alignment of two tokenizations of the same text (pure functions).

ALM compares a student and a teacher that tokenize the same bytes differently. Their
likelihoods are only comparable over spans that both sides cover exactly, so chunks end
where both token sequences end at the same byte offset. Everything here works on token
*byte lengths* (from the byte view), never on decoded strings: a byte-level token may hold
half of a UTF-8 character, and the decoded string would hide that.

Example: text "né" (bytes 6e c3 a9); student tokens [b"n", b"\\xc3", b"\\xa9"], teacher
tokens [b"n\\xc3", b"\\xa9"]: ends 1, 2, 3 and 2, 3; the only common boundary is 3, so one
chunk covers student tokens 0..3 and teacher tokens 0..2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def token_ends(lengths: Sequence[int]) -> np.ndarray:
    """(n,) int64 byte offset at which each token ends: the cumulative sum of ``lengths``."""
    return np.cumsum(np.asarray(lengths, dtype=np.int64))


def common_boundaries(ends_a: np.ndarray, ends_b: np.ndarray) -> np.ndarray:
    """(k, 2) int64: for every byte offset where both sequences end a token, the number of
    tokens of each side up to it, ``(count_a, count_b)``, starting with ``(0, 0)``.

    Zero-length tokens never create a boundary of their own (their end repeats the
    previous one); the first token index reaching an offset is used.
    """
    ends_a = np.asarray(ends_a, dtype=np.int64)
    ends_b = np.asarray(ends_b, dtype=np.int64)
    shared, ia, ib = np.intersect1d(ends_a, ends_b, assume_unique=False, return_indices=True)
    keep = shared > 0
    pairs = np.stack([ia[keep] + 1, ib[keep] + 1], axis=1) if keep.any() else np.zeros((0, 2), np.int64)
    return np.concatenate([np.zeros((1, 2), np.int64), pairs.astype(np.int64)], axis=0)


def chunk_spans(bounds: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Consecutive boundaries as chunks ``(a0, a1, b0, b1)``: tokens ``a0:a1`` of side a
    cover exactly the bytes of tokens ``b0:b1`` of side b."""
    return [(int(bounds[i, 0]), int(bounds[i + 1, 0]), int(bounds[i, 1]), int(bounds[i + 1, 1]))
            for i in range(len(bounds) - 1)]


@dataclass(frozen=True)
class AlignedDoc:
    """One document tokenized by both sides; ``bounds`` as in :func:`common_boundaries`,
    last row ``(len(student), len(teacher))`` because both cover the whole text."""

    student: np.ndarray   # (n_s,) int64 token ids
    teacher: np.ndarray   # (n_t,) int64 token ids
    bounds: np.ndarray    # (k, 2) int64


def align_doc(student: Sequence[int], student_lengths: Sequence[int],
              teacher: Sequence[int], teacher_lengths: Sequence[int]) -> AlignedDoc:
    """Align two complete tokenizations of one text (both must cover the same bytes)."""
    ends_s, ends_t = token_ends(student_lengths), token_ends(teacher_lengths)
    total_s = int(ends_s[-1]) if len(ends_s) else 0
    total_t = int(ends_t[-1]) if len(ends_t) else 0
    if total_s != total_t:
        raise ValueError(f"the two tokenizations cover {total_s} and {total_t} bytes")
    return AlignedDoc(np.asarray(student, np.int64), np.asarray(teacher, np.int64),
                      common_boundaries(ends_s, ends_t))


def next_window(bounds: np.ndarray, start: int, max_student: int, max_teacher: int) -> int | None:
    """Index into ``bounds`` of the furthest boundary after ``bounds[start]`` whose window
    holds at most ``max_student`` / ``max_teacher`` tokens; None if even the next one is
    too far (a stretch with no shared boundary longer than the window)."""
    s0, t0 = bounds[start]
    fits = (bounds[start + 1:, 0] - s0 <= max_student) & (bounds[start + 1:, 1] - t0 <= max_teacher)
    # Both counts grow with the index, so the windows that fit are a prefix.
    n = int(np.argmin(fits)) if not fits.all() else len(fits)
    return start + n if n > 0 else None
