"""ALM chunk alignment is exact: both sides' chunks cover the same bytes."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokengraft.heal.alignment import align_doc, chunk_spans, common_boundaries, next_window, token_ends
from tokengraft.heal.tokens import lengths_if_exact

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "60"))


def chunk_bytes(tokens: list[bytes], a: int, b: int) -> bytes:
    return b"".join(tokens[a:b])


def test_multibyte_character_split_across_byte_tokens():
    # "né🦊": n | c3 | a9 | f0 9f | a6 8a  vs  n c3 | a9 f0 9f a6 8a
    student = [b"n", b"\xc3", b"\xa9", b"\xf0\x9f", b"\xa6\x8a"]
    teacher = [b"n\xc3", b"\xa9\xf0\x9f\xa6\x8a"]
    doc = align_doc(range(5), [len(t) for t in student], range(2), [len(t) for t in teacher])
    assert doc.bounds.tolist() == [[0, 0], [2, 1], [5, 2]]
    chunks = chunk_spans(doc.bounds)
    assert chunks == [(0, 2, 0, 1), (2, 5, 1, 2)]
    for s0, s1, t0, t1 in chunks:
        assert chunk_bytes(student, s0, s1) == chunk_bytes(teacher, t0, t1)


def test_hand_made_words_with_different_segmentations():
    text = "Grüße, café!".encode("utf-8")
    student = [b"Gr", b"\xc3", b"\xbc", b"\xc3\x9f", b"e", b",", b" caf", b"\xc3\xa9", b"!"]
    teacher = [b"Gr\xc3\xbc", b"\xc3\x9fe,", b" ca", b"f\xc3", b"\xa9!"]
    assert b"".join(student) == b"".join(teacher) == text
    doc = align_doc(range(len(student)), [len(t) for t in student], range(len(teacher)), [len(t) for t in teacher])
    chunks = chunk_spans(doc.bounds)
    # Shared ends: "Grü" (4 bytes), "Grüße," (9), the whole text (16).
    assert [chunk_bytes(student, s0, s1) for s0, s1, _, _ in chunks] == [b"Gr\xc3\xbc", b"\xc3\x9fe,", b" caf\xc3\xa9!"]
    for s0, s1, t0, t1 in chunks:
        assert chunk_bytes(student, s0, s1) == chunk_bytes(teacher, t0, t1)


def test_zero_length_token_does_not_create_a_boundary():
    ends = token_ends([2, 0, 1])
    assert ends.tolist() == [2, 2, 3]
    assert common_boundaries(ends, token_ends([2, 1])).tolist() == [[0, 0], [1, 1], [3, 2]]


def test_unequal_coverage_is_rejected():
    with pytest.raises(ValueError):
        align_doc([0], [3], [0], [2])


def random_split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(min_size=1, max_size=40), st.lists(st.integers(0, 200), max_size=30),
       st.lists(st.integers(0, 200), max_size=30))
def test_random_segmentations_align_exactly(text, cuts_a, cuts_b):
    data = text.encode("utf-8")  # multi-byte characters get cut anywhere, as byte-level BPE does
    a, b = random_split(data, cuts_a), random_split(data, cuts_b)
    doc = align_doc(range(len(a)), [len(x) for x in a], range(len(b)), [len(x) for x in b])
    chunks = chunk_spans(doc.bounds)
    assert b"".join(chunk_bytes(a, s0, s1) for s0, s1, _, _ in chunks) == data
    for s0, s1, t0, t1 in chunks:
        assert s1 > s0 and t1 > t0
        assert chunk_bytes(a, s0, s1) == chunk_bytes(b, t0, t1)
    ends_a = set(np.cumsum([len(x) for x in a]).tolist())
    ends_b = set(np.cumsum([len(x) for x in b]).tolist())
    assert len(chunks) == len(ends_a & ends_b)  # every shared boundary, and only those, ends a chunk


def test_next_window_respects_both_limits():
    bounds = np.array([[0, 0], [2, 1], [3, 4], [6, 5], [9, 6]])
    assert next_window(bounds, 0, 6, 5) == 3
    assert next_window(bounds, 0, 6, 3) == 1       # the teacher side is the tighter one
    assert next_window(bounds, 2, 2, 10) is None   # 2 student tokens cannot reach the next boundary
    assert next_window(bounds, 3, 100, 100) == 4


def test_lengths_if_exact_takes_off_a_dummy_prefix_and_rejects_lossy_tokens():
    table = [b" Hello", b" world", None, b"!"]
    assert lengths_if_exact([0, 1], table, b"Hello world") == [5, 6]
    assert lengths_if_exact([0, 1, 3], table, b" Hello world!") == [6, 6, 1]
    assert lengths_if_exact([0, 2], table, b"Hello world") is None   # a token without bytes (<unk>)
    assert lengths_if_exact([1], table, b"World") is None             # bytes that differ (lowercased)
