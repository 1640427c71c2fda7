"""WECHSEL's word-vector space: fastText words, Procrustes on dictionary + identical strings, token vectors."""
from __future__ import annotations

import random

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.wordvectors import (
    WordVectorOptions, case_variants, train_word_vectors, wechsel_word_space, word_rotation, word_vectors_of_tokens,
)

SMALL = WordVectorOptions(dim=16, epochs=30, min_count=2)


def parallel_texts(seed: int = 0) -> tuple[list[str], list[str], dict[str, str]]:
    """A source language of 16 words with a Markov grammar and its word-by-word translation."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    src = ["".join(rng.choice(letters) for _ in range(6)) for _ in range(16)]
    tgt = ["".join(rng.choice(letters) for _ in range(6)) for _ in range(16)]
    lexicon = dict(zip(src, tgt))
    follow = {w: rng.sample(src, 3) for w in src}
    source, target = [], []
    for _ in range(600):
        w = rng.choice(src)
        sentence = [w]
        for _ in range(9):
            w = rng.choice(follow[w])
            sentence.append(w)
        source.append(" ".join(sentence))
        target.append(" ".join(lexicon[w] for w in sentence))
    return source, target, lexicon


class FakeWords:
    """The part of a fastText model the alignment reads: words and their vectors."""

    def __init__(self, vectors: dict[str, torch.Tensor]):
        self.vectors = vectors
        self.words = list(vectors)

    def get_word_vector(self, word: str):
        return self.vectors.get(word, torch.zeros(4)).numpy()

    def get_dimension(self) -> int:
        return 4

    def get_words(self, include_freq: bool = False, on_unicode_error: str = "strict"):
        return self.words, [self.freqs[w] for w in self.words]


class CharTokenizer:
    """One token per character: a=0, b=1, space=2 (id 3 is never produced)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return ["ab ".index(c) for c in text]


def test_rotation_recovers_a_planted_map_from_dictionary_and_identical_words():
    gen = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen))
    src = {f"w{i}": torch.randn(4, generator=gen) for i in range(10)}
    src["Paris"] = torch.randn(4, generator=gen)
    tgt = {f"v{i}": src[f"w{i}"] @ rotation for i in range(10)}
    tgt["Paris"] = src["Paris"] @ rotation
    learned, pairs = word_rotation(FakeWords(src), FakeWords(tgt), [("w0", "v0"), ("w1", "v1"), ("w2", "v2"),
                                                                   ("w3", "v3"), ("nope", "v9")], False)
    assert pairs == 5                                   # 4 dictionary pairs with vectors + "Paris"
    torch.testing.assert_close(learned, rotation, atol=1e-4, rtol=0)
    for i in range(4, 10):                              # held-out words land on their translations
        torch.testing.assert_close(src[f"w{i}"] @ learned, tgt[f"v{i}"], atol=1e-4, rtol=0)


def test_word_space_shapes_and_rows_without_a_string():
    source, target, lexicon = parallel_texts()
    words = sorted(lexicon)
    old_bytes = [(" " + w).encode() for w in words] + [None]
    new_bytes = [(" " + lexicon[w]).encode() for w in words] + [b"\xff"]
    old, new, facts = wechsel_word_space(old_bytes, new_bytes, source, target, list(lexicon.items()), SMALL)
    assert old.shape == (17, 16) and new.shape == (17, 16)
    assert old[16].abs().sum() == 0 and new[16].abs().sum() == 0      # no string, no vector
    assert bool((old[:16].abs().sum(1) > 0).all()) and facts["word_pairs"] == 16


def test_too_few_pairs_and_empty_text_are_errors():
    source, target, _ = parallel_texts()
    with pytest.raises(TokengraftError, match="translation pairs"):
        wechsel_word_space([b"a"], [b"b"], source, target, [], SMALL)
    with pytest.raises(TokengraftError, match="empty"):
        train_word_vectors(["", "  "], SMALL)


def test_dictionary_case_forms_add_pairs_only_when_asked():
    assert case_variants("Paris") == {"Paris", "paris"} and case_variants("EU") == {"EU", "eu", "Eu"}
    gen = torch.Generator().manual_seed(1)
    src = {w: torch.randn(4, generator=gen) for w in ("house", "dog", "cat", "Tree")}
    tgt = {w: torch.randn(4, generator=gen) for w in ("Haus", "Hund", "Katze", "baum")}
    lexicon = [("house", "Haus"), ("dog", "Hund"), ("cat", "Katze"), ("tree", "Baum")]
    assert word_rotation(FakeWords(src), FakeWords(tgt), lexicon, False)[1] == 3
    assert word_rotation(FakeWords(src), FakeWords(tgt), lexicon, True)[1] == 4   # + (Tree, baum)


def test_token_vectors_from_the_words_that_contain_the_token():
    words = FakeWords({"ab": torch.tensor([1.0, 0, 0, 0]), "b": torch.tensor([0, 1.0, 0, 0])})
    words.freqs = {"ab": 3, "b": 1}
    vectors = word_vectors_of_tokens(words, CharTokenizer(), 4)
    torch.testing.assert_close(vectors[0], torch.tensor([1.0, 0, 0, 0]))          # a: only in "ab"
    torch.testing.assert_close(vectors[1], torch.tensor([0.75, 0.25, 0, 0]))      # b: "ab" x3, "b" x1
    torch.testing.assert_close(vectors[2], torch.tensor([0.75, 0.25, 0, 0]))      # space: " ab", " b"
    assert vectors[3].abs().sum() == 0                                            # in no word: no vector
    with pytest.raises(TokengraftError, match="tokenizers"):
        wechsel_word_space([b"a"], [b"b"], ["a b"], ["a b"], [], WordVectorOptions(token_vectors="words"))
