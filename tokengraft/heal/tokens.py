"""Tokenizing training text: plain ids for the LM stream, exact byte lengths for ALM."""
from __future__ import annotations

from typing import Any, Callable

from tokengraft.errors import TokengraftError
from tokengraft.heal import compat
from tokengraft.heal.alignment import AlignedDoc, align_doc


def plain_encoder(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    """Texts -> ids without the tokenizer's own special tokens (the streams add the start token)."""

    def encode(texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

    return encode


def lengths_if_exact(ids: list[int], table: list[bytes | None], raw: bytes) -> list[int] | None:
    """Byte length of every token of ``ids`` if they rebuild ``raw`` exactly, else None.

    A leading space that the tokenizer adds by itself (SentencePiece's dummy prefix) is
    taken off the first token.
    """
    pieces = [table[i] if 0 <= i < len(table) else None for i in ids]
    if any(p is None for p in pieces):
        return None
    lengths = [len(p) for p in pieces]  # type: ignore[arg-type]
    joined = b"".join(pieces)  # type: ignore[arg-type]
    if joined == raw:
        return lengths
    if joined == b" " + raw and lengths and lengths[0] >= 1:
        return [lengths[0] - 1, *lengths[1:]]
    return None


def exact_tokens(tokenizer: Any, table: list[bytes | None], texts: list[str], who: str) -> list[tuple[list[int], list[int]]]:
    """``(ids, byte lengths)`` of each text, rebuilding it exactly.

    The tokenizer's own encoding is used where it is exact (what the model sees at
    inference); where it is not (a normaliser, ``<unk>``), the byte view spells the text
    exactly; where even that fails the tokenizer cannot represent the text: ALM would
    compare unequal text, so that is an error.
    """
    out = []
    for text, ids in zip(texts, plain_encoder(tokenizer)(texts)):
        raw = text.encode("utf-8")
        lengths = lengths_if_exact(ids, table, raw)
        if lengths is None:
            ids = compat.encode_exact(tokenizer, raw) or []
            lengths = lengths_if_exact(ids, table, raw)
        if lengths is None:
            raise TokengraftError(
                f"the {who} tokenizer cannot represent the training text exactly (no exact encoding of "
                f"{text[:40]!r}); use a byte-level or byte-fallback {who} tokenizer, or remove such text")
        out.append((list(ids), lengths))
    return out


def aligner(student: Any, teacher: Any) -> Callable[[list[str]], list[AlignedDoc]]:
    """Texts -> :class:`AlignedDoc` for each, tokenized by both sides."""
    table_s, table_t = compat.token_bytes(student), compat.token_bytes(teacher)

    def align(texts: list[str]) -> list[AlignedDoc]:
        pairs = zip(exact_tokens(student, table_s, texts, "student"), exact_tokens(teacher, table_t, texts, "teacher"))
        return [align_doc(ids_s, len_s, ids_t, len_t) for (ids_s, len_s), (ids_t, len_t) in pairs]

    return align
