"""The spellings that tokenizers use for bytes, and how to undo them.

GPT-2-style byte-level BPE stores every byte as one printable character, so a vocabulary
can be a JSON dict of strings: printable Latin-1 bytes stand for themselves, the other 68
bytes (controls, space, 0x7F-0xA0, 0xAD) are shifted to U+0100..U+0143 in byte order.
That is why a space reads ``Ġ`` (U+0120) and a newline ``Ċ`` (U+010A).
SentencePiece writes a space as ``▁`` (U+2581) and a byte it had to fall back on as
``<0xNN>``.
"""
from __future__ import annotations

import re
from functools import lru_cache

SPM_SPACE = "\u2581"
BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Byte value -> the character byte-level BPE writes for it (256 entries).

    >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("a")]
    ('Ġ', 'a')
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """Inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in bytes_to_unicode().items()}


def to_byte_level(data: bytes) -> str:
    """Spell ``data`` in the byte-level alphabet: ``to_byte_level(b" hi") == "Ġhi"``."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in data)


@lru_cache(maxsize=1)
def _latin1_table() -> dict[int, str]:
    # alphabet character -> the Latin-1 character whose code is the byte, for str.translate
    return {ord(c): chr(b) for c, b in unicode_to_bytes().items()}


def from_byte_level(token: str) -> bytes | None:
    """Bytes of a byte-level token string, or None if it uses a character outside the alphabet.

    >>> from_byte_level("Ġhi"), from_byte_level("日")
    (b' hi', None)
    """
    table = _latin1_table()
    if any(ord(c) not in table for c in token):
        return None
    return token.translate(table).encode("latin-1")


def byte_piece_value(token: str) -> int | None:
    """``"<0x0A>" -> 10``; None for anything that is not a SentencePiece byte piece."""
    match = BYTE_PIECE.fullmatch(token)
    return int(match.group(1), 16) if match else None
