"""Deterministic train / held-out splits that agree across languages and machines.

A document is held out when the SHA-1 of its split key (a help page's relative path, a
bible chapter ``Gen.1``) falls in the first ``HELDOUT_PER_MILLE`` of 1000 buckets. The key,
not the text, decides, so the same page is held out in every language and on every run,
and a tokenizer trained on ``:train`` has never seen any of ``:heldout``.

``:train`` is further cut, by the next ``DEV_PER_MILLE`` buckets, into ``:dev`` (for choosing
weights, learning rates and thresholds) and ``:fit`` (train minus dev, for fitting while tuning).
Every choice is made on ``:dev``; ``:heldout`` is only ever reported.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from tokengraft.assets.corpus import Document
from tokengraft.errors import TokengraftError

SPLITS = ("train", "heldout", "dev", "fit")
HELDOUT_PER_MILLE = 100  # ~10% held out
DEV_PER_MILLE = 50       # ~5% of all documents: the dev slice carved from :train


def _bucket(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "big") % 1000


def is_heldout(key: str) -> bool:
    """Whether the document with split key ``key`` belongs to the held-out split.

    >>> [is_heldout(f"page{i}") for i in range(1000)].count(True)  # about 10%
    118
    """
    return _bucket(key) < HELDOUT_PER_MILLE


def split_of(key: str) -> str:
    """``"heldout"``, ``"dev"`` or ``"fit"`` (dev and fit together are ``"train"``)."""
    bucket = _bucket(key)
    if bucket < HELDOUT_PER_MILLE:
        return "heldout"
    return "dev" if bucket < HELDOUT_PER_MILLE + DEV_PER_MILLE else "fit"


def select_split(docs: list[Document], split: str | None, key: Callable[[Document], str] = lambda d: d.id) -> list[Document]:
    """Documents of ``split`` (``None`` keeps all) with the split decided by ``key(doc)``.

    ``train`` = ``dev`` + ``fit``; ``heldout`` is disjoint from all three."""
    if split is None:
        return docs
    if split not in SPLITS:
        raise TokengraftError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}")
    if split == "train":
        return [d for d in docs if not is_heldout(key(d))]
    return [d for d in docs if split_of(key(d)) == split]
