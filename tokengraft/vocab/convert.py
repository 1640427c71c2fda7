"""Build a ``tokenizers.Tokenizer`` from byte-level BPE sources: tiktoken ranks, GPT-2 files.

tiktoken stores only ranks (bytes -> id, lower = merged earlier); a HF BPE model needs a
merge list. Each multi-byte token's merge is recovered by running BPE on its own bytes
with the ranks below its own: BPE stops at exactly two parts, and those are the merge.
The result encodes like tiktoken: same regex split, same "whole piece first" shortcut
(``ignore_merges``), same lowest-rank-first, leftmost-on-ties merging.

>>> ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"abc": 257}
>>> merges_from_ranks(ranks)
[(b'a', b'b'), (b'ab', b'c')]
"""
from __future__ import annotations

import logging
import re
from typing import Mapping

from tokengraft.vocab.alphabet import to_byte_level

logger = logging.getLogger(__name__)

# Meta's Llama-3 pre-tokenization pattern (tiktoken ``pat_str`` of the Llama-3 release).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# tiktoken's cl100k_base pattern (possessive quantifiers; see onig_pattern).
CL100K_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"
    r"|\s++$|\s*[\r\n]|\s+(?!\S)|\s"
)


def bpe_parts(token: bytes, ranks: Mapping[bytes, int], max_rank: int) -> list[bytes]:
    """Run byte-level BPE on ``token`` using only ranks below ``max_rank``; return the parts.

    Merges the adjacent pair whose concatenation has the lowest rank, leftmost on ties,
    until no pair is mergeable (tiktoken's rule). Stops early at two parts: the caller
    only needs the last merge.
    """
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_rank, best_i = max_rank, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best_rank, best_i = rank, i
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Merge list (in rank order) that reproduces tiktoken's BPE for ``ranks``.

    A token that BPE cannot build from lower-ranked parts gets no merge; with
    ``ignore_merges`` it is still produced when a whole pre-token equals it, as in tiktoken.
    """
    merges: list[tuple[bytes, bytes]] = []
    unreachable = 0
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = bpe_parts(token, ranks, rank)
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
        else:
            unreachable += 1
    if unreachable:
        logger.debug("%d tokens cannot be built by merges; they match only as whole pieces", unreachable)
    return merges


def _byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]], pattern: str | None,
                    specials: Mapping[str, int], ignore_merges: bool):
    """Assemble a byte-level BPE tokenizer; ``pattern=None`` keeps ByteLevel's built-in GPT-2 regex."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = dict(vocab)
    # Specials live in the model vocab too, so add_special_tokens keeps their ids even
    # when they are not contiguous (cl100k jumps from 100260 to 100276).
    for content, idx in specials.items():
        vocab[content] = idx
    taken = set(vocab.values())
    # Holes in the id range would make len(tokenizer) disagree with the embedding rows.
    for idx in range(max(taken) + 1):
        if idx not in taken:
            vocab[f"<|tokengraft_unused_{idx}|>"] = idx
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges, fuse_unk=False))
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    names = sorted((c for c in vocab if c.startswith("<|tokengraft_unused_")), key=vocab.get)
    tok.add_special_tokens([AddedToken(c, special=True, normalized=False) for c in [*specials, *names]])
    return tok


def onig_pattern(pattern: str) -> str:
    """Rewrite a tiktoken regex for the Oniguruma engine inside ``tokenizers``.

    Oniguruma (Ruby syntax) reads ``X{1,3}+`` as "``X{1,3}`` one or more times", not as
    a possessive ``{1,3}``; cl100k's ``\\p{N}{1,3}+`` would then swallow whole numbers.
    Dropping that ``+`` is exact where the quantifier ends its alternative (as in
    cl100k/o200k), since nothing after it could make the engine backtrack into it.
    ``?+ *+ ++`` are possessive in Oniguruma too and stay.
    """
    return re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", pattern)


def tiktoken_to_tokenizer(ranks: Mapping[bytes, int], pattern: str, specials: Mapping[str, int]):
    """``tokenizers.Tokenizer`` equivalent to ``tiktoken.Encoding(pat_str=pattern, mergeable_ranks=ranks,
    special_tokens=specials)``: Split(pattern) + ByteLevel(use_regex=False), ByteLevel decoder."""
    merges = [(to_byte_level(a), to_byte_level(b)) for a, b in merges_from_ranks(ranks)]
    vocab = {to_byte_level(token): rank for token, rank in ranks.items()}
    return _byte_level_bpe(vocab, merges, onig_pattern(pattern), specials, ignore_merges=True)


def gpt2_to_tokenizer(encoder: Mapping[str, int], merges: list[tuple[str, str]], specials: Mapping[str, int]):
    """``tokenizers.Tokenizer`` from GPT-2's ``encoder.json`` (byte-level strings -> ids) and
    ``vocab.bpe`` merges, with GPT-2's own regex inside the ByteLevel pre-tokenizer."""
    return _byte_level_bpe(dict(encoder), list(merges), None, specials, ignore_merges=False)


def read_bpe_merges(text: str) -> list[tuple[str, str]]:
    """Parse a ``vocab.bpe``/``merges.txt`` file: optional ``#version`` line, then ``a b`` per line."""
    merges = []
    for line in text.splitlines():
        if not line or line.startswith("#version"):
            continue
        left, sep, right = line.partition(" ")
        if not sep or not left or not right:
            raise ValueError(f"bad merge line {line!r}")
        merges.append((left, right))
    return merges
