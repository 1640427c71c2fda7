"""The id space of a tokenizer: which ids are used, which by several tokens, which by none.

A hand-edited ``tokenizer.json`` can give two vocabulary entries one id (``tokenizers``
then saves only one of them, and the saved file no longer loads) or leave ids unused (a
model for it needs rows up to the largest id). :func:`id_space` finds both, so that a
loader can refuse the first and a transplant can name the second.

>>> from tokenizers import Tokenizer, models
>>> space = id_space(Tokenizer(models.WordLevel({"a": 0, "b": 1, "c": 5}, unk_token="a")))
>>> space.span, space.holes, space.describe_holes()
(6, [(2, 5)], 'ids 2-4 (3 unused ids)')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokengraft.errors import TokengraftError


@dataclass
class IdSpace:
    used: int                                   # distinct ids that some token has
    span: int                                   # largest id + 1: the rows a model needs
    duplicates: dict[int, list[str]] = field(default_factory=dict)  # id -> the model-vocabulary tokens sharing it
    holes: list[tuple[int, int]] = field(default_factory=list)      # [start, end) runs of unused ids below span
    shadowed: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (added token, vocabulary token) sharing it

    @property
    def unused(self) -> int:
        return self.span - self.used

    def describe_holes(self, limit: int = 3) -> str:
        """``"ids 320-329 and 332-1999 (1,690 unused ids)"``."""
        runs = [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in self.holes[:limit]]
        more = f" and {len(self.holes) - limit} more runs" if len(self.holes) > limit else ""
        listed = runs[0] if len(runs) == 1 else ", ".join(runs[:-1]) + " and " + runs[-1]
        return f"ids {listed}{more} ({self.unused:,} unused ids)"

    def describe_duplicates(self) -> str:
        """``"101 vocabulary entries have 1 id between them ('ale' and 'is' both have id 229)"``."""
        entries = sum(len(v) for v in self.duplicates.values())
        idx, tokens = next(iter(sorted(self.duplicates.items())))
        ids = "1 id" if len(self.duplicates) == 1 else f"{len(self.duplicates)} ids"
        return f"{entries} vocabulary entries have {ids} between them ({tokens[0]!r} and {tokens[1]!r} both have id {idx})"


def _backend(tokenizer: Any) -> Any:
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def id_space(tokenizer: Any) -> IdSpace:
    """The :class:`IdSpace` of a fast tokenizer or a raw ``tokenizers.Tokenizer``."""
    backend = _backend(tokenizer)
    model_vocab = backend.get_vocab(with_added_tokens=False)
    by_id: dict[int, list[str]] = {}
    for token, idx in model_vocab.items():
        by_id.setdefault(idx, []).append(token)
    duplicates = {idx: sorted(tokens) for idx, tokens in by_id.items() if len(tokens) > 1}
    added = backend.get_added_tokens_decoder()
    # an added token normally repeats its vocabulary entry (same id, same content); other content
    # on a vocabulary id hides that entry: it can be encoded, but never decoded again
    shadowed = {idx: (str(tok.content), by_id[idx][0]) for idx, tok in added.items()
                if idx in by_id and str(tok.content) not in by_id[idx]}
    ids = set(by_id) | set(added)
    span = max(ids) + 1 if ids else 0
    holes, start = [], None
    if len(ids) < span:
        for idx in range(span + 1):
            if idx < span and idx not in ids:
                start = idx if start is None else start
            elif start is not None:
                holes.append((start, idx))
                start = None
    return IdSpace(used=len(ids), span=span, duplicates=duplicates, holes=holes, shadowed=shadowed)


def max_token_id(tokenizer: Any) -> int:
    """The largest id the tokenizer can produce (model vocabulary and added tokens); -1 when empty."""
    backend = _backend(tokenizer)
    ids = list(backend.get_vocab(with_added_tokens=True).values()) + list(backend.get_added_tokens_decoder())
    return max(ids, default=-1)


def check_id_space(tokenizer: Any, spec: str, *, allow_gaps: bool = False) -> IdSpace:
    """Refuse a new tokenizer with unused ids unless ``allow_gaps``: a model for it needs rows up to its
    largest id, and a few ids moved far up can multiply the model's size for nothing."""
    space = id_space(tokenizer)
    if space.unused and not allow_gaps:
        raise TokengraftError(
            f"the new tokenizer {spec} leaves {space.describe_holes()} below its largest id {space.span - 1:,}, "
            f"so the model would get {space.span:,} rows for {space.used:,} tokens; renumber its ids without gaps, "
            "or pass --allow-id-gaps to give the unused ids fallback rows")
    return space
