"""Training rows: packing, determinism, resumable positions, ALM rows on real tokenizers, losses."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_heal_helpers import heal_world  # noqa: F401  (fixture)

from tokengraft.errors import TokengraftError
from tokengraft.heal.compat import token_bytes
from tokengraft.heal.coverage import coverage_first_epoch
from tokengraft.heal.data import AlignedStream, PackedStream
from tokengraft.heal.losses import alm_bce, chunk_sums, collate_alm, log1mexp, token_logprobs
from tokengraft.heal.tokens import aligner, exact_tokens, plain_encoder

TEXTS = ["a b c", "dd ee", "f", "gg hh ii jj", "k"]


def toy_encode(texts: list[str]) -> list[list[int]]:
    return [[ord(ch) for ch in t] for t in texts]


def test_packed_rows_are_the_documents_in_seeded_order():
    stream = PackedStream(TEXTS, toy_encode, start_id=1, seq_len=7, seed=3)
    flat = stream.next_batch(6).flatten().tolist()  # 42 tokens > one epoch (5 starts + 23 characters)
    order = torch.randperm(len(TEXTS), generator=torch.Generator().manual_seed(3 * 1_000_003)).tolist()
    epoch = [x for i in order for x in [1, *toy_encode([TEXTS[i]])[0]]]
    assert len(epoch) == 28 and flat[:28] == epoch
    assert flat[28] == 1  # the next epoch starts with a document start
    other = PackedStream(TEXTS, toy_encode, start_id=1, seq_len=7, seed=4).next_batch(6).flatten().tolist()
    assert other != flat


def test_packed_stream_resumes_at_the_same_row():
    full = PackedStream(TEXTS, toy_encode, 1, 4, seed=0)
    expected = full.next_batch(12)
    first = PackedStream(TEXTS, toy_encode, 1, 4, seed=0)
    head = first.next_batch(5)
    resumed = PackedStream(TEXTS, toy_encode, 1, 4, seed=0)
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(torch.cat([head, resumed.next_batch(7)]), expected)


def test_coverage_order_reads_new_token_types_first_then_resumes_and_reshuffles():
    texts = ["aaaa aaaa aaaa", "abcdefgh", "aaaa bbbb", "xyz"]
    first = coverage_first_epoch(texts, toy_encode)
    stream = PackedStream(texts, toy_encode, start_id=1, seq_len=5, seed=0, first_epoch=first)
    first_epoch = [x for i in (1, 3, 0, 2) for x in [1, *toy_encode([texts[i]])[0]]]  # 9 new types, 3, then a tie
    flat = stream.next_batch(8).flatten().tolist()
    assert flat[:len(first_epoch)] == first_epoch
    later = torch.randperm(4, generator=torch.Generator().manual_seed(1)).tolist()  # epoch 1: seeded random again
    second_epoch = [x for i in later for x in [1, *toy_encode([texts[i]])[0]]]
    assert flat[len(first_epoch):] == second_epoch[:40 - len(first_epoch)]
    head = PackedStream(texts, toy_encode, 1, 5, seed=0, first_epoch=first)
    head.next_batch(3)
    resumed = PackedStream(texts, toy_encode, 1, 5, seed=0, first_epoch=coverage_first_epoch(texts, toy_encode))
    resumed.load_state_dict(head.state_dict())
    assert resumed.next_batch(5).flatten().tolist() == flat[15:]


def test_empty_corpus_is_an_error():
    with pytest.raises(TokengraftError, match="corpus is empty"):
        PackedStream(["", ""], toy_encode, 1, 8, seed=0)


def test_alm_rows_on_real_tokenizers_cover_equal_bytes(heal_world):  # noqa: F811
    from transformers import AutoTokenizer

    student = AutoTokenizer.from_pretrained(heal_world["student"])
    teacher = AutoTokenizer.from_pretrained(heal_world["teacher"])
    texts = ["Schnelle Füße: 日本語 テキスト 🦊🦊 café.", "naïve 1234 über", "x"]
    bytes_s, bytes_t = token_bytes(student), token_bytes(teacher)
    # The tiny vocabularies split the CJK characters and the emoji into single-byte tokens.
    pieces = [bytes_s[i] for i in plain_encoder(student)(["🦊"])[0]]
    assert len(pieces) > 1 and all(len(p) < 4 for p in pieces)
    stream = AlignedStream(texts, aligner(student, teacher), 0, 0, seq_len=12, teacher_len=24, seed=0)
    rows = stream.next_batch(8)
    covered = b""
    for row in rows:
        assert len(row.student) <= 12 and len(row.teacher) <= 24
        for s0, s1, t0, t1 in row.chunks:
            side_s = b"".join(bytes_s[i] for i in row.student[s0:s1])
            side_t = b"".join(bytes_t[i] for i in row.teacher[t0:t1])
            assert side_s == side_t and side_s
            covered += side_s
    assert all(t.encode() in covered for t in texts)  # whole documents, split only at shared boundaries
    resumed = AlignedStream(texts, aligner(student, teacher), 0, 0, seq_len=12, teacher_len=24, seed=0)
    first = AlignedStream(texts, aligner(student, teacher), 0, 0, seq_len=12, teacher_len=24, seed=0)
    first.next_batch(3)
    resumed.load_state_dict(first.state_dict())
    assert [r.__dict__ for r in resumed.next_batch(5)] == [r.__dict__ for r in rows[3:8]]


def test_a_normalising_tokenizer_falls_back_to_an_exact_spelling(heal_world):  # noqa: F811
    from tokenizers import normalizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(heal_world["student"])
    tok.backend_tokenizer.normalizer = normalizers.Lowercase()
    text = "Über den Hund"
    assert tok.decode(plain_encoder(tok)([text])[0]) == text.lower()  # its own encoding loses the case
    table = token_bytes(tok)
    [(ids, lengths)] = exact_tokens(tok, table, [text], "teacher")
    assert b"".join(table[i] for i in ids) == text.encode() and sum(lengths) == len(text.encode())


def test_token_logprobs_match_log_softmax():
    torch.manual_seed(0)
    logits, ids = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    ref = torch.log_softmax(logits, -1)[:, :-1].gather(2, ids[:, 1:, None])[..., 0]
    got = token_logprobs(logits, ids)
    assert torch.allclose(got[:, 1:], ref, atol=1e-6) and torch.equal(got[:, 0], torch.zeros(2))


def test_chunk_sums_and_collate():
    from tokengraft.heal.data import AlmRow

    rows = [AlmRow([0, 5, 6, 7], [0, 9, 9], [(1, 3, 1, 2), (3, 4, 2, 3)]), AlmRow([0, 5], [0, 8], [(1, 2, 1, 2)])]
    batch = collate_alm(rows)
    assert batch.num_chunks == 3 and batch.student.shape == (2, 4) and batch.teacher.shape == (2, 3)
    assert batch.student_chunk.tolist() == [[-1, 0, 0, 1], [-1, 2, -1, -1]]
    assert batch.student_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    logp = torch.arange(8.0).view(2, 4)
    assert chunk_sums(logp, batch.student_chunk, 3).tolist() == [1 + 2, 3, 5]


def test_alm_bce_is_stable_and_minimal_where_student_matches_teacher():
    tau = 100.0
    t = torch.tensor([-5.0, -0.01, -300.0, 0.0])
    s = torch.tensor([-7.0, 0.0, -280.0, -1e-12])
    naive_pt, naive_ps = torch.exp(t.double() / tau), torch.exp(s.double() / tau)
    loss = alm_bce(t, s, tau)
    assert torch.isfinite(loss).all()
    ref = -(naive_pt * torch.log(naive_ps) + (1 - naive_pt) * torch.log(1 - naive_ps))
    assert torch.allclose(loss[[0, 2]], ref[[0, 2]], rtol=1e-9)
    x = torch.tensor([-1e-5, -0.5, -3.0, -40.0], dtype=torch.float64)
    assert torch.allclose(log1mexp(x), torch.log(1 - torch.exp(x)), rtol=1e-6)
    s_var = torch.tensor([-5.0, -6.0, -4.0], requires_grad=True)
    alm_bce(torch.tensor([-5.0, -5.0, -5.0]), s_var, tau).sum().backward()
    grad = s_var.grad.tolist()
    assert abs(grad[0]) < 1e-9 and grad[1] < 0 < grad[2]  # pushed towards the teacher from both sides
    p = math.exp(-5.0 / tau)  # at agreement the loss is the entropy of Bernoulli(p)
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert np.isclose(alm_bce(torch.tensor([-5.0]), torch.tensor([-5.0]), tau).item(), entropy, rtol=1e-12)
