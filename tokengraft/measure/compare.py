"""Two models' bits per byte on the same documents: their ratio, and how far it can be trusted.

A BPB ratio measured on a slice of text moves with the documents in the slice: on 40 KB of
German help text (23 documents) a ratio between two healed models moved by +-1% from one
draw of documents to the next (README, "Heal on a CPU budget", session 26). Both models score the same documents,
so the ratio's uncertainty comes from resampling *documents*, paired: each bootstrap draw
takes n documents with replacement and divides the second model's bits on them by the first
model's bits on the same draw (the bytes cancel). :func:`paired_ratio` is the vectorised
version, :func:`paired_ratio_reference` the plain loop it is tested against.

The interval covers the choice of text, not the run's own noise (another seed moves a heal
by about as much again): two runs whose interval excludes 1 differ on this kind of text;
whether the training would differ again needs another seed.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from tokengraft.errors import TokengraftError

CHUNK = 256  # bootstrap draws built at a time (draws x documents indices each)


@dataclass
class CompareOptions:
    samples: int = 2000   # bootstrap draws of documents
    seed: int = 0         # seed of the draws (the same seed gives the same interval)
    level: float = 0.95   # the interval's coverage

    def validate(self) -> None:
        if self.samples < 1:
            raise TokengraftError(f"--samples must be a positive number of bootstrap draws (got {self.samples}); try 2000")
        if not 0 < self.level < 1:
            raise TokengraftError(f"--level is the interval's coverage, a number in (0, 1) (got {self.level}); try 0.95")


@dataclass
class Ratio:
    """``model``'s BPB over ``base``'s on one corpus's documents, with a bootstrap interval."""

    corpus: str
    base: str
    model: str
    documents: int
    bytes: int
    base_bpb: float
    bpb: float
    ratio: float
    low: float
    high: float


def paired_ratio(base_bits: Sequence[float], bits: Sequence[float], options: CompareOptions | None = None,
                 strata: Sequence[int] | None = None) -> tuple[float, float, float]:
    """(ratio, low, high): sum(bits) / sum(base_bits) and its paired bootstrap interval over documents.

    ``strata``: the document counts of consecutive groups (corpora) that each draw resamples
    within, so a pooled ratio keeps every corpus's share of the documents; None: one group.
    """
    options = options or CompareOptions()
    base, other = _pair(base_bits, bits)
    groups = _groups(strata, len(base))
    generator = torch.Generator().manual_seed(options.seed)
    draws = []
    for start in range(0, options.samples, CHUNK):
        k = min(CHUNK, options.samples - start)
        idx = torch.cat([g.start + torch.randint(len(g), (k, len(g)), generator=generator) for g in groups], 1)
        draws.append(other[idx].sum(1) / base[idx].sum(1))
    low, high = torch.quantile(torch.cat(draws), torch.tensor(_tails(options.level), dtype=torch.float64)).tolist()
    return (other.sum() / base.sum()).item(), low, high


def paired_ratio_reference(base_bits: Sequence[float], bits: Sequence[float], options: CompareOptions | None = None,
                           strata: Sequence[int] | None = None) -> tuple[float, float, float]:
    """The same as :func:`paired_ratio` with Python's random module and a sorted list (different draws)."""
    options = options or CompareOptions()
    _pair(base_bits, bits)
    groups = _groups(strata, len(bits))
    rng = random.Random(options.seed)
    ratios = []
    for _ in range(options.samples):
        idx = [rng.choice(group) for group in groups for _ in group]
        ratios.append(sum(bits[i] for i in idx) / sum(base_bits[i] for i in idx))
    ratios.sort()
    low, high = (_quantile(ratios, q) for q in _tails(options.level))
    return sum(bits) / sum(base_bits), low, high


def compare_results(base: dict[str, Any], others: Sequence[dict[str, Any]], options: CompareOptions | None = None,
                    names: Sequence[str] | None = None) -> list[Ratio]:
    """One :class:`Ratio` per corpus and other model, from ``tokengraft eval --json`` results.

    Every corpus of ``base`` must be scored by each other model on the same documents (same
    ids, same bytes); with several corpora an ``all`` row pools their documents, its draws
    resampling each corpus within itself (the mix of corpora is the user's choice, not chance).
    """
    options = options or CompareOptions()
    options.validate()
    names = list(names or [str(r.get("model", f"model {i}")) for i, r in enumerate([base, *others])])
    base_docs = _documents(base, names[0])
    rows = []
    for name, other in zip(names[1:], others):
        docs = _documents(other, name)
        pooled_base: list[float] = []
        pooled: list[float] = []
        pooled_bytes = 0
        for corpus, (ids, sizes, base_bits) in base_docs.items():
            if corpus not in docs:
                raise TokengraftError(f"{name} has no scores for corpus {corpus}; score it with the same --text as {names[0]}")
            other_ids, other_sizes, bits = docs[corpus]
            if other_ids != ids or other_sizes != sizes:
                raise TokengraftError(f"{name} and {names[0]} scored different documents of {corpus} "
                                      f"({len(other_ids)} against {len(ids)}); score both with the same --text and --max-bytes")
            rows.append(_ratio(corpus, names[0], name, sum(sizes), base_bits, bits, options))
            pooled_base, pooled, pooled_bytes = pooled_base + base_bits, pooled + bits, pooled_bytes + sum(sizes)
        if len(base_docs) > 1:
            strata = [len(ids) for ids, *_ in base_docs.values()]
            rows.append(_ratio("all", names[0], name, pooled_bytes, pooled_base, pooled, options, strata))
    return rows


def format_ratios(rows: Sequence[Ratio], level: float) -> str:
    """A plain-text table, one row per corpus and model."""
    head = ("corpus", "documents", "bytes", "model", "BPB", "base BPB", "ratio", f"{level:.0%} interval")
    cells = [head] + [(r.corpus, f"{r.documents:,}", f"{r.bytes:,}", r.model, f"{r.bpb:.4f}", f"{r.base_bpb:.4f}",
                       f"{r.ratio:.4f}", f"{r.low:.4f}-{r.high:.4f}") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                     for line in cells)


def _ratio(corpus: str, base: str, model: str, num_bytes: int, base_bits: list[float], bits: list[float],
           options: CompareOptions, strata: list[int] | None = None) -> Ratio:
    ratio, low, high = paired_ratio(base_bits, bits, options, strata)
    return Ratio(corpus, base, model, len(bits), num_bytes, sum(base_bits) / num_bytes, sum(bits) / num_bytes,
                 ratio, low, high)


def _documents(result: dict[str, Any], name: str) -> dict[str, tuple[list[str], list[int], list[float]]]:
    corpora = result.get("corpora")
    if not corpora:
        raise TokengraftError(f"{name} is not a `tokengraft eval --json` result (it has no corpora)")
    out = {}
    for c in corpora:
        if not c.get("document_bits"):
            raise TokengraftError(f"{name} has no per-document bits for {c.get('name')} (written by an older tokengraft "
                                  "or by eval --bytes); score it again with `tokengraft eval --json`")
        out[c["name"]] = (list(c["document_ids"]), list(c["document_bytes"]), list(c["document_bits"]))
    return out


def _pair(base_bits: Sequence[float], bits: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    if len(base_bits) != len(bits) or not bits:
        raise TokengraftError(f"a paired ratio needs the same documents in both results (got {len(base_bits)} and {len(bits)})")
    base = torch.tensor(base_bits, dtype=torch.float64)
    if not (base > 0).all():
        raise TokengraftError("a paired ratio needs positive bits for every document of the base model")
    return base, torch.tensor(bits, dtype=torch.float64)


def _groups(strata: Sequence[int] | None, n: int) -> list[range]:
    """The document indices of each stratum (consecutive counts; None: one group of all ``n``)."""
    counts = [n] if strata is None else list(strata)
    if sum(counts) != n or min(counts) < 1:
        raise TokengraftError(f"strata must be positive document counts adding up to the {n} documents (got {counts})")
    ends = list(itertools.accumulate(counts))
    return [range(end - count, end) for count, end in zip(counts, ends)]


def _tails(level: float) -> tuple[float, float]:
    return (1 - level) / 2, (1 + level) / 2


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (torch.quantile's default)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
