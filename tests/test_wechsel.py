"""WECHSEL: Procrustes recovers a planted rotation, the dictd reader, and the method's rows."""
from __future__ import annotations

import gzip
import math

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.bilingual import (
    BilingualOptions, align, bilingual_alignment, dictd_number, identical_pairs, parse_dictd_entry, procrustes,
    read_dictd, token_pairs,
)
from tokengraft.transplant.methods.base import METHODS, InitProblem
from tokengraft.transplant.methods.wechsel import WechselOptions, hubness, nearest, softmax_rows, wechsel
from transplant_fixtures import run_contract


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def test_procrustes_recovers_planted_rotation():
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    rotation = random_rotation(16, 1)
    w = procrustes(x, x @ rotation)
    torch.testing.assert_close(w, rotation, atol=1e-5, rtol=0)
    torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-5, rtol=0)


def test_align_maps_source_onto_target_from_identical_seeds_with_noise():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(300, 12, generator=gen)
    rotation = random_rotation(12, 3)
    old = base + 0.05 * torch.randn(300, 12, generator=gen)
    new = (base @ rotation)[:250] + 0.05 * torch.randn(250, 12, generator=gen)
    old[299] = 0  # no vector: stays zero
    pairs = [(i, i) for i in range(0, 250, 3)]  # a third of the tokens are seeds
    aux_old, aux_new = align(old, new, pairs, BilingualOptions(refine_iterations=1))
    cos = torch.nn.functional.normalize(aux_old[:250], dim=1) @ torch.nn.functional.normalize(aux_new, dim=1).T
    assert (cos.argmax(dim=1) == torch.arange(250)).float().mean() > 0.95  # held-out tokens find their twin
    assert torch.equal(aux_old[299], torch.zeros(12))


def write_dictd(folder, entries: list[tuple[str, str]]):
    body, index, offset = b"", [], 0
    for head, text in entries:
        raw = text.encode()
        index.append((head, offset, len(raw)))
        body, offset = body + raw, offset + len(raw)
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def enc(n: int) -> str:
        out = ""
        while True:
            out, n = b64[n % 64] + out, n // 64
            if n == 0:
                return out

    (folder / "t.index").write_text("".join(f"{h}\t{enc(o)}\t{enc(n)}\n" for h, o, n in index), encoding="utf-8")
    with gzip.open(folder / "t.dict.dz", "wb") as f:
        f.write(body)
    return folder / "t.index", folder / "t.dict.dz"


def test_read_dictd_single_word_pairs(tmp_path):
    assert dictd_number("B8") == 124 and dictd_number("A") == 0
    assert parse_dictd_entry("dog /dˈɒɡ/\nHund <masc> [zool.]\n see: {dogs}\n") == ("dog", ["Hund"])
    # FreeDict eng-fra numbers its senses, one line each
    assert parse_dictd_entry("abate /əbeit/\n1. abaisser, abréger\n2. s'amoindrir\n") == ("abate", ["abaisser", "abréger", "s'amoindrir"])
    files = write_dictd(tmp_path, [
        ("00-database-info", "header\nnot an entry\n"),
        ("house", "house /hˈaʊs/\nHaus <neut>, Gebäude (n) <neut>\n   \"a house\" - ein Haus\n"),
        ("front door", "front door /fɹˈʌnt dɔː/\nHaustür <fem>\n"),
        ("window", "window /wˈɪndəʊ/\nFenster <neut>, Sichtfenster <neut> [comp.], Fenster im Dach\n"),
    ])
    assert read_dictd(*files) == [("house", "Haus"), ("house", "Gebäude"), ("window", "Fenster"), ("window", "Sichtfenster")]


def test_seed_pairs_from_dictionary_and_identical_strings():
    old, new = [b" house", b"house", b" 42", None], [b" Haus", b" 42", b"Haus", None]
    assert token_pairs(old, new, [("house", "Haus")]) == [(0, 0), (1, 2)]
    assert identical_pairs(old, new) == [(2, 1)]
    with pytest.raises(TokengraftError, match="dictionary"):
        bilingual_alignment(torch.ones(4, 2), torch.ones(3, 2), old, new, None, BilingualOptions(seed_pairs="dictionary"))


OLD = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [5.0, 5.0]])


def make_problem(seed: int = 0) -> InitProblem:
    """Old: a, b, c, <special>. New: a (copied), x, y (no vector)."""
    return InitProblem(
        old=OLD, which="input", new_bytes=[b"a", b"x", b"y"], old_bytes=[b"a", b"b", b"c", None],
        copied=torch.tensor([0, -1, -1]), pieces=[[0], [], []],
        aux_old=torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.0, 1.0]]),
        aux_new=torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), seed=seed,
    )


def test_wechsel_hand_computed_softmax_of_neighbours():
    result = run_contract("wechsel", make_problem(), WechselOptions(neighbours=2))
    # x = (0, 1): cos to a, b, c = 0, 1, .8 (the special is never a neighbour) -> top 2 b, c
    w_b = 1 / (1 + math.exp((0.8 - 1.0) / 0.1))
    torch.testing.assert_close(result.rows[1], w_b * OLD[1] + (1 - w_b) * OLD[2])
    assert result.source == ["copied", "wechsel", "fallback:no-aux"]
    assert torch.equal(result.rows[0], OLD[0])
    assert torch.isfinite(result.rows).all()
    # default k = 10 > usable old tokens: the -inf tail gets weight 0
    full = run_contract("wechsel", make_problem(), WechselOptions())
    expected = torch.softmax(torch.tensor([0.0, 1.0, 0.8]) / 0.1, dim=0) @ OLD[:3]
    torch.testing.assert_close(full.rows[1], expected)


def test_wechsel_paper_mode_is_deterministic_with_a_seeded_fallback():
    paper = WechselOptions(paper=True)
    a, b, c = run_contract("wechsel", make_problem(0), paper), run_contract("wechsel", make_problem(0), paper), run_contract("wechsel", make_problem(1), paper)
    assert torch.equal(a.rows, b.rows) and not torch.equal(a.rows[2], c.rows[2])


def test_wechsel_tokens_without_a_vector_get_fvt_rows():
    problem = make_problem(0)
    problem.pieces[2] = [1, 2]          # y spelled b + c by the old tokenizer, no vector
    result = run_contract("wechsel", problem, WechselOptions())
    torch.testing.assert_close(result.rows[2], (OLD[1] + OLD[2]) / 2)
    assert result.source[2] == "fvt"


def test_wechsel_mixes_fvt_into_neighbour_rows_and_drops_weak_neighbours():
    problem = make_problem(0)
    problem.pieces[1] = [0, 3]          # x spelled a + <3> by the old tokenizer: FVT row (3, 2.5)
    fvt_row = (OLD[0] + OLD[3]) / 2
    plain = run_contract("wechsel", make_problem(0), WechselOptions(neighbours=2)).rows[1]
    mixed = run_contract("wechsel", problem, WechselOptions(neighbours=2, fvt_share=0.25))
    torch.testing.assert_close(mixed.rows[1], 0.75 * plain + 0.25 * fvt_row)
    assert mixed.source[1] == "wechsel"
    # x's best neighbour has cosine 1.0: kept at 0.99, replaced by FVT above it
    kept = run_contract("wechsel", make_problem(0), WechselOptions(neighbours=2, min_similarity=0.99))
    torch.testing.assert_close(kept.rows[1], plain)
    weak = run_contract("wechsel", problem, WechselOptions(neighbours=2, min_similarity=1.01, fvt_share=0.25))
    torch.testing.assert_close(weak.rows[1], fvt_row)
    assert weak.source[1] == "fvt"
    paper = run_contract("wechsel", problem, WechselOptions(neighbours=2, min_similarity=1.01, paper=True))
    torch.testing.assert_close(paper.rows[1], plain)  # the paper: no threshold, no mix
    with pytest.raises(TokengraftError, match="fvt_share"):
        run_contract("wechsel", problem, WechselOptions(fvt_share=1.5))


def test_softmax_rows_can_keep_the_neighbours_norm():
    sims, ids = torch.tensor([[1.0, 1.0]]), torch.tensor([[0, 1]])
    old = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(softmax_rows(sims, ids, old, 0.1), torch.tensor([[1.5, 0.5]]))
    kept = softmax_rows(sims, ids, old, 0.1, match_norms=True)      # norm (3 + 1) / 2 = 2, direction kept
    torch.testing.assert_close(kept, torch.tensor([[1.5, 0.5]]) * 2 / math.sqrt(2.5))


def test_csls_penalises_hub_keys():
    keys, queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(hubness(keys, queries, 2), torch.tensor([(1 + r) / 2, r / 2]))
    sims, ids = nearest(torch.tensor([[1.0, 1.01]]), keys, 2)
    assert ids.tolist() == [[1, 0]]
    sims, ids = nearest(torch.tensor([[1.01, 1.0]]), keys, 2, penalty=torch.tensor([0.5, 0.0]))
    assert ids.tolist() == [[1, 0]]                                    # scored by cos - penalty
    h = math.hypot(1.01, 1.0)
    torch.testing.assert_close(sims, torch.tensor([[1.0 / h, 1.01 / h - 0.5]]))
    result = run_contract("wechsel", make_problem(), WechselOptions(neighbours=2, csls=2))
    assert result.source == ["copied", "wechsel", "fallback:no-aux"] and torch.isfinite(result.rows).all()


def test_nearest_is_chunk_invariant_and_masks():
    gen = torch.Generator().manual_seed(5)
    q, k = torch.randn(17, 4, generator=gen), torch.randn(9, 4, generator=gen)
    usable = torch.tensor([True] * 8 + [False])
    s1, i1 = nearest(q, k, 3, usable, chunk_size=4)
    s2, i2 = nearest(q, k, 3, usable, chunk_size=100)
    assert torch.equal(i1, i2) and not (i1 == 8).any()
    torch.testing.assert_close(s1, s2)


def test_wechsel_needs_aligned_spaces():
    problem = make_problem()
    problem.aux_old = torch.zeros(4, 3)
    with pytest.raises(TokengraftError, match="dim"):
        run_contract("wechsel", problem, WechselOptions())
    assert METHODS["wechsel"].options is WechselOptions


@pytest.mark.slow
def test_real_freedict_eng_deu():
    from tokengraft.transplant.auxiliary.bilingual import find_dictionary

    found = find_dictionary("en", "de")
    assert found is not None, "dict-freedict-eng-deu is not unpacked; run bash scripts/setup.sh"
    pairs = set(read_dictd(*found))
    assert {("house", "Haus"), ("window", "Fenster"), ("dog", "Hund")} <= pairs
    assert len(pairs) > 100_000
    assert find_dictionary("en", "xx") is None  # unknown language: WECHSEL falls back to identical-string seeds
