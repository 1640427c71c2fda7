"""WECHSEL's space as in the paper: static WORD vectors of both languages, aligned, then token vectors.

Minixhofer et al. (NAACL 2022; CPJKU/wechsel) embed tokens in a space of word vectors:

1. fastText word vectors for the source and the target language (the paper uses Common Crawl
   vectors; none exist offline, so both are trained here with fastText CBOW on the given text:
   the source text defaults to the same LibreOffice pages in English);
2. the source space is rotated onto the target space by orthogonal Procrustes on translation
   pairs: the bilingual dictionary's word pairs present in both vocabularies, plus identical
   strings (names, numbers, shared words);
3. a token's vector is the word model's vector of the token's string without its leading space
   (fastText composes it from character n-grams, so subwords get vectors too; the reference's
   ``use_subword_info=True``); old tokens use the source model, new tokens the target model.

The result, (aux_old rotated, aux_new), feeds :mod:`tokengraft.transplant.methods.wechsel`.
Tokens whose string yields no vector (specials, bytes that are not UTF-8, strings without any
n-gram the model knows) get zero rows: "no vector", which the method fills with FVT's rows.

Defaults chosen on libreoffice:fr:dev (text :fit, 30,000 bytes, SmolLM2-135M -> 32k French BPE,
WECHSEL's plain cosine neighbours): 5 epochs, exact dictionary words 1.973 BPB; 20 epochs (the
reference's ``train_embeddings``) with the dictionary's lower/title-case forms (the reference's
matching; 9,156 pairs instead of 6,387) 1.8825; the same with the reference's n-grams of length 5
only 1.9094; ``token_vectors="words"`` (5 epochs) 1.9798.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.bilingual import procrustes

logger = logging.getLogger(__name__)

_WORDS = re.compile(r"\w+|[^\w\s]+")


@dataclass
class WordVectorOptions:
    dim: int = 100          # the reference's own fastText training: dim 100, CBOW, 10 negatives
    epochs: int = 20        # the reference's own training (~150 s for 2 x 5 MB on 1 core); see the module doc
    min_count: int = 3      # words rarer than this get no vector of their own (n-grams still help)
    minn: int = 3           # character n-gram lengths (fastText's defaults; short subwords need 3)
    maxn: int = 6
    negatives: int = 10
    token_vectors: str = "subwords"  # "subwords": the token string's fastText vector (n-grams; the paper's
    #   default use_subword_info=True) | "words": frequency-weighted mean of the vectors of the words whose
    #   tokenization holds the token (the paper's use_subword_info=False; needs the tokenizers)
    dictionary_case: bool = True  # also pair lower-case and title-case forms of dictionary words (as the reference)


def train_word_vectors(texts: Sequence[str], options: WordVectorOptions) -> Any:
    """A fastText CBOW word model of ``texts`` (split into words and punctuation), one thread."""
    try:
        import fasttext
    except ImportError as exc:
        raise TokengraftError("wechsel's word vectors need fastText: pip install fasttext-wheel") from exc
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "words.txt")
        with open(path, "w", encoding="utf-8") as f:
            for text in texts:
                for line in text.split("\n"):
                    words = _WORDS.findall(line)
                    if words:
                        f.write(" ".join(words) + "\n")
        if os.path.getsize(path) == 0:
            raise TokengraftError("wechsel: the text for word vectors is empty")
        return fasttext.train_unsupervised(
            path, model="cbow", dim=options.dim, epoch=options.epochs, minCount=options.min_count,
            minn=options.minn, maxn=options.maxn, neg=options.negatives, thread=1, verbose=0)


def token_vectors(model: Any, tokens: Sequence[bytes | None]) -> torch.Tensor:
    """(V, dim): the word model's vector of each token's string, leading/trailing space stripped."""
    out = torch.zeros(len(tokens), model.get_dimension())
    for i, data in enumerate(tokens):
        if not data:
            continue
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if text:
            out[i] = torch.from_numpy(model.get_word_vector(text).copy())
    return out


def word_vectors_of_tokens(model: Any, tokenizer: Any, size: int) -> torch.Tensor:
    """(size, dim): per token, the frequency-weighted mean vector of the model's words whose
    tokenization (alone and after a space) contains the token; zero rows for tokens in no word."""
    from tokengraft.transplant.auxiliary.static import encode_texts

    words, freqs = model.get_words(include_freq=True, on_unicode_error="ignore")
    keep = [i for i, w in enumerate(words) if w != "</s>"]
    encoded = encode_texts(tokenizer, [words[i] for i in keep] + [" " + words[i] for i in keep])
    vectors = torch.stack([torch.from_numpy(model.get_word_vector(words[i]).copy()) for i in keep])
    total, weight = torch.zeros(size, vectors.shape[1], dtype=torch.float64), torch.zeros(size, dtype=torch.float64)
    for row, ids in enumerate(encoded):
        word = row % len(keep)
        tokens = torch.tensor(sorted({t for t in ids if t < size}), dtype=torch.long)
        if tokens.numel():
            f = float(freqs[keep[word]])
            total.index_add_(0, tokens, f * vectors[word].double().expand(tokens.numel(), -1))
            weight.index_add_(0, tokens, torch.full((tokens.numel(),), f, dtype=torch.float64))
    return (total / weight.clamp_min(1e-30).unsqueeze(1)).float()


def case_variants(word: str) -> set[str]:
    """The word, lower-cased and title-cased: ``case_variants("Paris") == {"Paris", "paris"}``."""
    return {word, word.lower(), word.title()}


def word_rotation(source: Any, target: Any, dictionary: Sequence[tuple[str, str]],
                  dictionary_case: bool) -> tuple[torch.Tensor, int]:
    """(dim, dim) orthogonal map of source word vectors onto target ones, and the number of pairs used.

    Pairs: dictionary entries whose two words both have their own vector (with ``dictionary_case``,
    any of their lower/title-case forms, as the reference does), plus words spelled the same in
    both vocabularies. Vectors are unit-normalised before Procrustes.
    """
    src_words, tgt_words = set(source.words), set(target.words)
    variants = case_variants if dictionary_case else (lambda w: {w})
    pairs = {(s2, t2) for s, t in dictionary for s2 in variants(s) for t2 in variants(t)
             if s2 in src_words and t2 in tgt_words}
    pairs |= {(w, w) for w in src_words & tgt_words if w != "</s>"}
    if len(pairs) < 2:
        raise TokengraftError(f"wechsel: only {len(pairs)} translation pairs have word vectors on both sides;"
                              " give more text or a larger dictionary")
    ordered = sorted(pairs)
    x = torch.stack([torch.from_numpy(source.get_word_vector(s).copy()) for s, _ in ordered])
    y = torch.stack([torch.from_numpy(target.get_word_vector(t).copy()) for _, t in ordered])
    x = torch.nn.functional.normalize(x, dim=1)
    y = torch.nn.functional.normalize(y, dim=1)
    return procrustes(x, y), len(ordered)


def wechsel_word_space(
    old_bytes: Sequence[bytes | None], new_bytes: Sequence[bytes | None], source_texts: Sequence[str],
    target_texts: Sequence[str], dictionary: Sequence[tuple[str, str]], options: WordVectorOptions | None = None,
    tokenizers: tuple[Any, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(aux_old (V_old, dim) rotated onto the target space, aux_new (V_new, dim), facts for the log).

    ``tokenizers`` (old, new) are needed for ``token_vectors="words"`` only.
    """
    options = options or WordVectorOptions()
    if options.token_vectors not in ("subwords", "words"):
        raise TokengraftError(f"unknown token_vectors {options.token_vectors!r}; choose subwords or words")
    if options.token_vectors == "words" and tokenizers is None:
        raise TokengraftError("wechsel token_vectors='words' needs the old and new tokenizers")
    start = time.perf_counter()
    source, target = train_word_vectors(source_texts, options), train_word_vectors(target_texts, options)
    rotation, n_pairs = word_rotation(source, target, dictionary, options.dictionary_case)
    if options.token_vectors == "words":
        old = word_vectors_of_tokens(source, tokenizers[0], len(old_bytes)) @ rotation
        new = word_vectors_of_tokens(target, tokenizers[1], len(new_bytes))
    else:
        old = token_vectors(source, old_bytes) @ rotation
        new = token_vectors(target, new_bytes)
    facts = {"word_pairs": n_pairs, "source_words": len(source.words), "target_words": len(target.words),
             "seconds": round(time.perf_counter() - start, 1)}
    logger.info("wechsel word space: %(source_words)d / %(target_words)d words, %(word_pairs)d translation pairs,"
             " %(seconds).1f s", facts)
    return old, new, facts


def cached_word_space(old_bytes: Sequence[bytes | None], new_bytes: Sequence[bytes | None],
                      source_texts: Sequence[str], target_texts: Sequence[str],
                      dictionary: Sequence[tuple[str, str]], cache: str | None,
                      options: WordVectorOptions | None = None,
                      tokenizers: tuple[Any, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """:func:`wechsel_word_space`, read from / written to the auxiliary cache (keyed by every input)."""
    from tokengraft.transplant.auxiliary.store import cache_file, load_vectors, save_vectors

    options = options or WordVectorOptions()
    key = [repr(options), repr(list(old_bytes)), repr(list(new_bytes)), repr(sorted(dictionary)),
           str(len(source_texts)), *source_texts, "\x00target", *target_texts]
    if options.token_vectors == "words" and tokenizers is not None:  # tokenizations matter, not only vocabularies
        from tokengraft.transplant.auxiliary.static import tokenizer_key

        key += ["\x00tokenizers", *map(tokenizer_key, tokenizers)]
    old_path, new_path = cache_file(cache, "wechsel-old", key), cache_file(cache, "wechsel-new", key)
    if old_path is not None and old_path.exists() and new_path.exists():
        return load_vectors(old_path), load_vectors(new_path), {"cached": True}
    old, new, facts = wechsel_word_space(old_bytes, new_bytes, source_texts, target_texts, dictionary, options,
                                         tokenizers)
    if old_path is not None:
        save_vectors(old_path, old)
        save_vectors(new_path, new)
    return old, new, facts
