"""Orthogonal matching pursuit, one target at a time: the readable version the fast one is tested against.

Greedy OMP (Pati, Rezaiifar & Krishnaprasad 1993) for a target x and a dictionary of atoms a_1..a_N:

    residual = x, chosen = []
    repeat k times:
        pick the atom not yet chosen with the largest |<residual, a_i>|   (first index on ties)
        coefficients = least squares of x on the chosen atoms
        residual = x - sum_j coefficients_j a_chosen_j

Raw inner products (atoms are not normalised) and unconstrained coefficients, as in the
paper's reference. Float64 and ``torch.linalg.lstsq`` at every step: slow, obviously right.
"""
from __future__ import annotations

import torch


def omp_reference(target: torch.Tensor, atoms: torch.Tensor, k: int) -> tuple[list[int], torch.Tensor, float]:
    """Select ``k`` atoms for one target.

    target: (e,); atoms: (N, e). Returns (chosen atom indices in selection order,
    (k,) float64 coefficients, relative residual ||x - sum c_j a_j|| / ||x||; 0 for x = 0).

    >>> atoms = torch.eye(3)
    >>> omp_reference(torch.tensor([0.0, 2.0, -1.0]), atoms, 2)[:2]
    ([1, 2], tensor([ 2., -1.], dtype=torch.float64))
    """
    x = target.double()
    dictionary = atoms.double()
    residual = x.clone()
    chosen: list[int] = []
    coef = torch.zeros(0, dtype=torch.float64)
    for _ in range(min(k, dictionary.shape[0])):
        scores = (dictionary @ residual).abs()
        if chosen:
            scores[chosen] = -1.0
        chosen.append(int(torch.argmax(scores)))
        basis = dictionary[chosen].T  # (e, t)
        coef = torch.linalg.lstsq(basis, x.unsqueeze(1), driver="gelsd").solution.squeeze(1)
        residual = x - basis @ coef
    norm = float(x.norm())
    return chosen, coef, (float(residual.norm()) / norm if norm > 0 else 0.0)
