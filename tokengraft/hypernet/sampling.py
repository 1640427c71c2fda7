"""Tokenizers sampled from text, so the hypernetwork sees many vocabularies in training.

Three kinds, drawn at random (the shares are options):

* ``unigram`` (ZeTT's sampler, METHODS.md section 14): every substring of up to
  ``max_chars`` characters inside a pre-token is scored by frequency x length over a text
  sample, the scores are normalised, Gaussian noise of a random scale is added, and the
  ``vocab_size`` best substrings (plus every byte) become a unigram tokenizer;
* ``bpe``: a byte-level BPE trained on the sample (HF ``tokenizers``), the kind most
  new tokenizers are;
* ``superword``: the unigram sampler whose candidates also include runs of two and three
  whole words, read without the whitespace split, so tokens may span words as SuperBPE's do.

Each sampled tokenizer is byte-level (every text is encodable) and comes with the exact
bytes of each of its ids. The vocabulary size is log-uniform in [``min_vocab``,
``max_vocab``]. Everything random comes from the ``numpy`` generator passed in, so a step
draws the same tokenizer again on resume.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

KINDS = ("unigram", "bpe", "superword")


@dataclass
class SamplerOptions:
    min_vocab: int = 2_000            # smallest sampled vocabulary (bytes included)
    max_vocab: int = 32_000           # largest sampled vocabulary
    sample_bytes: int = 200_000       # text the tokenizer is built from
    shares: tuple[float, float, float] = (0.4, 0.4, 0.2)  # unigram, bpe, superword
    max_chars: int = 16               # longest unigram piece, in byte-level characters
    noise_mean: float = 1e-5          # unigram: median noise scale on normalised scores (ZeTT: 1e-5)
    noise_sigma: float = 4.0          # unigram: log-normal spread of the noise scale (ZeTT: 4)


@dataclass
class SampledTokenizer:
    kind: str
    tokenizer: Any                    # tokenizers.Tokenizer (byte-level, no specials)
    token_bytes: list[bytes]          # (V,) exact bytes of each id

    def encode_batch(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Per text: ids and each id's byte span in the text's UTF-8."""
        out = []
        for text, enc in zip(texts, self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            ids = enc.ids
            spans, pos = [], 0
            for i in ids:
                n = len(self.token_bytes[i])
                spans.append((pos, pos + n))
                pos += n
            out.append((ids, spans))
        return out


def _byte_level_bytes(tokenizer: Any) -> list[bytes]:
    from tokengraft.vocab.alphabet import from_byte_level

    vocab = tokenizer.get_vocab()
    out: list[bytes] = [b""] * (max(vocab.values()) + 1)
    for token, idx in vocab.items():
        data = from_byte_level(token)
        out[idx] = data if data is not None else token.encode("utf-8")
    return out


def _pre_tokenizer(words: bool) -> Any:
    from tokenizers import pre_tokenizers

    if words:
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    # superwords: only line breaks separate pieces, so a token may hold several words
    return pre_tokenizers.Sequence([pre_tokenizers.Split("\n", behavior="isolated"),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def train_bpe(texts: Sequence[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = _pre_tokenizer(True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    return tok


def unigram_pieces(texts: Sequence[str], vocab_size: int, rng: np.random.Generator,
                   options: SamplerOptions, max_words: int = 1) -> list[tuple[str, float]]:
    """ZeTT-style pieces and log scores: substrings by frequency x length, noised, best first.

    ``max_words`` > 1 also counts runs of up to that many consecutive pre-tokens (superwords).
    """
    from tokenizers import pre_tokenizers

    pre = _pre_tokenizer(True)
    words: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    for text in texts:
        split = [w for w, _ in pre.pre_tokenize_str(text)]
        words.update(split)
        for n in range(2, max_words + 1):
            runs.update("".join(split[i:i + n]) for i in range(len(split) - n + 1))
    scores: Counter[str] = Counter()
    for word, count in words.items():
        for i in range(len(word)):
            for j in range(i + 2, min(len(word), i + options.max_chars) + 1):
                scores[word[i:j]] += count * (j - i)
    for run, count in runs.items():
        if count >= 2 and len(run) <= 2 * options.max_chars and "\u010a" not in run:  # never across a line break
            scores[run] += count * len(run)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    total = float(sum(scores.values())) or 1.0
    sigma = float(np.exp(rng.normal(math.log(options.noise_mean), options.noise_sigma)))
    items = list(scores.items())
    noised = np.array([v for _, v in items], dtype=np.float64) / total + rng.normal(0.0, sigma, len(items))
    order = np.argsort(-noised, kind="stable")[: max(0, vocab_size - len(alphabet))]
    floor = math.log(1.0 / total)
    pieces = [(c, floor) for c in sorted(alphabet)]
    pieces += [(items[i][0], math.log(noised[i]) if noised[i] > 0 else floor - 10.0) for i in order.tolist()]
    return pieces


def unigram_tokenizer(pieces: list[tuple[str, float]], words: bool = True) -> Any:
    from tokenizers import Tokenizer, decoders, models

    tok = Tokenizer(models.Unigram(pieces, unk_id=None, byte_fallback=False))
    tok.pre_tokenizer = _pre_tokenizer(words)
    tok.decoder = decoders.ByteLevel()
    return tok


def text_sample(texts: Sequence[str], rng: np.random.Generator, num_bytes: int) -> list[str]:
    """Random documents (whole, the last one cut) until ``num_bytes`` characters."""
    out, used = [], 0
    for i in rng.permutation(len(texts)).tolist():
        text = texts[i][: num_bytes - used]
        out.append(text)
        used += len(text)
        if used >= num_bytes:
            break
    return out


def sample_tokenizer(texts: Sequence[str], rng: np.random.Generator, options: SamplerOptions | None = None,
                     kind: str | None = None) -> SampledTokenizer:
    """A random byte-level tokenizer built from a random sample of ``texts``."""
    options = options or SamplerOptions()
    shares = np.asarray(options.shares, dtype=np.float64)
    kind = kind or KINDS[int(rng.choice(len(KINDS), p=shares / shares.sum()))]
    size = int(math.exp(rng.uniform(math.log(options.min_vocab), math.log(options.max_vocab))))
    sample = text_sample(texts, rng, options.sample_bytes)
    if kind in ("unigram", "superword"):
        words = kind == "unigram"
        tok = unigram_tokenizer(unigram_pieces(sample, size, rng, options, 1 if words else 3), words)
    elif kind == "bpe":
        tok = train_bpe(sample, size)
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    return SampledTokenizer(kind, tok, _byte_level_bytes(tok))
