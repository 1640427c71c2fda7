"""Pure index arithmetic: sliding windows over a document and length-sorted batches.

A document of n tokens x_1..x_n is scored as the sequence ``seq = [start, x_1, ..., x_n]``:
input position i (``seq[i]``) predicts label i (``seq[i + 1]``), so there are n labels and
the start token itself is never a label. A window ``(begin, end, score_from)`` feeds
``seq[begin:end]`` to the model and scores labels ``score_from .. end - 1``.
"""
from __future__ import annotations

from typing import NamedTuple


class Window(NamedTuple):
    begin: int       # first input position fed to the model
    end: int         # one past the last input position (and last label) of the window
    score_from: int  # first label scored here; labels begin..score_from-1 are context only


def sliding_windows(num_labels: int, context: int, stride: int) -> list[Window]:
    """Windows of at most ``context`` inputs that score every label exactly once.

    The first window scores up to ``context`` labels; each later one slides forward by
    ``stride`` new labels and keeps the ``context - stride`` labels before them as context
    only, so every scored token (past the first window) sees at least that much history.

    >>> sliding_windows(10, context=4, stride=2)
    [Window(begin=0, end=4, score_from=0), Window(begin=2, end=6, score_from=4), Window(begin=4, end=8, score_from=6), Window(begin=6, end=10, score_from=8)]
    """
    if context < 1 or not 1 <= stride <= context:
        raise ValueError(f"need context >= 1 and 1 <= stride <= context, got context={context} stride={stride}")
    if num_labels <= 0:
        return []
    end = min(context, num_labels)
    windows = [Window(0, end, 0)]
    while end < num_labels:
        new_end = min(end + stride, num_labels)
        windows.append(Window(max(0, new_end - context), new_end, end))
        end = new_end
    return windows


def plan_batches(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Group row indices into batches of at most ``batch_tokens`` padded tokens.

    Rows are sorted longest first, so each batch pads only to rows of nearly the same
    length (little compute wasted on padding) and the largest batch comes first (an
    out-of-memory error shows at once). A row longer than the budget gets a batch alone.

    >>> plan_batches([3, 8, 5, 8, 1], batch_tokens=16)
    [[1, 3], [2, 0, 4]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted descending: the first row of a batch sets its padded length.
        if current and (len(current) + 1) * lengths[current[0]] > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
