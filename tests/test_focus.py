"""sparsemax and FOCUS: known vectors, a hand-computed convex combination, fallbacks."""
from __future__ import annotations

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import METHODS, InitProblem, Needs
from tokengraft.transplant.methods.focus import FocusOptions, focus, fuzzy_matches, sparse_convex_rows
from tokengraft.transplant.methods.sparsemax import sparsemax
from transplant_fixtures import run_contract


def sparsemax_reference(z: list[float]) -> list[float]:
    """Plain definition: find tau with sum(max(z - tau, 0)) = 1 by bisection."""
    lo, hi = min(z) - 1, max(z)
    for _ in range(200):
        tau = (lo + hi) / 2
        if sum(max(v - tau, 0) for v in z) > 1:
            lo = tau
        else:
            hi = tau
    return [max(v - tau, 0) for v in z]


def test_sparsemax_known_vector():
    # sorted 1, .5, .1: support k = 2 (1 + 2*.5 > 1.5, 1 + 3*.1 < 1.6), tau = (1.5 - 1) / 2 = .25
    assert sparsemax(torch.tensor([1.0, 0.5, 0.1])).tolist() == [0.75, 0.25, 0.0]


def test_sparsemax_ties_and_uniform():
    out = sparsemax(torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.5, 0.5], [3.0, 0.0, 3.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.0, 0.5]]))


def test_sparsemax_far_apart_is_one_hot_and_inf_gets_zero():
    assert sparsemax(torch.tensor([5.0, 1.0, -2.0])).tolist() == [1.0, 0.0, 0.0]
    assert sparsemax(torch.tensor([0.3, float("-inf"), 0.1])).tolist() == pytest.approx([0.6, 0.0, 0.4])


def test_sparsemax_matches_reference_batched_on_any_dim():
    z = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 0.7
    out = sparsemax(z)
    expected = torch.tensor([sparsemax_reference(row) for row in z.tolist()])
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(50))
    assert (out == 0).sum() > 50  # sparse: many exact zeros
    torch.testing.assert_close(sparsemax(z.T, dim=0), out.T)


def test_sparse_convex_rows_candidates_equal_full_solution():
    gen = torch.Generator().manual_seed(1)
    targets, anchors, rows = torch.randn(40, 5, generator=gen), torch.randn(30, 5, generator=gen), torch.randn(30, 3, generator=gen)
    narrow = sparse_convex_rows(targets, anchors, rows, FocusOptions(candidates=2, chunk_size=7))
    wide = sparse_convex_rows(targets, anchors, rows, FocusOptions(candidates=30))
    cos = torch.nn.functional.normalize(targets, dim=1) @ torch.nn.functional.normalize(anchors, dim=1).T
    torch.testing.assert_close(narrow, wide)
    torch.testing.assert_close(wide, sparsemax(cos) @ rows)


def make_problem(aux_new: torch.Tensor, seed: int = 0, old: torch.Tensor | None = None) -> InitProblem:
    """Old vocab a, b, c, d; new vocab a, b, c (copied) + x, y (new)."""
    old = old if old is not None else torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 5.0]])
    return InitProblem(
        old=old, which="input",
        new_bytes=[b"a", b"b", b"c", b"x", b"y"], old_bytes=[b"a", b"b", b"c", b"d"],
        copied=torch.tensor([0, 1, 2, -1, -1]), pieces=[[0], [1], [2], [], []],
        aux_new=aux_new, seed=seed,
    )


# anchors a, b, c at (1, 0), (0, 1), (-1, 0); x at (0.8, 0.6); y has no vector
AUX = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.8, 0.6], [0.0, 0.0]])


def test_focus_hand_computed_convex_combination():
    result = run_contract("focus", make_problem(AUX), FocusOptions())
    # cos(x, anchors) = .8, .6, -.8 -> sparsemax: k = 2, tau = (1.4 - 1) / 2 = .2 -> w = .6, .4, 0
    torch.testing.assert_close(result.rows[3], 0.6 * torch.tensor([1.0, 0.0]) + 0.4 * torch.tensor([0.0, 2.0]))
    assert result.source == ["copied", "copied", "copied", "focus", "fallback:no-aux"]
    assert torch.equal(result.rows[:3], make_problem(AUX).old[:3])  # copied rows exact


def test_focus_paper_fallback_is_seeded_normal_and_deterministic():
    paper = FocusOptions(paper=True)
    a, b = run_contract("focus", make_problem(AUX, seed=3), paper), run_contract("focus", make_problem(AUX, seed=3), paper)
    c = run_contract("focus", make_problem(AUX, seed=4), paper)
    assert torch.equal(a.rows, b.rows)
    assert not torch.equal(a.rows[4], c.rows[4])
    assert torch.equal(a.rows[:4], c.rows[:4])  # seed only touches fallback rows
    assert torch.isfinite(a.rows).all()


def test_focus_default_fallback_is_fvt_of_the_pieces():
    problem = make_problem(AUX)
    problem.pieces[4] = [1, 3]          # y = b + d in old pieces, no auxiliary vector
    result = run_contract("focus", problem, FocusOptions())
    torch.testing.assert_close(result.rows[4], (problem.old[1] + problem.old[3]) / 2)
    assert result.source[4] == "fvt"
    problem.pieces[4] = []              # nothing to average: the mean row
    result = run_contract("focus", problem, FocusOptions())
    torch.testing.assert_close(result.rows[4], problem.old.mean(dim=0))
    assert result.source[4] == "fallback:no-aux"


def test_focus_fuzzy_anchors_by_default_and_not_in_paper_mode():
    old = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 5.0]])
    problem = InitProblem(old=old, which="input", new_bytes=[b"a", b" D", b"x"], old_bytes=[b"a", b"b", b"c", b"d"],
                          copied=torch.tensor([0, -1, -1]), pieces=[[0], [], []],
                          aux_new=torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.2, 1.0]]))
    fuzzy = run_contract("focus", problem, FocusOptions())
    assert torch.equal(fuzzy.rows[1], old[3]) and fuzzy.source[1] == "focus"
    torch.testing.assert_close(fuzzy.rows[2], old[3])   # x is nearest to the fuzzy anchor " D" only
    paper = run_contract("focus", problem, FocusOptions(paper=True))
    assert paper.source[1] == "focus" and not torch.equal(paper.rows[1], old[3])


def test_focus_mean_fallback_is_the_mean_row():
    problem = make_problem(AUX)
    result = run_contract("focus", problem, FocusOptions(fallback="mean"))
    torch.testing.assert_close(result.rows[4], problem.old.mean(dim=0))
    with pytest.raises(TokengraftError, match="fallback"):
        run_contract("focus", problem, FocusOptions(fallback="zeros"))


def test_focus_without_usable_anchors_falls_back_everywhere():
    aux = AUX.clone()
    aux[:3] = 0  # no anchor has a vector
    result = run_contract("focus", make_problem(aux), FocusOptions())
    assert result.source[3:] == ["fallback:no-anchors"] * 2
    assert torch.isfinite(result.rows).all()


def test_focus_non_finite_aux_counts_as_missing_and_dtype_is_kept():
    aux = AUX.clone()
    aux[3, 0] = float("nan")
    old = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 5.0]], dtype=torch.bfloat16)
    result = run_contract("focus", make_problem(aux, old=old), FocusOptions())
    assert result.rows.dtype == torch.bfloat16
    assert result.source[3] == "fallback:no-aux"
    assert torch.isfinite(result.rows.float()).all()


def test_fuzzy_anchor_copies_the_case_insensitive_match():
    assert fuzzy_matches([b" Paris", b"Paris", b"zz"], [b"paris", b" paris"], torch.tensor([-1, -1, -1])).tolist() == [1, 0, -1]
    problem = make_problem(AUX)
    problem.new_bytes[3] = b"D"
    result = run_contract("focus", problem, FocusOptions(fuzzy_anchors=True))
    assert torch.equal(result.rows[3], problem.old[3])
    assert result.source[3] == "focus"


def test_focus_is_registered_with_its_needs():
    assert METHODS["focus"].options is FocusOptions
    assert METHODS["focus"].needs == Needs(space=("static",))
