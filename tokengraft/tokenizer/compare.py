"""Side-by-side numbers for tokenizers on corpora (``tokengraft tokenizer compare``).

Per tokenizer x corpus: bytes and characters per token, fertility (tokens per
whitespace word), the share of words cut into 2+ tokens, vocabulary utilisation, the
share of tokens that are not whole characters (byte fallback, split characters) or
unknown, and how numbers are cut (digits per token). Per pair of tokenizers: how many
token byte strings they share. With aligned (parallel) corpora: the token premium of
each language, tokens for X / tokens for the reference language on the same documents
(Arnett et al. 2025).

Words are maximal runs of non-space characters. A word counts as split when more than
one token overlaps its characters, so a superword token spanning three words leaves all
three unsplit.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from tokengraft.assets.corpus import Corpus
from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)
ENGLISH = ("en", "en-us", "english", "web")  # bible:web is the World English Bible


@dataclass
class CorpusStats:
    tokenizer: str
    corpus: str
    n_bytes: int = 0
    n_chars: int = 0
    n_words: int = 0
    n_tokens: int = 0
    split_words: int = 0
    fallback_tokens: int = 0
    unk_tokens: int = 0
    vocab_used: int = 0
    vocab_size: int = 0
    digits_per_token: dict[int, int] = field(default_factory=dict)  # digits in a token -> tokens
    premium: float | None = None

    @property
    def bytes_per_token(self) -> float:
        return self.n_bytes / max(self.n_tokens, 1)

    @property
    def chars_per_token(self) -> float:
        return self.n_chars / max(self.n_tokens, 1)

    @property
    def fertility(self) -> float:
        return self.n_tokens / max(self.n_words, 1)

    @property
    def split_share(self) -> float:
        return self.split_words / max(self.n_words, 1)

    @property
    def utilisation(self) -> float:
        return self.vocab_used / max(self.vocab_size, 1)

    @property
    def fallback_rate(self) -> float:
        return self.fallback_tokens / max(self.n_tokens, 1)

    @property
    def unk_rate(self) -> float:
        return self.unk_tokens / max(self.n_tokens, 1)

    @property
    def mean_digits(self) -> float:
        n = sum(self.digits_per_token.values())
        return sum(k * v for k, v in self.digits_per_token.items()) / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("bytes_per_token", "chars_per_token", "fertility", "split_share", "utilisation",
                     "fallback_rate", "unk_rate", "mean_digits"):
            out[name] = getattr(self, name)
        out["digits_per_token"] = {str(k): v for k, v in sorted(self.digits_per_token.items())}
        return out


@dataclass
class Overlap:
    a: str
    b: str
    shared: int       # token byte strings in both vocabularies (specials excluded)
    size_a: int
    size_b: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share_of_a": self.shared / max(self.size_a, 1),
                "share_of_b": self.shared / max(self.size_b, 1)}


@dataclass
class CompareReport:
    tokenizers: list[str]
    corpora: list[str]
    stats: list[CorpusStats]
    overlaps: list[Overlap]
    parallel: bool = False
    reference: str | None = None
    aligned_documents: int | None = None

    def get(self, tokenizer: str, corpus: str) -> CorpusStats:
        for s in self.stats:
            if s.tokenizer == tokenizer and s.corpus == corpus:
                return s
        raise KeyError((tokenizer, corpus))

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizers": self.tokenizers, "corpora": self.corpora, "parallel": self.parallel,
                "reference": self.reference, "aligned_documents": self.aligned_documents,
                "stats": [s.to_dict() for s in self.stats], "overlaps": [o.to_dict() for o in self.overlaps]}


@dataclass
class TokenTable:
    """What counting needs about one vocabulary, computed once per tokenizer."""
    view: Any                # tokengraft.vocab.ByteVocab: exact bytes of every id
    partial: np.ndarray      # (V,) bool: ids whose bytes are not whole UTF-8 characters
    unk: int | None


def token_table(tokenizer: Any) -> TokenTable:
    from tokengraft.vocab import byte_vocab

    view = byte_vocab(tokenizer)
    partial = np.zeros(len(view.tokens), dtype=bool)
    for i, data in enumerate(view.tokens):
        if data is not None:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                partial[i] = True
    return TokenTable(view, partial, view.declared.get("unk"))


def _backend(tokenizer: Any) -> Any:
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def corpus_stats(tokenizer: Any, name: str, corpus: Corpus, table: TokenTable, batch: int = 64) -> CorpusStats:
    """Encode every document of ``corpus`` (no specials added) and count."""
    partial, unk = table.partial, table.unk
    stats = CorpusStats(tokenizer=name, corpus=corpus.name, vocab_size=len(partial))
    used = np.zeros(len(partial), dtype=bool)
    backend = _backend(tokenizer)
    texts = corpus.texts()
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        for text, enc in zip(chunk, backend.encode_batch(chunk, add_special_tokens=False)):
            ids = np.asarray(enc.ids, dtype=np.int64)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
            _count_document(stats, text, ids, offsets, partial, unk)
            used[ids[ids < len(used)]] = True
    stats.vocab_used = int(used.sum())
    return stats


def _count_document(stats: CorpusStats, text: str, ids: np.ndarray, offsets: np.ndarray,
                    partial: np.ndarray, unk: int | None) -> None:
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    space = np.isin(codes, [9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x2028, 0x2029, 0x3000])
    bounds = np.flatnonzero(np.diff(np.concatenate([[1], space.astype(np.int8), [1]])))
    word_start, word_end = bounds[0::2], bounds[1::2]  # runs of non-space characters
    stats.n_bytes += len(text.encode("utf-8"))
    stats.n_chars += len(text)
    stats.n_words += len(word_start)
    stats.n_tokens += len(ids)
    stats.fallback_tokens += int(partial[ids[ids < len(partial)]].sum())
    if unk is not None:
        stats.unk_tokens += int((ids == unk).sum())
    real = offsets[:, 1] > offsets[:, 0]
    starts, ends = offsets[real, 0], offsets[real, 1]
    if len(word_start):
        overlapping = np.searchsorted(starts, word_end, "left") - np.searchsorted(ends, word_start, "right")
        stats.split_words += int((overlapping > 1).sum())
    digits = np.concatenate([[0], np.cumsum((codes >= 48) & (codes <= 57))])
    per_token = digits[np.minimum(ends, len(codes))] - digits[np.minimum(starts, len(codes))]
    for k, v in zip(*np.unique(per_token[per_token > 0], return_counts=True)):
        stats.digits_per_token[int(k)] = stats.digits_per_token.get(int(k), 0) + int(v)


def vocab_overlaps(names: Sequence[str], tables: Mapping[str, TokenTable]) -> list[Overlap]:
    from tokengraft.vocab import vocab_overlap

    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ov = vocab_overlap(tables[a].view, tables[b].view)
            out.append(Overlap(a, b, ov.shared, ov.shared + ov.only_a, ov.shared + ov.only_b))
    return out


def short_labels(names: Sequence[str]) -> list[str]:
    """Drop the ``:``-parts every name shares: libreoffice:fr:heldout -> fr."""
    parts = [n.split(":") for n in names]
    if len(names) < 2 or len({len(p) for p in parts}) != 1:
        return list(names)
    keep = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    return [":".join(p[i] for i in keep) for p in parts]


def pick_reference(names: Sequence[str], reference: str | None) -> str:
    if reference is not None:
        if reference not in names:
            raise TokengraftError(f"reference corpus {reference!r} is not among --corpus; pass one of them")
        return reference
    for name, label in zip(names, short_labels(names)):
        if label.lower() in ENGLISH:
            return name
    return names[0]


def align(corpora: Sequence[Corpus], max_bytes: int | None, reference: str) -> list[Corpus]:
    """Keep the documents whose id is in every corpus, in the reference's order; with
    ``max_bytes``, as many as fit the budget in the reference language."""
    ids = set.intersection(*(set(c.by_id()) for c in corpora))
    if not ids:
        raise TokengraftError("--parallel found no document id shared by all corpora; pass aligned corpora "
                              "(libreoffice:<lang>, bible:web + bible:rv1909)")
    ref = next(c for c in corpora if c.name == reference)
    order, total = [], 0
    for doc in ref.documents:
        if doc.id in ids:
            if max_bytes is not None and total >= max_bytes:
                break
            order.append(doc.id)
            total += len(doc.text.encode("utf-8"))
    out = []
    for c in corpora:
        by_id = {d.id: d for d in c.documents}
        out.append(Corpus(c.name, [by_id[i] for i in order]))
    return out


def compare_tokenizers(tokenizers: Mapping[str, Any], corpora: Sequence[Corpus], parallel: bool = False,
                       max_bytes: int | None = None, reference: str | None = None,
                       show_progress: bool = False) -> CompareReport:
    """Measure every tokenizer on every corpus; see the module docstring for the numbers."""
    if not tokenizers or not corpora:
        raise TokengraftError("compare needs at least one --tokenizer and one --corpus")
    empty = [c.name for c in corpora if not any(t.strip() for t in c.texts())]
    if empty:
        raise TokengraftError(f"corpus {empty[0]} is empty; check its spec")
    names = list(tokenizers)
    ref = pick_reference([c.name for c in corpora], reference) if parallel else None
    if parallel:
        corpora = align(corpora, max_bytes, ref)  # type: ignore[arg-type]
    elif max_bytes is not None:
        corpora = [c.truncate(max_bytes) for c in corpora]
    tables = {n: token_table(tokenizers[n]) for n in names}
    stats = []
    for n in tqdm(names, desc="tokenizers", disable=not show_progress):
        for c in corpora:
            stats.append(corpus_stats(tokenizers[n], n, c, tables[n]))
    report = CompareReport(names, [c.name for c in corpora], stats, vocab_overlaps(names, tables),
                           parallel=parallel, reference=ref,
                           aligned_documents=len(corpora[0].documents) if parallel else None)
    if parallel:
        for n in names:
            base = report.get(n, ref).n_tokens  # type: ignore[arg-type]
            for c in corpora:
                report.get(n, c.name).premium = report.get(n, c.name).n_tokens / max(base, 1)
    return report
