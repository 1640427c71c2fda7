"""Which new tokens map to which old ones, in the exact byte view of both vocabularies.

A new token is *copied* when its bytes are an old token's bytes (input and output rows
alike), or when it is a special token that matches an old one by content or by role
(bos, eos, pad, unk; an encoder's cls, sep, mask). Every other token gets its *pieces*: the old-tokenizer ids whose
bytes concatenate to its bytes, encoded with the word-start convention (a token whose
bytes begin with a space is encoded as the start of a word), which the methods combine.

>>> c = match_tokens([b"a", b"b", None], [b"ab", b"a", None], [[0, 1], [0], []],
...                  old_specials={"<s>": 2}, new_specials={2: "<s>"})
>>> c.copied.tolist(), c.how
([-1, 0, 2], ['pieces', 'copied', 'special:content'])
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

logger = logging.getLogger(__name__)

# Order in which roles are tried for a special token that matched nothing by content:
# eos first because a shared id that plays several roles (bos = eos) is most often a
# document separator, whose row the model learned as "end".
ROLE_ORDER = ("eos", "bos", "pad", "unk", "cls", "sep", "mask")
# An encoder's sequence markers and a decoder's play the same part: BERT's [CLS] opens and
# [SEP] closes what RoBERTa's <s> (bos and cls) and </s> (eos and sep) open and close.
ROLE_ALIASES = {"cls": "bos", "bos": "cls", "sep": "eos", "eos": "sep"}
ENCODER_ROLES = ("cls", "sep", "mask")


@dataclass
class Correspondence:
    old_bytes: list[bytes | None]      # (V_old) exact bytes of each old token; None = special
    new_bytes: list[bytes | None]      # (V_new) exact bytes of each new token; None = special
    copied: torch.Tensor               # (V_new,) long: old id whose row is copied, -1 otherwise
    pieces: list[list[int]]            # (V_new) old ids whose bytes concatenate to new_bytes[t]
    how: list[str]                     # (V_new) "copied" | "special:content" | "special:<role>" | "added-special"
    #                                    | "special:unmatched" | "pieces" | "no-pieces"
    added_markers: list[str] = field(default_factory=list)   # chat markers added to the new tokenizer
    missing_roles: list[str] = field(default_factory=list)   # roles the base tokenizer has and the new one lacks
    inexact: list[int] = field(default_factory=list)         # new ids whose pieces only approximate their bytes

    @property
    def num_copied(self) -> int:
        return int((self.copied >= 0).sum())

    def old_to_new_specials(self) -> dict[int, int]:
        """Old special id -> new id, for rewriting config ids (first new id wins)."""
        out: dict[int, int] = {}
        for t, how in enumerate(self.how):
            if (how.startswith("special:") and how != "special:unmatched") or how == "added-special":
                out.setdefault(int(self.copied[t]), t)
        return out


def match_tokens(
    old_bytes: list[bytes | None],
    new_bytes: list[bytes | None],
    pieces: list[list[int]],
    *,
    old_specials: dict[str, int] | None = None,
    new_specials: dict[int, str] | None = None,
    old_roles: dict[str, int] | None = None,
    new_roles: dict[str, int] | None = None,
    lookup: Callable[[int], int | None] | None = None,
) -> Correspondence:
    """Pure matching on the byte view (no tokenizer needed).

    ``old_specials``: content -> old id of special tokens; ``new_specials``: new id ->
    content; ``*_roles``: role -> id. A token is copied from its single piece when the old
    tokenizer itself encodes it as one token, else from ``lookup(t)`` (default: the lowest
    old id with the same bytes).
    """
    old_specials, new_specials = old_specials or {}, new_specials or {}
    old_roles, new_roles = old_roles or {}, new_roles or {}
    if lookup is None:
        by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(old_bytes):
            if b is not None:
                by_bytes.setdefault(b, i)
        lookup = lambda t: by_bytes.get(new_bytes[t])  # noqa: E731
    roles_of_new: dict[int, list[str]] = {}
    for role in ROLE_ORDER:
        if role in new_roles:
            roles_of_new.setdefault(new_roles[role], []).append(role)
    copied = [-1] * len(new_bytes)  # a list while looping: element writes to a tensor cost microseconds each
    how: list[str] = []
    for t, b in enumerate(new_bytes):
        if b is None:
            content = new_specials.get(t)
            role = _matching_role(roles_of_new.get(t, []), old_roles)
            if content is not None and content in old_specials:
                copied[t], label = old_specials[content], "special:content"
            elif role is not None:
                copied[t], label = old_roles[role], f"special:{role}"
            else:
                label = "special:unmatched"
            how.append(label)
            continue
        p = pieces[t]
        if len(p) == 1 and old_bytes[p[0]] == b:
            copied[t] = p[0]
        else:
            source = lookup(t)
            if source is not None and source < len(old_bytes):
                copied[t] = source
        how.append("copied" if copied[t] >= 0 else ("pieces" if p else "no-pieces"))
    missing = [r for r in ROLE_ORDER if r in old_roles and r not in new_roles and ROLE_ALIASES.get(r) not in new_roles]
    return Correspondence(old_bytes, new_bytes, torch.tensor(copied, dtype=torch.long), pieces, how,
                          missing_roles=missing)


def _matching_role(roles: list[str], old_roles: dict[str, int]) -> str | None:
    """The first of a new special's roles the base has, directly, else through its alias
    (returned as the base's role name)."""
    for role in roles:
        if role in old_roles:
            return role
    for role in roles:
        if ROLE_ALIASES.get(role) in old_roles:
            return ROLE_ALIASES[role]
    return None


def declared_roles(tok: Any, view: Any) -> dict[str, int]:
    """bos/eos/pad/unk ids of the byte view plus an encoder's cls/sep/mask ids."""
    roles = dict(view.declared)
    for role in ENCODER_ROLES:
        idx = getattr(tok, f"{role}_token_id", None)
        if isinstance(idx, int) and idx >= 0:
            roles[role] = idx
    return roles


def encode_pieces(old_tok: Any, new_bytes: list[bytes | None]) -> tuple[list[list[int]], list[int]]:
    """``pieces[t]``: old-tokenizer ids for ``new_bytes[t]``, and the tokens whose pieces are inexact.

    Bytes the old tokenizer cannot spell at all (SmolLM2 has no token for 0xC0, which never
    occurs in UTF-8) get no pieces: the method's documented fallback applies.

    A token that starts with a space is encoded as a word start (this matters for WordPiece,
    whose word-initial and "##" pieces differ). Where the old tokenizer cannot spell the bytes
    exactly (WordPiece drops spaces and lowercases), its best effort is kept without unknown
    tokens: an approximate decomposition is a better estimate than none.
    """
    from tokengraft.vocab import byte_vocab, encode_bytes_batch, token_bytes

    view = byte_vocab(old_tok)
    unknown = {i for i, role in view.roles.items() if role == "unk"}
    pieces: list[list[int]] = [[] for _ in new_bytes]
    inexact: list[int] = []
    for word_start in (False, True):
        idx = [t for t, b in enumerate(new_bytes) if b and b.startswith(b" ") == word_start]
        if not idx:
            continue
        encoded = encode_bytes_batch(old_tok, [new_bytes[t] for t in idx], word_start=word_start, errors="best")
        for t, ids in zip(idx, encoded):
            pieces[t] = [i for i in ids if i not in unknown] if unknown else list(ids)
            if pieces[t] and token_bytes(view, ids) != new_bytes[t]:
                inexact.append(t)
    return pieces, sorted(inexact)


def build_correspondence(old_tok: Any, new_tok: Any, *, old_size: int | None = None) -> Correspondence:
    """Byte view of both tokenizers, pieces of every new token, and the matching.

    ``old_size``: number of old ids that have a row (ids at or beyond it are never used as
    copy sources; the caller has already checked that the old tokenizer fits).
    """
    from tokengraft.vocab import byte_vocab

    old_view, new_view = byte_vocab(old_tok), byte_vocab(new_tok)
    old_bytes, new_bytes = list(old_view.tokens), list(new_view.tokens)
    if old_size is not None:
        old_bytes = old_bytes[:old_size]
    pieces, inexact = encode_pieces(old_tok, new_bytes)

    def lookup(t: int) -> int | None:
        data = new_bytes[t]
        if old_view.word_start is None:
            return old_view.id_of(data)
        if new_view.word_start is not None:  # WordPiece to WordPiece: same bytes, same position in a word
            return old_view.id_of(data, word_start=new_view.word_start[t])
        # WordPiece base: its word-initial tokens stand for " word" (WordPiece drops the space),
        # its "##" tokens for a piece inside a word
        if data.startswith(b" ") and len(data) > 1:
            return old_view.id_of(data[1:], word_start=True)
        return old_view.id_of(data, word_start=False)

    corr = match_tokens(
        old_bytes, new_bytes, pieces,
        old_specials={c: i for i, c in old_view.specials.items() if i < len(old_bytes)},
        new_specials=dict(new_view.specials),
        old_roles={r: i for r, i in declared_roles(old_tok, old_view).items() if i < len(old_bytes)},
        new_roles=declared_roles(new_tok, new_view), lookup=lookup,
    )
    corr.inexact = [t for t in inexact if corr.how[t] != "copied"]
    return corr


def vocabulary_difference(tok_a: Any, tok_b: Any) -> str | None:
    """None when both tokenizers have the same ids with the same bytes (specials: same content);
    otherwise a short description of the first difference."""
    from tokengraft.vocab import byte_vocab

    view_a, view_b = byte_vocab(tok_a), byte_vocab(tok_b)
    a, b = view_a.tokens, view_b.tokens
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} ids"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y or (x is None and view_a.specials.get(i) != view_b.specials.get(i)):
            left = x if x is not None else view_a.specials.get(i)
            right = y if y is not None else view_b.specials.get(i)
            return f"id {i} is {left!r} vs {right!r}"
    return None
