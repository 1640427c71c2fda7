"""random, mean, FVT, WVT and the shared fallbacks on hand-made vocabularies (exact numbers)."""
from __future__ import annotations

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods import METHODS, InitProblem, Needs
from tokengraft.transplant.methods.base import DONOR
from tokengraft.transplant.methods.baselines import MeanOptions, RandomOptions, mean_init, random_init
from tokengraft.transplant.methods.fallback import column_stats, fallback_rows
from tokengraft.transplant.methods.fvt import (FVTOptions, byte_lengths, decomposition_lengths, flatten_pieces,
                                               fvt, piece_means, wvt)
from transplant_fixtures import run_contract

# old vocabulary: 0 "a", 1 "b", 2 "cd", 3 "efgh", 4 <special>
OLD_BYTES = [b"a", b"b", b"cd", b"efgh", None]
OLD = torch.tensor([
    [1.0, 0.0, 2.0],
    [3.0, 4.0, 0.0],
    [0.0, 2.0, 4.0],
    [8.0, 0.0, -4.0],
    [0.5, 0.5, 0.5],
])
# new vocabulary: 0 "b" (copied from 1), 1 "ab" = a+b, 2 "acd" = a+cd, 3 "cdefgh" = cd+efgh,
# 4 "zz" (no decomposition), 5 <pad> (special, no bytes)
NEW_BYTES = [b"b", b"ab", b"acd", b"cdefgh", b"zz", None]
COPIED = torch.tensor([1, -1, -1, -1, -1, -1])
PIECES = [[1], [0, 1], [0, 2], [2, 3], [], []]


def problem(old: torch.Tensor = OLD, seed: int = 0, copied: torch.Tensor = COPIED, pieces=PIECES) -> InitProblem:
    return InitProblem(old=old, which="input", new_bytes=NEW_BYTES, old_bytes=OLD_BYTES, copied=copied,
                       pieces=pieces, seed=seed)


def test_registry_lists_the_core_methods_with_their_options():
    assert {"random", "mean", "fvt", "wvt", "omp"} <= set(METHODS)
    assert METHODS["fvt"].options is FVTOptions and METHODS["wvt"].options is FVTOptions
    assert METHODS["omp"].needs == Needs(space=(DONOR, "strings"))  # a donor, else an embedder's space
    assert METHODS["fvt"].fn(problem(), FVTOptions()).rows.shape == (6, 3)


def test_fvt_is_the_mean_of_the_pieces():
    result = run_contract("fvt", problem(), FVTOptions())
    assert torch.equal(result.rows[1], torch.tensor([2.0, 2.0, 1.0]))    # (a + b) / 2
    assert torch.equal(result.rows[2], torch.tensor([0.5, 1.0, 3.0]))    # (a + cd) / 2
    assert torch.equal(result.rows[3], torch.tensor([4.0, 1.0, 0.0]))    # (cd + efgh) / 2
    assert result.source == ["copied", "fvt", "fvt", "fvt", "fallback:empty-decomposition", "fallback:no-bytes"]
    assert bool(result.residual.isnan().all())  # fvt reconstructs nothing: no residual anywhere


def test_wvt_weighs_pieces_by_byte_length():
    result = run_contract("wvt", problem(), FVTOptions())
    assert torch.equal(result.rows[1], torch.tensor([2.0, 2.0, 1.0]))    # 1 and 1 byte: equal weights
    assert torch.allclose(result.rows[2], (OLD[0] + 2 * OLD[2]) / 3)     # "a" 1 byte, "cd" 2 bytes
    assert torch.allclose(result.rows[3], torch.tensor([32.0, 4.0, -8.0]) / 6)    # (2 cd + 4 efgh) / 6
    assert result.source[3] == "wvt"


def test_wvt_with_byteless_pieces_falls_back_to_equal_weights():
    rows = piece_means(OLD, [[4, 4], [4, 0]], [0, 1], byte_lengths(OLD_BYTES))
    assert torch.equal(rows[0], OLD[4])                                   # all weights 0 -> plain mean
    assert torch.equal(rows[1], OLD[0])                                   # the byteless piece weighs 0


def test_copied_rows_are_the_old_rows_bit_for_bit_in_the_old_dtype():
    old = (OLD * 1.37).to(torch.bfloat16)
    for name, options in [("fvt", FVTOptions()), ("wvt", FVTOptions()), ("mean", MeanOptions()),
                          ("random", RandomOptions())]:
        result = run_contract(name, problem(old), options)
        assert result.rows.dtype == torch.bfloat16
        assert torch.equal(result.rows[0], old[1]), name
        assert result.source[0] == "copied"
        assert torch.isfinite(result.rows.float()).all()


def test_empty_decomposition_gets_the_documented_mean_fallback():
    result = run_contract("fvt", problem(), FVTOptions())
    assert torch.equal(result.rows[4], OLD.mean(dim=0)) and torch.equal(result.rows[5], OLD.mean(dim=0))


def test_normal_fallback_is_seeded_and_finite():
    a = run_contract("fvt", problem(seed=3), FVTOptions(fallback="normal")).rows
    b = run_contract("fvt", problem(seed=3), FVTOptions(fallback="normal")).rows
    c = run_contract("fvt", problem(seed=4), FVTOptions(fallback="normal")).rows
    assert torch.equal(a, b) and not torch.equal(a[4:], c[4:])
    assert torch.equal(a[:4], c[:4])                                      # only the fallback rows are random
    assert torch.isfinite(a).all() and not torch.equal(a[4], a[5])
    expected = fallback_rows(OLD, 2, "normal", torch.Generator().manual_seed(3))
    assert torch.equal(a[4:], expected)


def test_mean_method_and_column_stats():
    result = run_contract("mean", problem(), MeanOptions())
    assert torch.equal(result.rows[1:], OLD.mean(dim=0).expand(5, -1))
    assert result.source == ["copied"] + ["mean"] * 5
    mean, std = column_stats(torch.tensor([[1.0, float("nan")], [3.0, 1.0], [5.0, 3.0]]))
    assert mean.tolist() == [4.0, 2.0] and std.tolist() == [1.0, 1.0]   # the NaN row is ignored


def test_random_matches_the_per_dimension_stats_and_is_seeded():
    old = torch.randn(500, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 0.1, 3.0, 0.5])
    old = old + torch.tensor([0.0, 5.0, -2.0, 1.0])
    n = 20_000
    big = InitProblem(old=old, which="input", new_bytes=[b"x"] * n, old_bytes=[b"y"] * 500,
                      copied=torch.full((n,), -1), pieces=[[]] * n, seed=11)
    rows = run_contract("random", big, RandomOptions()).rows
    mean, std = column_stats(old)
    assert torch.allclose(rows.mean(dim=0), mean, atol=0.05 * float(std.max()))
    assert torch.allclose(rows.std(dim=0), std, rtol=0.03)
    assert torch.equal(rows, run_contract("random", big, RandomOptions()).rows)
    half = run_contract("random", big, RandomOptions(scale=0.5)).rows
    assert torch.allclose(half.std(dim=0), 0.5 * std, rtol=0.03)


def test_helpers_for_the_orchestrator():
    assert decomposition_lengths(PIECES).tolist() == [1, 2, 2, 2, 0, 0]
    assert byte_lengths(OLD_BYTES).tolist() == [1, 1, 2, 4, 0]
    flat, bag = flatten_pieces(PIECES, [3, 4, 1])
    assert flat.tolist() == [2, 3, 0, 1] and bag.tolist() == [0, 0, 2, 2]


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(TokengraftError, match="old id 9"):
        run_contract("fvt", problem(pieces=[[1], [0, 9], [0, 2], [2, 3], [], []]), FVTOptions())
    with pytest.raises(TokengraftError, match="unknown fallback"):
        run_contract("fvt", problem(), FVTOptions(fallback="zeros"))
    with pytest.raises(TokengraftError, match="copied token points at old row 7"):
        run_contract("fvt", problem(copied=torch.tensor([7, -1, -1, -1, -1, -1])), FVTOptions())
    with pytest.raises(TokengraftError, match="sizes disagree"):
        run_contract("mean", problem(pieces=PIECES[:3]), MeanOptions())


def test_non_finite_old_rows_never_leak_into_new_rows():
    old = OLD.clone()
    old[0, 1] = float("inf")                                              # "a" is broken in the old matrix
    result = run_contract("fvt", problem(old), FVTOptions())
    assert torch.isfinite(result.rows[1:]).all()
    assert result.source[1] == result.source[2] == "fallback:non-finite"
    assert torch.equal(result.rows[1], column_stats(old)[0])


def test_register_refuses_a_taken_name_and_a_broken_module_is_an_error():
    from tokengraft.transplant.auxiliary import provider
    from tokengraft.transplant.methods import import_methods, register

    with pytest.raises(TokengraftError, match="method name 'fvt' is registered twice"):
        register("fvt", FVTOptions)(lambda problem, options: None)
    assert METHODS["fvt"].fn is fvt
    with pytest.raises(TokengraftError, match="provider name 'strings' is registered twice"):
        provider("strings")(lambda request, options: None)
    with pytest.raises(ModuleNotFoundError, match="no_such_method"):
        import_methods(["no_such_method"])
