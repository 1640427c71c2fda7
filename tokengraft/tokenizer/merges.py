"""Plain, obviously-correct BPE references that the fast paths are tested against.

``apply_merges`` is how a BPE model with ranked merges encodes one pre-token: repeatedly
merge the adjacent pair with the lowest rank, leftmost first. ``learn_merges_reference``
is stage 2 of SuperBPE recounting every pair at every step (slow, for tiny inputs).
"""
from __future__ import annotations

import json
from typing import Sequence

from tokenizers import Tokenizer

from tokengraft.tokenizer.conventions import byte_piece_strings
from tokengraft.tokenizer.superbpe import merged_words, word_shape


def apply_merges(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Merge the lowest-ranked adjacent pair (leftmost on ties) until none applies.

    >>> apply_merges(list("abab"), {("a", "b"): 0, ("ab", "ab"): 1})
    ['abab']
    """
    symbols = list(symbols)
    while len(symbols) > 1:
        best, at = None, -1
        for i in range(len(symbols) - 1):
            rank = ranks.get((symbols[i], symbols[i + 1]))
            if rank is not None and (best is None or rank < best):
                best, at = rank, i
        if best is None:
            break
        symbols[at:at + 2] = [symbols[at] + symbols[at + 1]]
    return symbols


def reference_encode(tokenizer: Tokenizer, text: str) -> list[int]:
    """Encode ``text`` with the tokenizer's own normalizer and pre-tokenizer but with
    :func:`apply_merges` instead of its BPE model (no special tokens added)."""
    data = json.loads(tokenizer.to_str())
    model = data["model"]
    vocab: dict[str, int] = model["vocab"]
    ranks = {tuple(m.split(" ", 1) if isinstance(m, str) else m): r for r, m in enumerate(model["merges"])}
    if tokenizer.normalizer is not None:
        text = tokenizer.normalizer.normalize_str(text)
    pieces = tokenizer.pre_tokenizer.pre_tokenize_str(text) if tokenizer.pre_tokenizer else [(text, (0, 0))]
    byte_ids = [vocab.get(p) for p in byte_piece_strings()] if model.get("byte_fallback") else None
    ids: list[int] = []
    for piece, _ in pieces:
        for symbol in apply_merges(list(piece), ranks):
            if symbol in vocab:
                ids.append(vocab[symbol])
            elif byte_ids is not None:
                ids.extend(byte_ids[b] for b in symbol.encode("utf-8"))
            else:
                raise KeyError(f"symbol {symbol!r} is not in the vocabulary")
    return ids


def learn_merges_reference(
    chunks: Sequence[Sequence[int]], weights: Sequence[int], token_bytes: Sequence[bytes],
    token_strings: Sequence[str], num_merges: int, *, max_words: int, min_frequency: int,
    mergeable: Sequence[bool] | None = None,
) -> list[tuple[int, int]]:
    """Stage-2 merges by brute force: same rules and tie-breaks as the fast learner."""
    seqs = [list(c) for c in chunks]
    shapes = [word_shape(b) for b in token_bytes]
    ok = list(mergeable) if mergeable is not None else [True] * len(token_strings)
    strings, known = list(token_strings), set(token_strings)
    banned: set[tuple[int, int]] = set()
    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        counts: dict[tuple[int, int], int] = {}
        for seq, w in zip(seqs, weights):
            for a, b in zip(seq, seq[1:]):
                if ok[a] and ok[b] and merged_words(shapes[a], shapes[b]) <= max_words and (a, b) not in banned:
                    counts[(a, b)] = counts.get((a, b), 0) + w
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        if counts[pair] < min_frequency:
            break
        if strings[pair[0]] + strings[pair[1]] in known:
            banned.add(pair)
            continue
        new = len(strings)
        strings.append(strings[pair[0]] + strings[pair[1]])
        known.add(strings[-1])
        shapes.append((merged_words(shapes[pair[0]], shapes[pair[1]]), shapes[pair[0]][1], shapes[pair[1]][2]))
        ok.append(True)
        merges.append(pair)
        for k, seq in enumerate(seqs):
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[k] = out
    return merges
