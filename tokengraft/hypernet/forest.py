"""The base tokenizer's merge list as a forest, for the reconstruction objective.

In a BPE vocabulary every non-byte token ``t`` is made by one merge ``(a, b)`` of rank
``r(t)``, and BPE applies merges in increasing rank (a merge that creates ``t`` comes
before any merge that uses it). So encoding ``t``'s bytes with only the first ``k``
merges stops at the frontier of ``t``'s merge tree where ranks drop below ``k``:
:meth:`MergeForest.cut` returns those pieces without running a tokenizer. Each base token
with its pieces under a reduced merge list is one training example with a known answer:
the base model's own rows for ``t``.

>>> f = MergeForest.from_merges({"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4}, [("a", "b"), ("ab", "c")])
>>> f.cut(4, 2), f.cut(4, 1), f.cut(4, 0)
([4], [3, 2], [0, 1, 2])
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokengraft.errors import TokengraftError


@dataclass
class MergeForest:
    rank: np.ndarray      # (V,) int64: rank of the merge that makes each id; -1 for leaves (bytes, specials)
    left: np.ndarray      # (V,) int64: left child id, -1 for leaves
    right: np.ndarray     # (V,) int64: right child id, -1 for leaves

    @classmethod
    def from_merges(cls, vocab: dict[str, int], merges: list[tuple[str, str]]) -> "MergeForest":
        size = max(vocab.values()) + 1
        rank = np.full(size, -1, dtype=np.int64)
        left, right = rank.copy(), rank.copy()
        for r, (a, b) in enumerate(merges):
            t = vocab.get(a + b)
            if t is None or rank[t] >= 0 or a not in vocab or b not in vocab:
                continue  # the first merge that makes a token defines its tree (Gemma lists several)
            rank[t], left[t], right[t] = r, vocab[a], vocab[b]
        return cls(rank, left, right)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> "MergeForest":
        """The forest of a BPE tokenizer (transformers fast tokenizer or ``tokenizers.Tokenizer``)."""
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        model = json.loads(backend.to_str())["model"]
        if model.get("type") != "BPE" or not model.get("merges"):
            raise TokengraftError(f"the reconstruction objective needs a BPE base tokenizer with a merge list, "
                                  f"got a {model.get('type')} model; train with --objectives head lm instead")
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        return cls.from_merges(model["vocab"], merges)  # type: ignore[arg-type]

    def targets(self, limit: int | None = None) -> np.ndarray:
        """Ids made by a merge (each has a decomposition of >= 2 pieces), below ``limit`` rows."""
        ids = np.nonzero(self.rank >= 0)[0]
        return ids[ids < limit] if limit is not None else ids

    def cut(self, token: int, k: int) -> list[int]:
        """Pieces of ``token`` under the first ``k`` merges (left to right)."""
        out, stack = [], [token]
        while stack:
            t = stack.pop()
            if self.rank[t] < k:
                out.append(int(t))
            else:
                stack += [int(self.right[t]), int(self.left[t])]
        return out

    def sample(self, rng: np.random.Generator, n: int, k_min: int, limit: int | None = None,
               max_pieces: int | None = None) -> tuple[list[int], list[list[int]]]:
        """``n`` random merged tokens, each cut at its own random rank in [k_min, r(t)] (log-uniform).

        Returns the token ids and their decompositions (always >= 2 pieces). A decomposition
        longer than ``max_pieces`` is drawn again with a higher cut.
        """
        ids = self.targets(limit)
        if len(ids) == 0:
            raise TokengraftError("the base tokenizer has no merged tokens to reconstruct")
        tokens = rng.choice(ids, size=n)
        chosen: list[int] = []
        pieces: list[list[int]] = []
        for t in tokens.tolist():
            top = int(self.rank[t])
            low = min(k_min, top)
            k = int(np.exp(rng.uniform(np.log(low + 1), np.log(top + 1)))) - 1
            p = self.cut(t, max(low, min(k, top)))
            while max_pieces is not None and len(p) > max_pieces:
                k = (k + top + 1) // 2
                p = self.cut(t, k)
            chosen.append(t)
            pieces.append(p)
        return chosen, pieces
