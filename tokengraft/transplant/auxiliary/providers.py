"""Compute the auxiliary vectors a method declares with ``needs=("aux", ...)``.

The orchestrator fills an :class:`AuxRequest` and calls ``provide_aux(method_name, request)``;
the returned :class:`AuxVectors` go into ``InitProblem.aux_new`` / ``aux_old`` / ``extras``.
Providers may load models and read corpora; the methods stay pure tensor functions.

| method       | aux_new (V_new, a)                                 | aux_old (V_old, a)                      |
|--------------|----------------------------------------------------|-----------------------------------------|
| focus        | static token vectors of target text, new tokenizer | None                                    |
| tokenadapt   | embedder(new token strings), 384-d for minilm-l6   | embedder(old token strings)             |
| graft        | as tokenadapt                                      | as tokenadapt                           |
| wechsel      | static vectors of target text, new tokenizer       | static vectors of source text, old tokenizer, rotated onto aux_new |
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.bilingual import BilingualOptions, bilingual_alignment, load_dictionary
from tokengraft.transplant.auxiliary.static import StaticOptions, encode_texts, static_embeddings_from_ids
from tokengraft.transplant.auxiliary.store import cache_file, load_vectors, save_vectors
from tokengraft.transplant.auxiliary.strings import StringEmbedOptions, load_embedder, string_embeddings, token_strings

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "minilm-l6"
DEFAULT_SOURCE_CORPUS = "libreoffice:en:train"


@dataclass
class AuxRequest:
    old_bytes: list[bytes | None]               # (V_old) exact bytes of each old token
    new_bytes: list[bytes | None]               # (V_new) exact bytes of each new token
    old_tokenizer: Any = None                   # needed by wechsel
    new_tokenizer: Any = None                   # needed by focus and wechsel
    target_texts: Sequence[str] | None = None   # --corpus: target-language text (focus, wechsel)
    source_texts: Sequence[str] | None = None   # source-language text (wechsel); None = DEFAULT_SOURCE_CORPUS
    embedder: str | None = None                 # --aux: sentence embedder (tokenadapt); None = DEFAULT_EMBEDDER
    source_language: str = "en"                 # ISO 639-1, picks the bilingual dictionary (wechsel)
    target_language: str | None = None          # ISO 639-1; None = no dictionary, identical-string seeds
    static: StaticOptions = field(default_factory=StaticOptions)
    strings: StringEmbedOptions = field(default_factory=StringEmbedOptions)
    bilingual: BilingualOptions = field(default_factory=BilingualOptions)
    cache: str | None = None                    # folder for cached vectors; None = cache_dir("aux"); "" = off


@dataclass
class AuxVectors:
    new: torch.Tensor | None                    # -> InitProblem.aux_new
    old: torch.Tensor | None                    # -> InitProblem.aux_old
    extras: dict[str, Any] = field(default_factory=dict)  # -> InitProblem.extras (timings, counts)


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
    path = cache_file(cache, "static", [_tokenizer_key(tokenizer), repr(options), str(vocab_size), *texts])
    if path is not None and path.exists():
        return load_vectors(path)
    start = time.perf_counter()
    vectors = static_embeddings_from_ids(encode_texts(tokenizer, texts), vocab_size, options)
    log.info("static token embeddings: %d texts, %d tokens, %.1f s", len(texts), vocab_size, time.perf_counter() - start)
    if path is not None:
        save_vectors(path, vectors)
    return vectors


def focus_aux(request: AuxRequest) -> AuxVectors:
    """FOCUS: static token embeddings of the target text under the new tokenizer."""
    texts = _need(request.target_texts, "focus", "a target-language --corpus")
    tokenizer = _need(request.new_tokenizer, "focus", "the new tokenizer")
    vectors = static_token_embeddings(tokenizer, texts, request.static, len(request.new_bytes), request.cache)
    return AuxVectors(new=vectors, old=None, extras={"aux_dim": vectors.shape[1]})


def tokenadapt_aux(request: AuxRequest) -> AuxVectors:
    """TokenAdapt: new and old token strings through a sentence embedder (default minilm-l6)."""
    spec = request.embedder or DEFAULT_EMBEDDER
    options = request.strings if request.cache is None else replace(request.strings, cache=request.cache)
    loaded: list[tuple[Any, Any]] = []

    def loader() -> tuple[Any, Any]:  # load the embedder once, and only on a cache miss
        if not loaded:
            loaded.append(load_embedder(spec, options.device))
        return loaded[0]

    old_strings, new_strings = token_strings(request.old_bytes), token_strings(request.new_bytes)
    old = string_embeddings(spec, old_strings, options, loader)
    # strings the old vocabulary already has (the overlap, case and space variants) are not embedded again
    known = {s: i for i, s in enumerate(old_strings) if s}
    missing = sorted({s for s in new_strings if s and s not in known})
    fresh = string_embeddings(spec, missing, options, loader) if missing else old.new_zeros(0, old.shape[1])
    where = {s: len(old_strings) + i for i, s in enumerate(missing)}
    table = torch.cat([old, fresh, old.new_zeros(1, old.shape[1])])  # last row: "no vector"
    new = table[torch.tensor([known.get(s, where.get(s, table.shape[0] - 1)) for s in new_strings], dtype=torch.long)]
    return AuxVectors(new=new, old=old, extras={"embedder": spec})


def wechsel_aux(request: AuxRequest) -> AuxVectors:
    """WECHSEL: source (old tokenizer) and target (new tokenizer) static vectors, aligned."""
    target = _need(request.target_texts, "wechsel", "a target-language --corpus")
    source = request.source_texts
    if source is None:
        from tokengraft.assets import load_corpus

        source = load_corpus(DEFAULT_SOURCE_CORPUS).texts()
    dictionary = None  # seed_pairs="identical" asks for no dictionary; otherwise one must exist
    if request.bilingual.seed_pairs != "identical":
        dictionary = load_dictionary(request.source_language, request.target_language)
        log.info("wechsel: %d word pairs (%s -> %s)", len(dictionary), request.source_language, request.target_language)
    if request.bilingual.space == "words":  # the paper's space: aligned word vectors -> token vectors
        from tokengraft.transplant.auxiliary.wordvectors import cached_word_space

        old, new, facts = cached_word_space(request.old_bytes, request.new_bytes, source, target, dictionary or [],
                                            request.cache)
        return AuxVectors(new=new, old=old, extras={"dictionary_pairs": len(dictionary or []), **facts})
    old_tokenizer = _need(request.old_tokenizer, "wechsel", "the old tokenizer")
    new_tokenizer = _need(request.new_tokenizer, "wechsel", "the new tokenizer")
    old_vectors = static_token_embeddings(old_tokenizer, source, request.static, len(request.old_bytes), request.cache)
    new_vectors = static_token_embeddings(new_tokenizer, target, request.static, len(request.new_bytes), request.cache)
    old, new = bilingual_alignment(old_vectors, new_vectors, request.old_bytes, request.new_bytes,
                                   dictionary, request.bilingual)
    return AuxVectors(new=new, old=old, extras={"dictionary_pairs": len(dictionary or [])})


PROVIDERS: dict[str, Callable[[AuxRequest], AuxVectors]] = {
    "focus": focus_aux,
    "tokenadapt": tokenadapt_aux,
    "graft": tokenadapt_aux,  # its semantic estimate is TokenAdapt's
    "wechsel": wechsel_aux,
}


def provide_aux(method: str, request: AuxRequest) -> AuxVectors:
    """Auxiliary vectors for ``method`` (a name in :data:`PROVIDERS`)."""
    if method not in PROVIDERS:
        raise TokengraftError(f"no auxiliary-vector provider for method {method!r}; known: {sorted(PROVIDERS)}")
    return PROVIDERS[method](request)


def _need(value: Any, method: str, what: str) -> Any:
    if value is None:
        raise TokengraftError(f"method {method} needs {what}; pass it (e.g. --corpus libreoffice:fr:train)")
    return value


def _vocab_size(tokenizer: Any) -> int:
    if hasattr(tokenizer, "get_vocab_size"):
        return tokenizer.get_vocab_size(with_added_tokens=True)
    return len(tokenizer)


def _tokenizer_key(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return backend.to_str() if hasattr(backend, "to_str") else repr(sorted(tokenizer.get_vocab().items()))
