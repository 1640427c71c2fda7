"""The built-in auxiliary providers (registered by provider name; see :mod:`.registry`).

| provider     | reads                         | gives                                                           |
|--------------|-------------------------------|-----------------------------------------------------------------|
| strings      | --aux embedder (minilm-l6)    | aux_new/aux_old: embedder(new / old token strings), 384-d for minilm-l6 |
| static       | the whole corpus              | aux_new: static token vectors of the target text, new tokenizer |
| bilingual    | the whole corpus              | aux_new/aux_old: static vectors of target (new tokenizer) and source text (old tokenizer), aligned |
| continuation | the corpus's first MB, the base model | extras["continuation"]: c_t of each new token (graft)  |

``tokenadapt`` and ``graft`` use ``strings``, ``focus`` uses ``static``, ``wechsel`` uses
``bilingual``, ``omp`` without a donor uses ``strings``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Sequence

import torch

from tokengraft.transplant.auxiliary.bilingual import bilingual_alignment, load_dictionary
from tokengraft.transplant.auxiliary.continuation import ContinuationOptions, continuation
from tokengraft.transplant.auxiliary.registry import AuxRequest, AuxVectors, need, provider
from tokengraft.transplant.auxiliary.static import (StaticOptions, encode_texts, static_embeddings_from_ids,
                                                   tokenizer_key)
from tokengraft.transplant.auxiliary.store import cache_file, load_vectors, save_vectors
from tokengraft.transplant.auxiliary.strings import token_strings, vocabulary_vectors

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "minilm-l6"
DEFAULT_SOURCE_CORPUS = "libreoffice:en:train"
# An old token spans far fewer bytes than this: the corpus bytes that hold `prefix_tokens` tokens.
MAX_TOKEN_BYTES = 256


def static_token_embeddings(
    tokenizer: Any, texts: Sequence[str], options: StaticOptions | None = None,
    vocab_size: int | None = None, cache: str | None = None,
) -> torch.Tensor:
    """(V, dim) static vectors of ``tokenizer``'s tokens learned from ``texts`` (FOCUS's aux space).

    Zero rows for tokens seen fewer than ``options.min_count`` times. Cached by the tokenizer's
    serialised form, the texts and the options.
    """
    options = options or StaticOptions()
    vocab_size = vocab_size or _vocab_size(tokenizer)
    path = cache_file(cache, "static", [tokenizer_key(tokenizer), repr(options), str(vocab_size), *texts])
    if path is not None and path.exists():
        return load_vectors(path)
    start = time.perf_counter()
    vectors = static_embeddings_from_ids(encode_texts(tokenizer, texts), vocab_size, options)
    logger.info("static token embeddings: %d texts, %d tokens, %.1f s", len(texts), vocab_size, time.perf_counter() - start)
    if path is not None:
        save_vectors(path, vectors)
    return vectors


@provider("static", corpus="required", summary="static token vectors of the target text under the new tokenizer")
def static_aux(request: AuxRequest, options: None) -> AuxVectors:
    """FOCUS's space: static token embeddings of the target text under the new tokenizer."""
    texts = need(request.target_texts, "static", "a target-language --corpus")
    tokenizer = need(request.new_tokenizer, "static", "the new tokenizer")
    vectors = static_token_embeddings(tokenizer, texts, request.static, len(request.new_bytes), request.cache)
    return AuxVectors(new=vectors, old=None, extras={"aux_dim": vectors.shape[1]})


@provider("strings", embedder=True, summary="new and old token strings through a sentence embedder (--aux)")
def strings_aux(request: AuxRequest, options: None) -> AuxVectors:
    """TokenAdapt's space: new and old token strings through a sentence embedder (default minilm-l6)."""
    spec = request.embedder or DEFAULT_EMBEDDER
    settings = request.strings if request.cache is None else replace(request.strings, cache=request.cache)
    new, old = vocabulary_vectors(spec, token_strings(request.old_bytes), token_strings(request.new_bytes), settings)
    return AuxVectors(new=new, old=old, extras={"embedder": spec})


@provider("bilingual", corpus="required",
          summary="static vectors of source and target text, aligned by a dictionary (WECHSEL's space)")
def bilingual_aux(request: AuxRequest, options: None) -> AuxVectors:
    """WECHSEL: source (old tokenizer) and target (new tokenizer) static vectors, aligned."""
    target = need(request.target_texts, "bilingual", "a target-language --corpus")
    source = request.source_texts
    if source is None:
        from tokengraft.assets import load_corpus

        source = load_corpus(DEFAULT_SOURCE_CORPUS).texts()
    dictionary = None  # seed_pairs="identical" asks for no dictionary; otherwise one must exist
    if request.bilingual.seed_pairs != "identical":
        dictionary = load_dictionary(request.source_language, request.target_language)
        logger.info("wechsel: %d word pairs (%s -> %s)", len(dictionary), request.source_language,
                    request.target_language)
    if request.bilingual.space == "words":  # the paper's space: aligned word vectors -> token vectors
        from tokengraft.transplant.auxiliary.wordvectors import cached_word_space

        old, new, facts = cached_word_space(request.old_bytes, request.new_bytes, source, target, dictionary or [],
                                            request.cache, tokenizers=(request.old_tokenizer, request.new_tokenizer))
        return AuxVectors(new=new, old=old, extras={"dictionary_pairs": len(dictionary or []), **facts})
    old_tokenizer = need(request.old_tokenizer, "bilingual", "the old tokenizer")
    new_tokenizer = need(request.new_tokenizer, "bilingual", "the new tokenizer")
    old_vectors = static_token_embeddings(old_tokenizer, source, request.static, len(request.old_bytes), request.cache)
    new_vectors = static_token_embeddings(new_tokenizer, target, request.static, len(request.new_bytes), request.cache)
    old, new = bilingual_alignment(old_vectors, new_vectors, request.old_bytes, request.new_bytes,
                                   dictionary, request.bilingual)
    return AuxVectors(new=new, old=old, extras={"dictionary_pairs": len(dictionary or [])})


@provider("continuation", options=ContinuationOptions, corpus="optional", model=True,
          corpus_bytes=lambda o: max(o.prefix_tokens * MAX_TOKEN_BYTES, o.rank_bytes if o.order == "frequency" else 0),
          summary="the base model's log-probability of each new token's pieces after the first (graft)")
def continuation_aux(request: AuxRequest, options: ContinuationOptions) -> AuxVectors:
    """``extras["continuation"]``: see :mod:`tokengraft.transplant.auxiliary.continuation`."""
    model = need(request.model, "continuation", "the base model")
    pieces = need(request.pieces, "continuation", "the correspondence")
    measured = continuation(model, need(request.old_tokenizer, "continuation", "the old tokenizer"), pieces,
                            need(request.copied, "continuation", "the correspondence"), request.target_texts, options,
                            new_tok=request.new_tokenizer)
    return AuxVectors(new=None, old=None, extras={"continuation": measured})


def _vocab_size(tokenizer: Any) -> int:
    if hasattr(tokenizer, "get_vocab_size"):
        return tokenizer.get_vocab_size(with_added_tokens=True)
    return len(tokenizer)
