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
    if 0x80 <= data[0] < 0xC0:
        return True
    text = data[:4].decode("utf-8", errors="ignore")
    return bool(text) and text[0].isalpha()


def _ends_letter(data: bytes) -> bool:
    lead = len(data) - 1
    while lead > 0 and 0x80 <= data[lead] < 0xC0:  # back to the last character's first byte
        lead -= 1
    char = data[lead:].decode("utf-8", errors="ignore")
    return char.isalpha() if char else data[lead] >= 0xC0


def letter_edges(table: Sequence[bytes | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(V,) bool each: the token's bytes start / end with a letter (None: neither).

    >>> s, e = letter_edges([b" L", b"ic", b"\\xc3", b"\\xbcber", b"."])
    >>> s.tolist(), e.tolist()
    ([False, True, False, True, False], [True, True, True, True, False])
    """
    starts = torch.tensor([bool(data) and _starts_letter(data) for data in table], dtype=torch.bool)
    ends = torch.tensor([bool(data) and _ends_letter(data) for data in table], dtype=torch.bool)
    return starts, ends


def target_weights(ids: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, weight: float) -> torch.Tensor:
    """(B, T-1) loss weights of the targets ``ids[:, 1:]``: ``weight`` where the target continues a
    word, 1 elsewhere.

    >>> target_weights(torch.tensor([[0, 1, 2]]), torch.tensor([True, True, False]),
    ...                torch.tensor([True, False, False]), 3.0).tolist()
    [[3.0, 1.0]]
    """
    ids = ids.cpu()
    cont = starts[ids[:, 1:]] & ends[ids[:, :-1]]
    return 1.0 + (weight - 1.0) * cont.float()
