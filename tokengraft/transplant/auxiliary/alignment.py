"""Parallel text -> word alignments -> how often each new token aligns with each old token.

Trans-tokenization (Remy et al. 2024, METHODS.md section 15) needs, for every new token, the old
tokens it translates to. Three steps:

1. **Line pairs.** LibreOffice help pages are the same pages in every language, translated line
   by line: a page whose two versions have the same number of lines gives that many pairs (pages
   whose line counts differ are skipped). Bibles are verse-aligned. Any two line-aligned files work
   too (:func:`read_line_pairs`, which refuses files of different lengths).
2. **Word alignment** with eflomal (``pip install eflomal``; a Bayesian IBM-model aligner, fast and
   more accurate than fast_align, which the paper used), in both directions, kept where both agree
   (intersection: few, reliable links).
3. **Word links -> token links.** Each word is tokenized on its own, the source side with the OLD
   tokenizer and the target side with the NEW one, with a leading space when the word followed
   whitespace. An aligned word pair adds 1 / (number of old pieces of the source word) to the
   count of every (new piece, old piece) pair of the two words, so each aligned target token
   occurrence hands out one unit of count.

The result is a sparse (V_new, V_old) count matrix (:class:`TokenAlignment`).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+|[^\w\s]+")


@dataclass
class TokenAlignment:
    counts: torch.Tensor        # sparse COO (V_new, V_old) float64: alignment counts
    pairs: int                  # line pairs aligned
    word_links: int             # word links kept (both directions agree)
    seconds: float              # time spent in the word aligner

    def coverage(self, wanted: torch.Tensor | None = None) -> float:
        """Share of new tokens (or of ``wanted`` (V_new,) bool) with at least one aligned old token."""
        hit = torch.zeros(self.counts.shape[0], dtype=torch.bool)
        hit[self.counts.coalesce().indices()[0]] = True
        if wanted is None:
            return float(hit.float().mean())
        return float(hit[wanted].float().mean()) if bool(wanted.any()) else 0.0


def page_line_pairs(source: dict[str, str], target: dict[str, str]) -> list[tuple[str, str]]:
    """(source line, target line) of pages present in both with the same number of lines; empty lines dropped.

    >>> page_line_pairs({"p": "Open\\nSave", "q": "x"}, {"p": "Öffnen\\nSpeichern", "q": "a\\nb"})
    [('Open', 'Öffnen'), ('Save', 'Speichern')]
    """
    pairs = []
    for doc_id, text in target.items():
        if doc_id not in source:
            continue
        src_lines, tgt_lines = source[doc_id].split("\n"), text.split("\n")
        if len(src_lines) != len(tgt_lines):
            continue
        pairs += [(s.strip(), t.strip()) for s, t in zip(src_lines, tgt_lines) if s.strip() and t.strip()]
    return pairs


def read_line_pairs(source_path: str | Path, target_path: str | Path) -> list[tuple[str, str]]:
    """Line pairs of two line-aligned UTF-8 files (line i translates line i); lengths must agree."""
    src = Path(source_path).read_text(encoding="utf-8").splitlines()
    tgt = Path(target_path).read_text(encoding="utf-8").splitlines()
    if len(src) != len(tgt):
        raise TokengraftError(f"parallel corpus sides differ in length: {source_path} has {len(src)} lines,"
                              f" {target_path} {len(tgt)}; line i of one must translate line i of the other")
    pairs = [(s.strip(), t.strip()) for s, t in zip(src, tgt) if s.strip() and t.strip()]
    if not pairs:
        raise TokengraftError(f"parallel corpus {source_path} / {target_path} has no non-empty line pair")
    return pairs


def split_words(line: str) -> list[tuple[str, bool]]:
    """Words and punctuation runs of a line, each with whether whitespace came before it.

    >>> split_words("Open a file, then save.")
    [('Open', False), ('a', True), ('file', True), (',', False), ('then', True), ('save', True), ('.', False)]
    """
    return [(m.group(), m.start() > 0 and line[m.start() - 1].isspace()) for m in _WORD.finditer(line)]


def eflomal_links(source: Sequence[Sequence[str]], target: Sequence[Sequence[str]]) -> list[list[tuple[int, int]]]:
    """Word links (source index, target index) per sentence pair: eflomal both ways, intersected.

    eflomal's sampler seeds itself from /dev/urandom and takes no seed, so two runs on the same
    text can keep somewhat different links (the more text, the less they differ)."""
    try:
        import eflomal
    except ImportError as exc:
        raise TokengraftError("trans-tokenization aligns words with eflomal: pip install eflomal"
                              " (or pip install 'tokengraft[transfer]')") from exc
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fwd, rev = Path(tmp) / "fwd", Path(tmp) / "rev"
        aligner = eflomal.Aligner()
        aligner.align([" ".join(s) for s in source], [" ".join(t) for t in target],
                      links_filename_fwd=str(fwd), links_filename_rev=str(rev), quiet=True)
        forward, reverse = _read_links(fwd), _read_links(rev)
    return [sorted(set(f) & set(r)) for f, r in zip(forward, reverse)]


def _read_links(path: Path) -> list[list[tuple[int, int]]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        out.append([(int(a), int(b)) for a, b in (p.split("-") for p in line.split())])
    return out


def token_alignment(pairs: Sequence[tuple[str, str]], old_tokenizer: Any, new_tokenizer: Any,
                    old_size: int, new_size: int,
                    aligner: Callable[..., list[list[tuple[int, int]]]] = eflomal_links) -> TokenAlignment:
    """Align ``pairs`` (source line, target line) and count new-token / old-token links (see module doc)."""
    if not pairs:
        raise TokengraftError("trans-tokenization needs parallel text and got no line pair")
    src_words = [split_words(s) for s, _ in pairs]
    tgt_words = [split_words(t) for _, t in pairs]
    keep = [i for i in range(len(pairs)) if src_words[i] and tgt_words[i]]
    start = time.perf_counter()
    # the aligner sees lower-cased words: case is noise for it (Datei / datei)
    links = aligner([[w.lower() for w, _ in src_words[i]] for i in keep],
                    [[w.lower() for w, _ in tgt_words[i]] for i in keep])
    seconds = time.perf_counter() - start
    old_pieces, new_pieces = _piece_cache(old_tokenizer), _piece_cache(new_tokenizer)
    counts: dict[tuple[int, int], float] = {}
    n_links = 0
    for i, sentence_links in zip(keep, links):
        for s, t in sentence_links:
            olds, news = old_pieces(*src_words[i][s]), new_pieces(*tgt_words[i][t])
            if not olds or not news:
                continue
            n_links += 1
            share = 1.0 / len(olds)
            for n in news:
                if n >= new_size:
                    continue
                for o in olds:
                    if o < old_size:
                        counts[(n, o)] = counts.get((n, o), 0.0) + share
    index = torch.tensor(list(counts), dtype=torch.long).T.reshape(2, -1)
    values = torch.tensor(list(counts.values()), dtype=torch.float64)
    matrix = torch.sparse_coo_tensor(index, values, (new_size, old_size)).coalesce()
    logger.info("trans-tokenization: %d line pairs, %d word links, %d token pairs, aligner %.1f s",
             len(keep), n_links, values.numel(), seconds)
    return TokenAlignment(matrix, len(keep), n_links, seconds)


def _piece_cache(tokenizer: Any) -> Callable[[str, bool], list[int]]:
    """word, spaced -> token ids of the word (with a leading space when ``spaced``), memoised."""
    memo: dict[tuple[str, bool], list[int]] = {}
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)

    def pieces(word: str, spaced: bool) -> list[int]:
        key = (word, spaced)
        if key not in memo:
            text = " " + word if spaced else word
            if hasattr(backend, "encode") and hasattr(backend, "get_vocab_size"):
                memo[key] = backend.encode(text, add_special_tokens=False).ids
            else:
                memo[key] = list(tokenizer.encode(text, add_special_tokens=False))
        return memo[key]

    return pieces
