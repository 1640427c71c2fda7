"""Providers of auxiliary vectors for the methods that need an auxiliary space.

These may load models and read corpora; the methods in ``tokengraft.transplant.methods``
stay pure tensor functions. The orchestrator calls :func:`provide_aux` by method name.
"""
from __future__ import annotations

from tokengraft.transplant.auxiliary.bilingual import BilingualOptions, bilingual_alignment, procrustes, read_dictd
from tokengraft.transplant.auxiliary.providers import (
    PROVIDERS, AuxRequest, AuxVectors, provide_aux, static_token_embeddings,
)
from tokengraft.transplant.auxiliary.static import StaticOptions
from tokengraft.transplant.auxiliary.strings import StringEmbedOptions, string_embeddings, token_strings

__all__ = [
    "PROVIDERS", "AuxRequest", "AuxVectors", "BilingualOptions", "StaticOptions", "StringEmbedOptions",
    "bilingual_alignment", "procrustes", "provide_aux", "read_dictd", "static_token_embeddings",
    "string_embeddings", "token_strings",
]
