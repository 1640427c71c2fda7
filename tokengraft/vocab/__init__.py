"""The exact byte view of any vocabulary.

``byte_vocab(tok)`` gives every id's bytes and every special token's role;
``encode_bytes(tok, data)`` the ids that spell ``data`` exactly; ``vocab_overlap(a, b)`` the
tokens two vocabularies share. Methods and measurements compare vocabularies only here.
"""
from __future__ import annotations

from tokengraft.vocab.byte_vocab import ByteVocab, byte_vocab
from tokengraft.vocab.encode import NotEncodable, byte_offsets, encode_bytes, encode_bytes_batch, token_bytes
from tokengraft.vocab.overlap import VocabOverlap, vocab_overlap

__all__ = [
    "ByteVocab", "NotEncodable", "VocabOverlap", "byte_offsets", "byte_vocab", "encode_bytes",
    "encode_bytes_batch", "token_bytes", "vocab_overlap",
]
