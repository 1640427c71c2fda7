"""A BPE tokenizer's merge list in training order, and the pre-tokens its trainer saw.

Data-mixture inference (Hayase et al. 2024) needs two things from a tokenizer: its merges
in the order they were learned, and the way its trainer cut text into pre-tokens (pairs
never cross a pre-token boundary, so a pair the trainer could not see must not compete).

- **Byte-level BPE** (GPT-2, SmolLM2, cl100k and llama3 from tiktoken ranks): the merge
  list is the training order; the tokenizer's own normalizer and pre-tokenizer (GPT-2
  regex + byte alphabet) are the trainer's. A vocabulary that never joins two digits was
  trained with digits split (its GGUF pipeline may have lost that step): we split them.
- **SentencePiece BPE** (mistral-v3, gemma3): converted merge lists hold every split of
  every piece, ordered by the piece's score; we keep one merge per new piece (the split
  whose halves were formed earliest, the paper's §C.3 clean-up) and drop pieces made only
  of whitespace, which these vocabularies add by hand (§C.4). SentencePiece trains on
  words that start at a space (``▁``), keeps punctuation runs apart from letters and
  digits apart from letters (one by one when the vocabulary never joins two), and never
  merges newlines or tabs; that is the pre-tokenizer we apply after the normalizer.
- Unigram and WordPiece vocabularies are not merge lists: they are refused.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from tokengraft.errors import TokengraftError
from tokengraft.tokenizer.conventions import BYTE_FALLBACK, BYTE_LEVEL, splits_digits
from tokengraft.vocab.alphabet import SPM_SPACE
from tokengraft.vocab.byte_vocab import backend_of
from tokengraft.vocab.spelling import detect

logger = logging.getLogger(__name__)

_PUNCT_RUN = rf"{SPM_SPACE}?[^\s\p{{L}}\p{{N}}{SPM_SPACE}]+\r*"
_BLANK = set(" \t\n\r\f\v" + SPM_SPACE)


@dataclass
class MergeList:
    """Merges as vocabulary ids: ``merges[t] = (left, right)`` makes ``results[t]``.

    ``kind`` is ``"byte_level"`` or ``"sentencepiece"``; ``symbols`` maps every symbol
    spelling (a byte character or a character) to its id; ``dropped`` counts merges left
    out (duplicates, whitespace-only pieces, merges naming tokens outside the vocabulary).
    """
    merges: list[tuple[int, int]]
    results: list[int]
    symbols: dict[str, int]
    kind: str
    pre_tokenizer: Any          # tokenizers.PreTokenizer: the trainer's word split
    normalizer: Any             # tokenizers.Normalizer or None
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.merges)


def _refuse_kind(model: str, name: str) -> None:
    if model != "BPE":
        raise TokengraftError(
            f"tokenizer {name} is a {model} model: its vocabulary is not a list of merges in training order, so "
            "its data mixture cannot be read from it; give a BPE tokenizer (byte-level or SentencePiece BPE)")


def dedupe_merges(merges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One merge per new token, in first-appearance order (SentencePiece conversions list
    every split of a piece). Among splits, the one whose halves were built by the earliest
    merges wins (compare the sorted ranks of their build histories); ties: longer left.

    >>> dedupe_merges([("a", "b"), ("ab", "c"), ("a", "bc"), ("b", "c")])
    [('a', 'b'), ('ab', 'c'), ('b', 'c')]
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for left, right in merges:
        groups.setdefault(left + right, []).append((left, right))
    rank = {token: r for r, token in enumerate(groups)}
    chosen: dict[str, tuple[str, str]] = {}
    history: dict[str, tuple[float, ...]] = {}

    def built_from(token: str) -> tuple[float, ...]:
        if token not in rank:
            return ()                     # a base symbol: no merge needed
        if token not in chosen:
            return (float("inf"),)        # not formed yet at this point of training
        if token not in history:
            left, right = chosen[token]
            history[token] = tuple(sorted(built_from(left) + built_from(right) + (rank[token],)))
        return history[token]

    for token, splits in groups.items():
        chosen[token] = splits[0] if len(splits) == 1 else min(
            splits, key=lambda lr: (sorted(built_from(lr[0]) + built_from(lr[1])), -len(lr[0])))
    return list(chosen.values())


def _pre_tokenizer(kind: str, backend, digits_apart: bool):
    from tokenizers import Regex, pre_tokenizers as pt

    if kind == BYTE_LEVEL:
        steps = [pt.Digits(individual_digits=True)] if digits_apart else []
        return pt.Sequence(steps + [backend.pre_tokenizer]) if steps else backend.pre_tokenizer
    return pt.Sequence([
        pt.Split(Regex(_PUNCT_RUN), behavior="isolated"),
        pt.Split(SPM_SPACE, behavior="merged_with_next"),
        pt.Digits(individual_digits=digits_apart),
        pt.Split(Regex(r"[\n\t]"), behavior="removed"),
    ])


def merge_list(tokenizer, name: str = "tokenizer") -> MergeList:
    """The merge list of a BPE ``tokenizer`` (fast or raw) in training order, with the
    pre-tokenizer its trainer used. Raises :class:`TokengraftError` for other kinds."""
    backend = backend_of(tokenizer)
    conv = detect(backend)
    _refuse_kind(conv.model, name)
    model = json.loads(backend.to_str())["model"]
    raw = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges") or []]
    if not raw:
        raise TokengraftError(f"tokenizer {name} has no merges (a BPE model with an empty merge list); "
                              "there is nothing to read a data mixture from")
    if conv.kind == "byte_level":
        kind = BYTE_LEVEL
    elif conv.kind == "sentencepiece":
        kind = "sentencepiece"
    else:
        raise TokengraftError(f"tokenizer {name} is a BPE model but neither byte-level nor SentencePiece-style "
                              "(no ByteLevel step, no ▁ for spaces); its trainer's pre-tokenizer is unknown")
    vocab: dict[str, int] = model["vocab"]
    deduped = dedupe_merges(raw)  # type: ignore[arg-type]
    if kind == "sentencepiece":
        deduped = [(a, b) for a, b in deduped if not set(a + b) <= _BLANK]
    merges, results = [], []
    for left, right in deduped:
        ids = vocab.get(left), vocab.get(right), vocab.get(left + right)
        if None not in ids:
            merges.append((ids[0], ids[1]))
            results.append(ids[2])
    added = {t.content for t in backend.get_added_tokens_decoder().values()}
    family = BYTE_LEVEL if kind == BYTE_LEVEL else BYTE_FALLBACK
    digits_apart = splits_digits(model, family, added)
    symbols = {s: i for s, i in vocab.items() if len(s) == 1}
    logger.info("%s: %d merges in training order (%d of %d listed left out), %s, digits %s", name, len(merges),
             len(raw) - len(merges), len(raw), kind, "split one by one" if digits_apart else "as the tokenizer does")
    return MergeList(merges, results, symbols, kind, _pre_tokenizer(kind, backend, digits_apart),
                     backend.normalizer, dropped=len(raw) - len(merges))


def word_counts(texts: Iterable[str], merges: MergeList) -> Counter[str]:
    """Pre-tokens of ``texts`` (in the vocabulary's spelling) with how often each occurs."""
    counts: Counter[str] = Counter()
    for text in texts:
        if merges.normalizer is not None:
            text = merges.normalizer.normalize_str(text)
        counts.update(piece for piece, _ in merges.pre_tokenizer.pre_tokenize_str(text))
    return counts


def symbol_words(counts: Counter[str], symbols: dict[str, int]) -> tuple[list[list[int]], list[int]]:
    """Pre-tokens as symbol-id sequences with their counts. A character outside the
    vocabulary (a rare character SentencePiece left to byte fallback) never merges: the
    word is cut there."""
    words: list[list[int]] = []
    weights: list[int] = []
    for word, count in counts.items():
        run: list[int] = []
        for ch in word:
            idx = symbols.get(ch)
            if idx is None:
                if len(run) > 1:
                    words.append(run)
                    weights.append(count)
                run = []
            else:
                run.append(idx)
        if len(run) > 1:
            words.append(run)
            weights.append(count)
    return words, weights
