"""Which tokens two vocabularies share, compared only on exact bytes.

Regular tokens match when their bytes are equal (WordPiece: bytes and word-start flag, when
both sides are WordPiece). Special tokens never match by accident of spelling: first by
exact content (``<|im_start|>`` on both sides, chat markers included), then by role
(bos to bos, eos to eos, pad to pad, unk to unk).

>>> from tokengraft.vocab.byte_vocab import ByteVocab
>>> a = ByteVocab(tokens=[b"a", b"b", None], roles={2: "eos"}, kind="other", lossless=False, specials={2: "</s>"})
>>> b = ByteVocab(tokens=[None, b"b", b"c"], roles={0: "eos"}, kind="other", lossless=False, specials={0: "<eos>"})
>>> ov = vocab_overlap(a, b)
>>> ov.pairs, ov.special_pairs, ov.shared, ov.only_a, ov.only_b, ov.jaccard
([(1, 1)], [(2, 0, 'role:eos')], 1, 1, 1, 0.3333333333333333)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tokengraft.vocab.byte_vocab import ByteVocab, Key

ROLE_MATCH_ORDER = ("bos", "eos", "pad", "unk")


@dataclass
class VocabOverlap:
    """Correspondence between vocabularies ``a`` and ``b`` (typically a = old, b = new)."""
    pairs: list[tuple[int, int]]                 # (id_a, id_b): every regular b id whose key a has (a's canonical id)
    special_pairs: list[tuple[int, int, str]]    # (id_a, id_b, "content" | "role:<role>")
    shared: int                                  # distinct keys in both vocabularies
    only_a: int                                  # distinct keys only in a
    only_b: int                                  # distinct keys only in b
    unmatched_specials_b: list[int] = field(default_factory=list)

    @property
    def jaccard(self) -> float:
        """Shared keys over all distinct keys (0 when both are empty)."""
        total = self.shared + self.only_a + self.only_b
        return self.shared / total if total else 0.0

    def b_to_a(self, size_b: int) -> list[int]:
        """(V_b,) id in a for each id of b, -1 where none (regular and special pairs together)."""
        out = [-1] * size_b
        for ia, ib in self.pairs:
            out[ib] = ia
        for ia, ib, _ in self.special_pairs:
            out[ib] = ia
        return out


def _keys(vocab: ByteVocab, wordpiece_flag: bool) -> dict[Key, int]:
    """Distinct matching keys of a vocabulary -> canonical id (the one ``vocab.index`` holds)."""
    if wordpiece_flag or vocab.word_start is None:
        return dict(vocab.index)
    # WordPiece against a non-WordPiece vocabulary: bytes only, the word-initial form preferred
    keys: dict[Key, int] = {}
    for (data, start), idx in sorted(vocab.index.items(), key=lambda kv: not kv[0][1]):
        keys.setdefault(data, idx)
    return keys


def _key_of(vocab: ByteVocab, idx: int, wordpiece_flag: bool) -> Key | None:
    data = vocab.tokens[idx]
    if data is None:
        return None
    return (data, vocab.word_start[idx]) if wordpiece_flag and vocab.word_start is not None else data


def _special_pairs(a: ByteVocab, b: ByteVocab) -> tuple[list[tuple[int, int, str]], list[int]]:
    pairs: list[tuple[int, int, str]] = []
    by_content = {content: idx for idx, content in sorted(a.specials.items(), reverse=True)}
    used_a: set[int] = set()
    left_b: list[int] = []
    for idx_b, content in sorted(b.specials.items()):
        idx_a = by_content.get(content)
        if idx_a is not None and idx_a not in used_a:
            pairs.append((idx_a, idx_b, "content"))
            used_a.add(idx_a)
        else:
            left_b.append(idx_b)
    unmatched: list[int] = []
    for idx_b in left_b:
        role = b.roles.get(idx_b)
        candidates = [i for i in a.role_ids(role) if i not in used_a] if role in ROLE_MATCH_ORDER else []
        if candidates:
            pairs.append((candidates[0], idx_b, f"role:{role}"))
            used_a.add(candidates[0])
        else:
            unmatched.append(idx_b)
    return sorted(pairs, key=lambda p: p[1]), unmatched


def vocab_overlap(a: ByteVocab, b: ByteVocab) -> VocabOverlap:
    """Byte-level correspondence between two :class:`ByteVocab` s (see module docstring)."""
    both_wordpiece = a.word_start is not None and b.word_start is not None
    keys_a, keys_b = _keys(a, both_wordpiece), _keys(b, both_wordpiece)
    pairs = []
    for idx_b in range(len(b.tokens)):
        key = _key_of(b, idx_b, both_wordpiece)
        if key is not None and key in keys_a:
            pairs.append((keys_a[key], idx_b))
    shared = len(keys_a.keys() & keys_b.keys())
    special_pairs, unmatched = _special_pairs(a, b)
    return VocabOverlap(pairs=pairs, special_pairs=special_pairs, shared=shared, only_a=len(keys_a) - shared,
                        only_b=len(keys_b) - shared, unmatched_specials_b=unmatched)
