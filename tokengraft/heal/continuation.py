"""``--continuation-weight``: the next-token loss counts more at targets that continue a word.

A transplant whose tokenizer spells a word in more pieces than the original's loses most where
the model has to *continue* such a word ("ic" after " L" in " License"): on German man pages
that is the whole of the healed transplant's excess over the original (README, session 22).
Help text rarely shows such continuations (2.4% of the German tokenizer's tokens on
libreoffice:de:fit against 21.7% on man pages), so the loss weights them up.

A target continues a word when its bytes start with a letter and the token before it ends
with one. A UTF-8 continuation byte (0x80-0xBF) counts as a letter at the start of a token,
and an unfinished UTF-8 lead byte (0xC0-0xFF) at its end: in byte-level vocabularies such
split characters are nearly always letters ("ü", "é").
"""
from __future__ import annotations

from typing import Sequence

import torch


def _starts_letter(data: bytes) -> bool:
    if not data:
        return False
    if 0x80 <= data[0] < 0xC0:
        return True
    text = data[:4].decode("utf-8", errors="ignore")
    return bool(text) and text[0].isalpha()


def _ends_letter(data: bytes) -> bool:
    if not data:
        return False
    tail = data[-4:]
    for back in range(1, len(tail) + 1):  # the last character, if its lead byte is in the tail
        if tail[-back] < 0x80 or tail[-back] >= 0xC0:
            char = tail[-back:].decode("utf-8", errors="ignore")
            return char.isalpha() if char else tail[-back] >= 0xC0
    return False


def letter_edges(table: Sequence[bytes | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(V,) bool each: the token's bytes start / end with a letter (None: neither).

    >>> s, e = letter_edges([b" L", b"ic", b"\\xc3", b"\\xbcber", b"."])
    >>> s.tolist(), e.tolist()
    ([False, True, False, True, False], [True, True, True, True, False])
    """
    starts = torch.tensor([data is not None and _starts_letter(data) for data in table], dtype=torch.bool)
    ends = torch.tensor([data is not None and _ends_letter(data) for data in table], dtype=torch.bool)
    return starts, ends


def target_weights(ids: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, weight: float) -> torch.Tensor:
    """(B, T-1) loss weights of the targets ``ids[:, 1:]``: ``weight`` where the target continues a
    word, 1 elsewhere. Ids beyond the tables (rows the tokenizer does not use) count as no letter.

    >>> target_weights(torch.tensor([[0, 1, 2]]), torch.tensor([True, True, False]),
    ...                torch.tensor([True, False, False]), 3.0).tolist()
    [[3.0, 1.0]]
    """
    def look(table: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        inside = at < table.numel()
        return table[at.clamp(max=table.numel() - 1)] & inside

    ids = ids.cpu()
    cont = look(starts, ids[:, 1:]) & look(ends, ids[:, :-1])
    return 1.0 + (weight - 1.0) * cont.float()
