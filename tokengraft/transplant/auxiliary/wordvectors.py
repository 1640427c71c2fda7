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
    epochs: int = 5         # the reference trains 20 epochs; 5 keeps 2 x 5 MB of text near 2 minutes on 1 core
    min_count: int = 3      # words rarer than this get no vector of their own (n-grams still help)
    minn: int = 3           # character n-gram lengths (fastText's defaults; short subwords need 3)
    maxn: int = 6
    negatives: int = 10


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


def word_rotation(source: Any, target: Any, dictionary: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, int]:
    """(dim, dim) orthogonal map of source word vectors onto target ones, and the number of pairs used.

    Pairs: dictionary entries whose two words both have their own vector, plus words spelled the
    same in both vocabularies. Vectors are unit-normalised before Procrustes.
    """
    src_words, tgt_words = set(source.words), set(target.words)
    pairs = {(s, t) for s, t in dictionary if s in src_words and t in tgt_words}
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
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(aux_old (V_old, dim) rotated onto the target space, aux_new (V_new, dim), facts for the log)."""
    options = options or WordVectorOptions()
    start = time.perf_counter()
    source, target = train_word_vectors(source_texts, options), train_word_vectors(target_texts, options)
    rotation, n_pairs = word_rotation(source, target, dictionary)
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
                      options: WordVectorOptions | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """:func:`wechsel_word_space`, read from / written to the auxiliary cache (keyed by every input)."""
    from tokengraft.transplant.auxiliary.store import cache_file, load_vectors, save_vectors

    options = options or WordVectorOptions()
    key = [repr(options), repr(list(old_bytes)), repr(list(new_bytes)), repr(sorted(dictionary)),
           str(len(source_texts)), *source_texts, "\x00target", *target_texts]
    old_path, new_path = cache_file(cache, "wechsel-old", key), cache_file(cache, "wechsel-new", key)
    if old_path is not None and old_path.exists() and new_path.exists():
        return load_vectors(old_path), load_vectors(new_path), {"cached": True}
    old, new, facts = wechsel_word_space(old_bytes, new_bytes, source_texts, target_texts, dictionary, options)
    if old_path is not None:
        save_vectors(old_path, old)
        save_vectors(new_path, new)
    return old, new, facts
