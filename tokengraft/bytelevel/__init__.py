"""Exact byte-level probabilities of tokenized language models (Phan et al. 2024; ByteSampler).

A tokenized LM defines a distribution over byte strings; :class:`ByteModel` gives its
next-byte distribution after any byte prefix (one that ends mid-token or mid-character
too) and log P(bytes | byte prefix), summing over the tokenizations that cover the
prefix. ``score_corpora`` gives byte-level BPB beside the canonical token-level BPB;
``mix_logprobs`` ensembles models whose tokenizers differ, byte by byte; ``generate``
writes text byte by byte from one model or a mixture.

>>> from tokengraft.bytelevel import ByteModel
>>> ByteModel(model, tokenizer).next_byte(b"The quick bro")   # doctest: +SKIP
"""
from __future__ import annotations

from tokengraft.lazy import lazy_exports

_WHERE = {
    "ByteModel": "model", "ByteState": "model", "ByteOptions": "options", "ByteScore": "options",
    "GenerateOptions": "options", "ReferenceByteModel": "reference", "VocabTrie": "trie",
    "score_corpora": "score", "generate": "sampling", "mix_logprobs": "ensemble", "tune_weights": "ensemble",
    "continuation_logprobs": "boundary",
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
