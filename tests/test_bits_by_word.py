"""benchmarks/bits_by_word.py: token bits spread over bytes, and byte classes of multi-byte text."""
import collections
import importlib.util
from pathlib import Path

import pytest
import torch

spec = importlib.util.spec_from_file_location("bits_by_word", Path(__file__).parent.parent / "benchmarks" / "bits_by_word.py")
bw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bw)


def test_spread_bits_keeps_the_total_and_gives_each_byte_its_share():
    out = bw.spread_bits(5, [(0, 2), (2, 2), (2, 5)], [4.0, 1.0, 3.0])
    assert out.tolist() == [2.0, 3.0, 1.0, 1.0, 1.0]
    assert out.sum().item() == pytest.approx(8.0)


def test_byte_classes_cover_every_utf8_byte_of_umlauts():
    counts = collections.Counter({"ab": 150})
    names, index = bw.byte_classes("Größe 12 -- ab", lambda w: bw.word_class(w, counts))
    assert len(index) == len("Größe 12 -- ab".encode())
    spans = {n: int((index == k).sum()) for k, n in enumerate(names)}
    assert spans == {"word unseen": 7, "space": 3, "digits": 2, "punct": 2, "word 100+": 2}
    assert torch.equal(index[:7], torch.full((7,), names.index("word unseen")))


class _Chars:
    """A tokenizer that spends one token per character (a leading space joins the first)."""

    def encode(self, text, add_special_tokens=False):
        return [0] * len(text.lstrip())


class _Known:
    """A tokenizer with whole tokens for " License" and " ab", else one token per character."""

    def encode(self, text, add_special_tokens=False):
        return [0] if text in (" License", " ab") else [0] * len(text.lstrip())


def test_piece_class_compares_the_new_tokenizers_count_with_the_references():
    ref, new = _Known(), _Chars()
    assert bw.piece_class("License", ref, new) == "word split more"   # 7 tokens against 1
    assert bw.piece_class("xy", ref, new) == "word split same"        # 2 against 2
    assert bw.piece_class("xy", _Chars(), _Known()) == "word split same"
    assert bw.piece_class("ab", _Chars(), _Known()) == "word split less"  # 1 against 2
    assert [bw.piece_class(w, ref, new) for w in ("  ", "42", "--")] == ["space", "digits", "punct"]


def test_continuation_bits_keep_only_tokens_that_start_inside_a_word():
    text = " License ab"                                   # " L" "ic" "en" "se" " ab"
    spans, bits = [(0, 2), (2, 4), (4, 6), (6, 8), (8, 11)], [5.0, 2.0, 1.0, 1.0, 3.0]
    inner = bw.inner_bytes(text)
    assert inner.tolist() == [False, False] + [True] * 6 + [False, False, True]
    cont = bw.continuation_bits(len(text), spans, bits, inner)
    assert cont.sum().item() == pytest.approx(4.0)            # "ic" "en" "se"; not " L", not " ab"
    assert cont[:2].tolist() == [0.0, 0.0] and cont[8:].tolist() == [0.0, 0.0, 0.0]
    assert bw.spread_bits(len(text), spans, bits).sum().item() == pytest.approx(12.0)
