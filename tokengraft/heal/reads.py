"""Which rows a heal read: ``heal.json``'s ``rows_read``.

A CPU budget reads a few pages of its corpus, and a token its batches never show keeps the row
the transplant gave it (sparse steps move only the rows a batch uses; the hard negatives and the
shared piece changes move a few more, but no loss ever reads them). On the German pair a 60-step
heal reads 10,464 of the 32,000 token types, and 18,015 of the 25,974 new tokens never: on text
unlike the training pages (man pages after LibreOffice help) those tokens' zero-shot rows decide
much of the score. The record says how much of the vocabulary, and of the new tokens, the heal read,
so a user knows what to expect out of domain and whether a longer budget or other text would reach more.
"""
from __future__ import annotations

from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.heal import sources


def count(reads: torch.Tensor, ids: torch.Tensor) -> None:
    """Add one read per occurrence of every id in ``ids`` to ``reads`` (one counter per row), in place."""
    reads += torch.bincount(ids.flatten().to(reads.device, torch.long), minlength=reads.numel())


def copied_inputs(model: str, rows: int) -> torch.Tensor | None:
    """The input rows a transplant copied from its base model, or None for a model that is no transplant."""
    try:
        return sources.copied_rows(model, rows)[0]
    except TokengraftError:  # no transplant record (or no per-token file): the summary leaves new tokens out
        return None


def summary(reads: torch.Tensor, copied: torch.Tensor | None) -> dict[str, Any]:
    """Counts of the token types read, read 10 times or more, and (given which rows a transplant
    copied) the same over its new tokens, with those never read.

    >>> summary(torch.tensor([0, 1, 12, 0]), torch.tensor([False, False, True, True]))
    {'token_types': 4, 'read': 2, 'read_10_or_more': 1, 'new_tokens': 2, 'new_read': 1, 'new_never_read': 1}
    """
    seen = reads > 0
    record: dict[str, Any] = {"token_types": reads.numel(), "read": int(seen.sum()),
                              "read_10_or_more": int((reads >= 10).sum())}
    if copied is not None:
        new = ~copied.to(torch.bool)
        record.update(new_tokens=int(new.sum()), new_read=int((seen & new).sum()),
                      new_never_read=int((~seen & new).sum()))
    return record


def describe(record: dict[str, Any]) -> str:
    """One line for the log.

    >>> print(describe({'token_types': 4, 'read': 2, 'read_10_or_more': 1}))
    rows read: 2 of 4 token types (1 ten times or more)
    """
    line = (f"rows read: {record['read']:,} of {record['token_types']:,} token types "
            f"({record['read_10_or_more']:,} ten times or more)")
    if "new_tokens" in record:
        line += (f"; {record['new_never_read']:,} of the transplant's {record['new_tokens']:,} new tokens never read: "
                 "they keep their transplant rows")
    return line
