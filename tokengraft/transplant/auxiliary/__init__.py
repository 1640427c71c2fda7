"""Auxiliary providers: what a method reads besides the old matrix, by provider name.

These may load models and read corpora; the methods in ``tokengraft.transplant.methods``
stay pure tensor functions. Importing this package registers the built-in providers
(:mod:`.providers`) in :data:`PROVIDERS`; the input plan (:mod:`tokengraft.transplant.plan`)
picks the ones a method's ``Needs`` names, and the orchestrator runs them once.
"""
from __future__ import annotations

from tokengraft.transplant.auxiliary import hypernet as _hypernet  # noqa: F401  registers the hypernet provider
from tokengraft.transplant.auxiliary import parallel as _parallel  # noqa: F401  registers the parallel provider
from tokengraft.transplant.auxiliary import providers as _providers  # noqa: F401  registers the built-in providers
from tokengraft.transplant.auxiliary import vocab_strings as _vocab_strings  # noqa: F401  registers vocab-strings
from tokengraft.transplant.auxiliary.bilingual import BilingualOptions, bilingual_alignment, procrustes, read_dictd
from tokengraft.transplant.auxiliary.providers import static_token_embeddings
from tokengraft.transplant.auxiliary.registry import (
    PROVIDERS, AuxRequest, AuxVectors, Provider, get_provider, provide_aux, provider,
)
from tokengraft.transplant.auxiliary.static import StaticOptions
from tokengraft.transplant.auxiliary.strings import StringEmbedOptions, string_embeddings, token_strings

__all__ = [
    "PROVIDERS", "AuxRequest", "AuxVectors", "BilingualOptions", "Provider", "StaticOptions", "StringEmbedOptions",
    "bilingual_alignment", "get_provider", "procrustes", "provide_aux", "provider", "read_dictd",
    "static_token_embeddings", "string_embeddings", "token_strings",
]
