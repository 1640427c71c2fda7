"""OMP: planted sparse recovery, the fast pursuit against the plain reference, degenerate inputs."""
from __future__ import annotations

import pytest
import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods import InitProblem
from tokengraft.transplant.methods.omp import OMPOptions, omp, omp_batched
from tokengraft.transplant.methods.omp_batch import Dictionary
from tokengraft.transplant.methods.omp_reference import omp_reference
from transplant_fixtures import run_contract


def gaussian(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def planted(n_atoms: int = 300, dim: int = 64, seed: int = 0):
    """A dictionary and 8 targets that are exact 5-atom combinations of it."""
    atoms = gaussian(n_atoms, dim, seed=seed)
    support = torch.stack([torch.randperm(n_atoms, generator=torch.Generator().manual_seed(seed + i))[:5]
                           for i in range(8)])
    coef = torch.tensor([2.0, -1.5, 1.0, 0.8, -0.6]).expand(8, 5)
    targets = torch.bmm(coef.unsqueeze(1), atoms[support]).squeeze(1)
    return atoms, targets, support, coef


def test_recovers_a_planted_sparse_combination_exactly():
    atoms, targets, support, coef = planted()
    fit = omp_batched(targets, atoms, 5)
    for b in range(8):
        order = torch.argsort(fit.indices[b])
        assert torch.equal(fit.indices[b][order], torch.sort(support[b]).values)
        expected = coef[b][torch.argsort(support[b])]
        assert torch.allclose(fit.coef[b][order], expected, atol=1e-4)
    assert float(fit.residual.max()) < 1e-4


def test_reference_recovers_the_planted_combination():
    atoms, targets, support, coef = planted(seed=5)
    chosen, c, residual = omp_reference(targets[0], atoms, 5)
    assert sorted(chosen) == sorted(support[0].tolist())
    assert dict(zip(chosen, c.tolist())) == pytest.approx(dict(zip(support[0].tolist(), coef[0].tolist())), abs=1e-6)
    assert residual < 1e-6


@pytest.mark.parametrize("selection", ["gram", "screened", "exact"])
def test_fast_pursuit_equals_the_reference(selection):
    atoms = gaussian(400, 48, seed=1)
    targets = gaussian(12, 48, seed=2)
    fit = omp_batched(targets, atoms, 12, selection=selection)
    for b in range(12):
        chosen, coef, residual = omp_reference(targets[b], atoms, 12)
        assert fit.indices[b].tolist() == chosen
        assert torch.allclose(fit.coef[b].double(), coef, atol=1e-4)
        assert float(fit.residual[b]) == pytest.approx(residual, abs=1e-4)


def test_screened_scan_picks_the_exact_atoms_when_candidates_run_short(monkeypatch):
    """With at most 2 candidates per band the bfloat16 check often cannot prove the pick: the float32
    re-scan must then give the same atoms as the exact pursuit, never a different pursuit."""
    import tokengraft.transplant.methods.omp_batch as batch

    monkeypatch.setattr(batch, "BAND", 2)
    atoms = gaussian(600, 32, seed=11) * (1.0 + torch.arange(600) / 600.0).unsqueeze(1)
    targets = gaussian(24, 32, seed=12)
    screened = omp_batched(targets, atoms, 16, selection="screened")
    exact = omp_batched(targets, atoms, 16, selection="exact")
    assert torch.equal(screened.indices, exact.indices)
    assert torch.allclose(screened.coef, exact.coef, atol=1e-5)


def test_screened_scan_separates_atoms_closer_than_bfloat16_resolution():
    """Twins scaled by 1 + 2^-10 have (nearly) the same bfloat16 scores as their originals; the
    exact pursuit picks the twin (a larger score by 0.1%), so the screened one must too."""
    atoms = gaussian(200, 32, seed=13)
    atoms = torch.cat([atoms, atoms[:40] * (1.0 + 2.0 ** -10)])
    targets = atoms[:40] + 0.01 * gaussian(40, 32, seed=14)
    screened = omp_batched(targets, atoms, 4, selection="screened")
    exact = omp_batched(targets, atoms, 4, selection="exact")
    assert screened.indices[:, 0].tolist() == list(range(200, 240))
    assert torch.equal(screened.indices, exact.indices)
    assert torch.allclose(screened.coef, exact.coef, atol=1e-5)


def test_gram_selection_runs_its_kernel_and_separates_close_twins():
    """The compiled Batch-OMP kernel (g++ is part of the set-up) picks the exact pursuit's atoms,
    twins 2^-10 apart included, and its float16 Gram matrix is G / max squared norm."""
    atoms = gaussian(200, 32, seed=13)
    atoms = torch.cat([atoms, atoms[:40] * (1.0 + 2.0 ** -10)])
    targets = torch.cat([atoms[:40] + 0.01 * gaussian(40, 32, seed=14), gaussian(30, 32, seed=15)])
    dictionary = Dictionary(atoms)
    gram = omp_batched(targets, dictionary, 4, selection="gram")
    exact = omp_batched(targets, atoms, 4, selection="exact")
    assert dictionary.gram_fallback == ""                        # the kernel ran: no fallback
    assert dictionary.gram_stats[0] > 0                          # atoms re-scored in float32
    assert gram.indices[:40, 0].tolist() == list(range(200, 240))
    assert torch.equal(gram.indices, exact.indices)
    assert torch.allclose(gram.coef, exact.coef, atol=1e-5)
    assert torch.allclose(gram.residual, exact.residual, atol=1e-6)
    matrix, scale = dictionary.gram()
    assert scale == pytest.approx(float((atoms * atoms).sum(1).max()))
    assert torch.allclose(matrix.float() * scale, atoms @ atoms.T, rtol=2.0 ** -10, atol=1e-4)


def test_gram_selection_hands_crowded_targets_to_the_screened_one(monkeypatch):
    """A band wider than BAND atoms (here 1) cannot be checked cheaply: those targets are re-run
    by the screened selection, and every pick still equals the exact pursuit's."""
    import tokengraft.transplant.methods.omp_batch as batch

    monkeypatch.setattr(batch, "BAND", 1)
    atoms = gaussian(300, 24, seed=16)
    targets = gaussian(20, 24, seed=17)
    dictionary = Dictionary(atoms)
    gram = omp_batched(targets, dictionary, 10, selection="gram")
    exact = omp_batched(targets, atoms, 10, selection="exact")
    assert dictionary.gram_stats[1] > 0                          # some targets were handed over
    assert torch.equal(gram.indices, exact.indices)
    assert torch.allclose(gram.coef, exact.coef, atol=1e-5)


@pytest.mark.parametrize("cause", ["compiler", "memory"])
def test_gram_selection_falls_back_to_screened_with_one_log_line(monkeypatch, caplog, cause):
    import tokengraft.transplant.methods.omp_gram as gram_module

    if cause == "compiler":
        monkeypatch.setattr(gram_module, "_library", None)
        monkeypatch.setattr(gram_module, "_failed", None)
        monkeypatch.setenv("CXX", "/nonexistent/g++")
    else:
        monkeypatch.setattr(gram_module, "MEMORY_SHARE", 0.0)
    atoms, targets = gaussian(100, 16, seed=18), gaussian(6, 16, seed=19)
    dictionary = Dictionary(atoms)
    with caplog.at_level("WARNING"):
        fit = omp_batched(targets, dictionary, 5, selection="gram")
        omp_batched(targets, dictionary, 5, selection="gram")
    lines = [r.getMessage() for r in caplog.records if "gram selection unavailable" in r.getMessage()]
    assert len(lines) == 1 and ("g++" in lines[0] if cause == "compiler" else "memory" in lines[0])
    screened = omp_batched(targets, atoms, 5, selection="screened")
    assert torch.equal(fit.indices, screened.indices) and torch.equal(fit.coef, screened.coef)


def test_unknown_selection_is_an_error():
    with pytest.raises(TokengraftError, match="selection"):
        omp_batched(gaussian(2, 4, seed=0), gaussian(5, 4, seed=1), 2, selection="fast")
    with pytest.raises(TokengraftError, match="selection"):
        omp(omp_problem(torch.ones(6, 3)), OMPOptions(selection="fast"))


def test_degenerate_targets_and_dictionaries_give_no_nan():
    atoms = gaussian(20, 4, seed=6)
    atoms = torch.cat([atoms, atoms[:3]])                  # exact duplicate atoms
    targets = torch.stack([torch.zeros(4), atoms[2], 3 * atoms[0] - atoms[1], gaussian(4, seed=7)])
    fit = omp_batched(targets, atoms, 6)  # k = 6 > rank 4
    assert torch.isfinite(fit.coef).all() and torch.isfinite(fit.residual).all()
    assert fit.coef[0].abs().max() == 0 and fit.residual[0] == 0   # zero target: zero combination
    assert fit.indices[1, 0] in (2, 22) and float(fit.coef[1, 0]) == pytest.approx(1.0, abs=1e-5)
    assert fit.coef[1, 1:].abs().max() == 0                      # finished after one atom: the rest get 0
    assert float(fit.residual.max()) < 1e-3                      # every target lies in the 4-d span
    recon = torch.bmm(fit.coef.unsqueeze(1), atoms[fit.indices]).squeeze(1)
    assert torch.allclose(recon, targets, atol=1e-3)
    empty = omp_batched(targets[:0], atoms, 3)                   # an empty batch is no error
    assert empty.indices.shape == (0, 3) and empty.coef.shape == (0, 3)


def omp_problem(donor: torch.Tensor | None, aux: torch.Tensor | None = None) -> InitProblem:
    """Old vocab of 4 rows; new vocab of 6: tokens 0-2 shared (old 3, 1, 0), 3-5 to approximate."""
    old = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [2.0, -1.0]])
    return InitProblem(old=old, which="input", new_bytes=[b"a", b"b", b"c", b"d", b"e", b"f"],
                       old_bytes=[b"c", b"b", b"x", b"a"], copied=torch.tensor([3, 1, 0, -1, -1, -1]),
                       pieces=[[3], [1], [0], [], [], []], donor_new=donor, aux_new=aux)


def test_method_transfers_the_combination_to_the_old_rows():
    donor = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0],
                          [2.0, -1.0, 0.0],                     # 2 a - b
                          [0.0, 0.0, 0.0],                      # no donor vector
                          [0.5, 0.5, 3.0]])                     # 0.5 a + 0.5 b + 3 c
    result = run_contract("omp", omp_problem(donor), OMPOptions(k=3))
    old = omp_problem(None).old
    assert torch.equal(result.rows[:3], old[[3, 1, 0]])
    assert torch.allclose(result.rows[3], 2 * old[3] - old[1], atol=1e-5)
    assert torch.allclose(result.rows[5], 0.5 * old[3] + 0.5 * old[1] + 3 * old[0], atol=1e-5)
    assert torch.equal(result.rows[4], old.mean(dim=0))
    assert result.source == ["copied"] * 3 + ["omp", "fallback:no-vector", "omp"]
    assert torch.isnan(result.residual[[0, 1, 2, 4]]).all() and float(result.residual[[3, 5]].max()) < 1e-5


def test_method_uses_auxiliary_vectors_without_a_donor_and_k_is_capped():
    aux = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0], [0.0, -2.0], [1.0, 2.0]])
    result = run_contract("omp", omp_problem(None, aux), OMPOptions(k=64))   # only 3 atoms exist
    assert result.source[3:] == ["omp"] * 3
    assert float(result.residual[3:].max()) < 1e-5
    old = omp_problem(None).old
    assert torch.allclose(result.rows[4], -2 * old[1], atol=1e-5)
    again = run_contract("omp", omp_problem(None, aux), OMPOptions(k=64))
    assert torch.equal(result.rows, again.rows)


def test_method_errors_and_fallbacks():
    with pytest.raises(TokengraftError, match="--donor"):
        run_contract("omp", omp_problem(None), OMPOptions())
    with pytest.raises(TokengraftError, match="rows for 6 new tokens"):
        run_contract("omp", omp_problem(torch.ones(5, 3)), OMPOptions())
    with pytest.raises(TokengraftError, match="out of range"):
        run_contract("omp", omp_problem(torch.ones(6, 3)), OMPOptions(k=0))
    no_shared = torch.zeros(6, 3)
    no_shared[3:] = 1.0
    result = run_contract("omp", omp_problem(no_shared), OMPOptions())
    assert result.source[3:] == ["fallback:no-dictionary"] * 3
    assert torch.isfinite(result.rows).all()


def test_batches_do_not_change_the_result():
    atoms = gaussian(8, 16, seed=8)
    donor = torch.cat([atoms, gaussian(30, 16, seed=9)])
    n = donor.shape[0]
    p = InitProblem(old=gaussian(8, 5, seed=10), which="output", new_bytes=[b"t"] * n, old_bytes=[b"o"] * 8,
                    copied=torch.cat([torch.arange(8), torch.full((30,), -1)]), pieces=[[]] * n, donor_new=donor)
    one = run_contract("omp", p, OMPOptions(k=4, batch_size=1000))
    many = run_contract("omp", p, OMPOptions(k=4, batch_size=7))
    assert torch.allclose(one.rows, many.rows, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    atoms, targets, _, _ = planted()
    cpu = omp_batched(targets, atoms, 5)
    gpu = omp_batched(targets.cuda(), atoms.cuda(), 5)
    assert torch.equal(cpu.indices, gpu.indices.cpu())
    assert torch.allclose(cpu.coef, gpu.coef.cpu(), atol=1e-4)
