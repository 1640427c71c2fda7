"""Resolve model, tokenizer and corpus specs to real artifacts, offline.

A spec is a local path, a hub id (only for models/tokenizers, only where a hub is
reachable), or a built-in name backed by a package that ``scripts/setup.sh`` installs.
Nothing here installs anything or touches the network for a built-in name.
"""
from __future__ import annotations

from tokengraft.assets.corpus import Corpus, Document
from tokengraft.assets.corpora import BUILTIN_CORPORA, load_corpora, load_corpus
from tokengraft.assets.models import BUILTIN_MODELS, load_model, model_folder
from tokengraft.assets.tokenizers import BUILTIN_TOKENIZERS, load_tokenizer

__all__ = [
    "BUILTIN_CORPORA", "BUILTIN_MODELS", "BUILTIN_TOKENIZERS", "Corpus", "Document",
    "load_corpora", "load_corpus", "load_model", "load_tokenizer", "model_folder",
]
