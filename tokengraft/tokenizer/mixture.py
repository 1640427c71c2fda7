"""What was a BPE tokenizer trained on? Data-mixture inference (Hayase et al. 2024).

A BPE merge list is ordered: merge ``t`` was the most frequent pair of the training data
once merges ``0..t-1`` were applied. Given a sample of each candidate category (languages,
code, domains), count the pairs of every sample at every step and find the mixture of
categories under which each merge was the most frequent pair: a linear program
(:mod:`tokengraft.tokenizer.mixture_lp`). The answer is a share of UTF-8 bytes.

>>> result = infer_mixture("gpt2", {"en": en_texts, "code": py_texts}, MixtureOptions(merges=3000))  # doctest: +SKIP
>>> result.proportions  # doctest: +SKIP
{'en': 0.93, 'code': 0.07}

Orchestration only: merge lists and pre-tokenizers live in ``mixture_merges``, pair
counting in ``mixture_counts``, the LP in ``mixture_lp``.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.mixture_counts import PairCounts, count_pairs
from tokengraft.tokenizer.mixture_lp import LPSolution, solve_mixture
from tokengraft.tokenizer.mixture_merges import MergeList, merge_list, symbol_words, word_counts

logger = logging.getLogger(__name__)

# A category is probably missing when the first EARLY_MERGES merges (frequent pairs, where
# sampling noise is small) need more than MISSING_CATEGORY_SLACK of their frequency as slack.
# Chosen on :dev samples of controlled mixtures (benchmarks/mixture_controlled.py --split dev).
EARLY_MERGES = 300
MISSING_CATEGORY_SLACK = 0.12


@dataclass
class MixtureOptions:
    """How to infer a tokenizer's training mixture.

    ``merges``: how many merges to constrain (None: all; capped by the merge list).
    ``skip``: merges applied first without constraints (``llama3`` with ``skip=100000``
    looks only at the merges Llama 3 added to cl100k's). ``sample_bytes``: UTF-8 bytes
    sampled per category, seeded documents (``seed``), the last one cut to fit; None: all.
    ``min_count``: a merge whose pair occurs fewer times than this in every sample is not
    constrained (a count of 1 or 2 says more about the sample than the mixture).
    """

    merges: int | None = 30000           # merges to constrain (capped by the merge list)
    skip: int = 0                        # apply the first N merges without constraining them
    sample_bytes: int | None = 1_000_000  # UTF-8 bytes sampled per category (None: all)
    min_count: int = 5                   # constrain only merges seen this often in some sample
    seed: int = 0                        # sample seed
    show_progress: bool = True           # progress bars


@dataclass
class MixtureResult:
    tokenizer: str
    proportions: dict[str, float]          # category -> share of the training bytes
    total_slack: float                     # LP objective, pair occurrences per MB
    slack_share: float                     # total slack / summed frequency of the constrained merges
    early_slack: float                     # the same for the first EARLY_MERGES merges, step slack only
    merges: int                            # merges constrained (after skip)
    active_merges: int                     # of those, merges whose pair occurs in some sample
    sample_bytes: dict[str, int]
    rounds: int
    constraints: int
    seconds: dict[str, float] = field(default_factory=dict)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_options(options: MixtureOptions) -> None:
    if options.merges is not None and options.merges < 1:
        raise TokengraftError(f"merges must be at least 1, got {options.merges}; leave it unset for all")
    if options.min_count < 1:
        raise TokengraftError(f"min count must be at least 1, got {options.min_count}")
    if options.skip < 0:
        raise TokengraftError(f"skip must be 0 or more, got {options.skip}")
    if options.sample_bytes is not None and options.sample_bytes < 1:
        raise TokengraftError(f"sample bytes must be positive, got {options.sample_bytes}; leave it unset for all")


def sample_documents(texts: Sequence[str], max_bytes: int | None, seed: int) -> tuple[list[str], int]:
    """Seeded random documents up to ``max_bytes`` UTF-8 bytes (the last one cut at a
    character boundary), and their byte count."""
    docs = [t for t in texts if t]
    random.Random(seed).shuffle(docs)
    out, total = [], 0
    for doc in docs:
        raw = doc.encode("utf-8")
        if max_bytes is not None and total + len(raw) > max_bytes:
            cut = raw[:max_bytes - total].decode("utf-8", errors="ignore")
            if cut:
                out.append(cut)
                total += len(cut.encode("utf-8"))
            break
        out.append(doc)
        total += len(raw)
    return out, total


def category_counts(texts: Sequence[str], merges: MergeList, steps: int, skip: int, name: str,
                    max_bytes: int | None, seed: int) -> PairCounts:
    """Pair counts of one category's sample along merges ``skip .. skip + steps``."""
    sample, n_bytes = sample_documents(texts, max_bytes, seed)
    words, weights = symbol_words(word_counts(sample, merges), merges.symbols)
    if not words:
        raise TokengraftError(f"category {name!r} is empty: its sample has no two adjacent symbols the tokenizer "
                              "could merge; give it a corpus with text")
    base = 1 + max(max(merges.results), max(merges.symbols.values()), max(max(m) for m in merges.merges))
    end = skip + steps
    return count_pairs(words, weights, merges.merges[:end], merges.results[:end], base, n_bytes, record_from=skip)


def infer_mixture(tokenizer: Any, categories: Mapping[str, Sequence[str]], options: MixtureOptions | None = None,
                  name: str | None = None) -> MixtureResult:
    """Infer the share of each category in the training data of a BPE ``tokenizer``.

    tokenizer: a tokenizer spec (built-in name, folder, file) or a loaded fast tokenizer.
    categories: name -> documents (a sample of that category, different documents from
    the tokenizer's training data where possible).
    """
    from tokengraft.tokenizer.train import read_tokenizer

    options = options or MixtureOptions()
    check_options(options)
    if isinstance(tokenizer, str):
        name = name or tokenizer
        tokenizer = read_tokenizer(tokenizer, "tokenizer")
    name = name or "tokenizer"
    if not categories:
        raise TokengraftError("no categories given; pass at least one NAME=CORPUS")
    for label, texts in categories.items():
        if not any(t.strip() for t in texts):
            raise TokengraftError(f"category {label!r} is empty (no text); check its corpus")
    start = time.perf_counter()
    merges = merge_list(tokenizer, name)
    if options.skip >= len(merges):
        raise TokengraftError(f"skip {options.skip} leaves none of the {len(merges)} merges of {name}; "
                              f"pass --skip below {len(merges)}")
    steps = min(options.merges or len(merges), len(merges) - options.skip)
    counts = []
    for label, texts in tqdm(categories.items(), desc="pair counts", unit="category", disable=not options.show_progress):
        t0 = time.perf_counter()
        counts.append(category_counts(texts, merges, steps, options.skip, label, options.sample_bytes, options.seed))
        logger.info("counted %s: %d bytes, %d merges in %.1fs", label, counts[-1].n_bytes, steps,
                    time.perf_counter() - t0)
    counted = time.perf_counter()
    keys = np.asarray([a * counts[0].base + b for a, b in merges.merges[options.skip:options.skip + steps]],
                      dtype=np.int64)
    solution = solve_mixture(counts, keys, min_count=options.min_count)
    solved = time.perf_counter()
    result = _result(name, list(categories), counts, solution, steps)
    result.seconds = {"count": round(counted - start, 2), "solve": round(solved - counted, 2)}
    if result.warning:
        logger.warning(result.warning)
    return result


def early_slack(sol: LPSolution, k: int = EARLY_MERGES) -> float:
    """Step slack of the first ``k`` merges over their mixed frequency: these pairs are frequent,
    so sampling noise explains little of it, and a missing category a lot."""
    mixed = float(sol.merge_mixed[:k].sum())
    return float(sol.merge_slack[:k].sum()) / mixed if mixed > 0 else 0.0


def _result(name: str, labels: list[str], counts: list[PairCounts], sol: LPSolution, steps: int) -> MixtureResult:
    share = sol.total_slack / sol.merge_frequency if sol.merge_frequency > 0 else 0.0
    early = early_slack(sol)
    warning = None
    if early > MISSING_CATEGORY_SLACK:
        warning = (f"the categories do not explain {name}'s early merges (slack {early:.3f} of the first "
                   f"{EARLY_MERGES} merges' frequency, above {MISSING_CATEGORY_SLACK}): a category of its training "
                   "data is probably missing, and the proportions are shares of what the categories explain")
    return MixtureResult(
        tokenizer=name, proportions={label: float(p) for label, p in zip(labels, sol.proportions)},
        total_slack=sol.total_slack, slack_share=share, early_slack=early, merges=steps, active_merges=sol.active_steps,
        sample_bytes={label: c.n_bytes for label, c in zip(labels, counts)}, rounds=sol.rounds,
        constraints=sol.constraints, warning=warning)
