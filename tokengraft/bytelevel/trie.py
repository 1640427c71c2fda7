"""A trie over a vocabulary's bytes, flattened into sorted order.

Sorting every token's bytes puts all tokens that start with a given prefix in one
contiguous range, so a trie node is just a range ``[lo, hi)`` of the sorted list; the
token equal to the prefix itself (if any) comes first in its range. Walking one byte
down the trie is a binary search inside the parent's range. With a token's log-probs
reordered into this order once (one gather), the probability that the next token starts
with a prefix is a ``logsumexp`` over one slice.

>>> trie = VocabTrie.from_tokens([b"a", b"ab", b"b", None, b"abc"])
>>> trie.span(b"ab")
(1, 3)
>>> [trie.keys[i] for i in range(*trie.span(b"ab"))]
[b'ab', b'abc']
>>> trie.exact(*trie.span(b"ab"), 2)
[1]
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import torch


@dataclass
class VocabTrie:
    keys: list[bytes]        # (K,) non-empty token bytes, sorted
    ids: torch.Tensor        # (K,) long: token id of each sorted entry
    ends: torch.Tensor       # (E,) long: ids without bytes (special tokens, holes): they end the text
    size: int                # V, the number of ids
    _byte_at: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def from_tokens(cls, tokens: list[bytes | None]) -> VocabTrie:
        """Build from a byte view's ``tokens`` (None or b"" for ids that spell nothing)."""
        order = sorted((t, i) for i, t in enumerate(tokens) if t)
        return cls(keys=[t for t, _ in order], ids=torch.tensor([i for _, i in order], dtype=torch.long),
                   ends=torch.tensor([i for i, t in enumerate(tokens) if not t], dtype=torch.long), size=len(tokens))

    @property
    def max_len(self) -> int:
        return max((len(k) for k in self.keys), default=0)

    def span(self, prefix: bytes, lo: int = 0, hi: int | None = None) -> tuple[int, int]:
        """Range of the sorted entries that start with ``prefix``, searched inside ``[lo, hi)``."""
        hi = len(self.keys) if hi is None else hi
        start = bisect.bisect_left(self.keys, prefix, lo, hi)
        stop = start
        if start < hi and self.keys[start].startswith(prefix):
            stop = self._after(prefix, start, hi)
        return start, stop

    def step(self, lo: int, hi: int, depth: int, byte: int) -> tuple[int, int]:
        """The child range: entries of ``[lo, hi)`` (all sharing a ``depth``-byte prefix) whose next byte is ``byte``."""
        if lo >= hi:
            return lo, lo
        prefix = self.keys[lo][:depth] + bytes([byte])
        return self.span(prefix, lo, hi)

    def exact(self, lo: int, hi: int, length: int) -> list[int]:
        """Token ids in ``[lo, hi)`` that are exactly ``length`` bytes long (the prefix itself, first in the range)."""
        out = []
        while lo < hi and len(self.keys[lo]) == length:
            out.append(int(self.ids[lo]))
            lo += 1
        return out

    def byte_at(self, depth: int) -> torch.Tensor:
        """(K,) long: byte ``depth`` of every sorted entry, 256 where the entry is shorter (cached)."""
        if depth not in self._byte_at:
            self._byte_at[depth] = torch.tensor([k[depth] if len(k) > depth else 256 for k in self.keys],
                                                dtype=torch.long)
        return self._byte_at[depth]

    def _after(self, prefix: bytes, lo: int, hi: int) -> int:
        # first entry >= the smallest string greater than every extension of prefix
        upper = bytearray(prefix)
        while upper and upper[-1] == 0xFF:
            upper.pop()
        if not upper:
            return hi
        upper[-1] += 1
        return bisect.bisect_left(self.keys, bytes(upper), lo, hi)
