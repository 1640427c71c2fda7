"""Deterministic train / held-out splits that agree across languages and machines.

A document is held out when the SHA-1 of its split key (a help page's relative path, a
bible chapter ``Gen.1``) falls in the first ``HELDOUT_PER_MILLE`` of 1000 buckets. The key,
not the text, decides, so the same page is held out in every language and on every run,
and a tokenizer trained on ``:train`` has never seen any of ``:heldout``.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from tokengraft.assets.corpus import Document
from tokengraft.errors import TokengraftError

SPLITS = ("train", "heldout")
HELDOUT_PER_MILLE = 100  # ~10% held out


def is_heldout(key: str) -> bool:
    """Whether the document with split key ``key`` belongs to the held-out split.

    >>> [is_heldout(f"page{i}") for i in range(1000)].count(True)  # about 10%
    118
    """
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "big") % 1000
    return bucket < HELDOUT_PER_MILLE


def select_split(docs: list[Document], split: str | None, key: Callable[[Document], str] = lambda d: d.id) -> list[Document]:
    """Documents of ``split`` (``None`` keeps all) with the split decided by ``key(doc)``."""
    if split is None:
        return docs
    if split not in SPLITS:
        raise TokengraftError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    want = split == "heldout"
    return [d for d in docs if is_heldout(key(d)) == want]
