"""OMP: express each new token as a sparse combination of shared tokens, then transfer it.

Orthogonal matching pursuit, as in "Training-Free Tokenizer Transplantation via Orthogonal
Matching Pursuit" (2025; mergekit's tokensurgeon). In a space where the new vocabulary has
vectors (a donor model's embeddings on the new tokenizer, else auxiliary vectors) the
dictionary is the shared tokens' vectors; each non-shared token is approximated with ``k``
atoms chosen greedily, and its new row is ``sum_j c_j * old[copied[shared_j]]``.

The pursuit is batched: B targets advance together; each step picks B atoms with one
matmul (B, e) x (e, N) and grows the inverse Cholesky factor of each target's chosen-atom
Gram matrix by one row, so the least-squares coefficients cost O(t^2) per step instead of a
fresh solve. :func:`omp_reference` (one target, ``lstsq`` every step) is the plain version
the tests hold this one to.

Cost: the selection matmuls, k * N * e multiply-adds per target (~87% of the CPU time; the
Cholesky updates are O(B t^2), the residual O(B t e) per step). Each step's argmax may be any
atom, so an exact pursuit cannot skip them: SmolLM2 -> Gemma-3 (N = 45,571 atoms of width 640,
216,573 targets, k = 64) is 8.1e14 flops: about 2 hours at 100 GFLOPS (two CPU cores at
best), seconds to minutes on a GPU (the same code runs on CUDA tensors). Shortlists of the atoms
most correlated with the target were tried and rejected: on Gemma-3's embeddings exact OMP picks
only about half its atoms among even the top 1,024 (k = 8), and the transferred rows then
disagree (median cosine ~0.7). ``benchmarks/bench_omp.py`` times the pursuit against mergekit's.

Fallbacks (default: the old matrix's mean row): a token whose vector in the space is zero or
non-finite (``fallback:no-vector``), every token when no shared token has a vector
(``fallback:no-dictionary``). ``residual`` = ||x - sum c_j a_j|| / ||x|| per approximated token.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import DONOR, InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import check_fallback, finish, finite_rows, validate

logger = logging.getLogger(__name__)

# An atom closer than 1% of its norm to the span of the atoms already chosen (squared: 1e-4) is
# numerically a combination of them in float32: it gets coefficient 0 instead of a huge,
# rounding-driven one (duplicate rows exist in real embedding matrices).
DEPENDENT = 1e-4
# A target whose squared residual is below this share of its squared norm (residual < ~0.3%) is
# finished: later atoms get coefficient 0. Otherwise atoms picked by rounding noise get large
# coefficients that cancel in the donor space but not after the transfer to the old rows.
# (|x|^2 - |z|^2 tracks the squared residual to ~1e-6 of |x|^2; the default ridge adds 1e-6.)
STOP2 = 1e-5


@dataclass
class OMPOptions:
    k: int = 64              # atoms per token (the paper's reference default)
    space: str = "auto"      # "donor" | "aux" | "auto" (the donor when given, else the auxiliary vectors)
    batch_size: int = 1024   # targets per batched pursuit; memory ~ batch_size x atoms floats
    ridge: float = 1e-6      # Tikhonov term, relative to each chosen atom's squared norm
    fallback: str = "mean"   # "mean" | "normal" for tokens without a vector in the space


@dataclass
class OMPFit:
    indices: torch.Tensor    # (B, k) long: chosen atoms in selection order
    coef: torch.Tensor       # (B, k) coefficients (0 for an atom dropped as dependent)
    residual: torch.Tensor   # (B,) ||x - coef @ atoms[indices]|| / ||x|| (0 where x = 0)


class _InverseCholesky:
    """Per target, the inverse L^-1 of the Cholesky factor of the chosen atoms' Gram matrix.

    With G = L L^T and b_j = <x, a_j>, the least-squares coefficients are L^-T (L^-1 b). A new
    atom with Gram column g and squared norm n extends L by the row [w^T, d], where
    w = L^-1 g and d = sqrt(n - |w|^2), so L^-1 gains the row [-(w^T L^-1) / d, 1 / d] and
    z = L^-1 b gains (b_new - w.z) / d: O(t^2) per step, all batched matrix products.
    ||x||^2 - |z|^2 is the squared residual, which tells when a target is finished.
    """

    def __init__(self, targets: torch.Tensor, k: int, ridge: float):
        batch = targets.shape[0]
        self.inv = targets.new_zeros(batch, k, k)
        self.z = targets.new_zeros(batch, k)
        self.ridge = ridge
        self.norm2 = (targets * targets).sum(1)
        self.left = self.norm2.clone()  # squared residual norm
        self.stop2 = max(STOP2, 2.0 * ridge)  # a ridge keeps ~ridge * |x|^2 of the residual

    def finished(self) -> torch.Tensor:
        """(B,) bool: targets already reconstructed to within ~0.3% of their norm (zero targets included)."""
        return self.left <= self.stop2 * self.norm2

    def extend(self, t: int, g: torch.Tensor, norm2: torch.Tensor, b: torch.Tensor) -> None:
        """g (B, t) Gram entries with the chosen atoms, norm2 (B,) the atom's squared norm, b (B,) <x, atom>."""
        inv = self.inv[:, :t, :t]
        w = torch.bmm(inv, g.unsqueeze(2)).squeeze(2)
        d2 = norm2 * (1.0 + self.ridge) - (w * w).sum(1)
        keep = (d2 > DEPENDENT * norm2) & ~self.finished()
        inv_d = torch.where(keep, d2.clamp_min(torch.finfo(d2.dtype).tiny).rsqrt(), torch.zeros_like(d2))
        self.inv[:, t, :t] = -torch.bmm(w.unsqueeze(1), inv).squeeze(1) * inv_d.unsqueeze(1)
        self.inv[:, t, t] = inv_d
        z = (b - (w * self.z[:, :t]).sum(1)) * inv_d
        self.z[:, t] = z
        self.left = self.left - z * z

    def coef(self, t: int) -> torch.Tensor:
        """(B, t) least-squares coefficients of the first t chosen atoms."""
        return torch.bmm(self.inv[:, :t, :t].transpose(1, 2), self.z[:, :t].unsqueeze(2)).squeeze(2)


def _relative_residual(targets: torch.Tensor, atoms: torch.Tensor, fit_idx: torch.Tensor,
                       coef: torch.Tensor) -> torch.Tensor:
    approx = torch.bmm(coef.unsqueeze(1), atoms[fit_idx]).squeeze(1)
    norm = targets.norm(dim=1)
    return torch.where(norm > 0, (targets - approx).norm(dim=1) / norm.clamp_min(1e-30), torch.zeros_like(norm))


def _omp_exact(targets: torch.Tensor, atoms: torch.Tensor, k: int, ridge: float) -> OMPFit:
    batch, dim = targets.shape
    indices = torch.zeros(batch, k, dtype=torch.long, device=targets.device)
    chosen = targets.new_zeros(batch, k, dim)
    chol = _InverseCholesky(targets, k, ridge)
    scores = targets.new_empty(batch, atoms.shape[0])
    residual, coef = targets, targets.new_zeros(batch, 0)
    for t in range(k):
        torch.mm(residual, atoms.T, out=scores)  # the cost of OMP: B x N x e per step
        scores.abs_()
        if t:
            scores.scatter_(1, indices[:, :t], -1.0)  # never pick an atom twice
        new = scores.argmax(dim=1)
        indices[:, t] = new
        atom = atoms[new]
        chosen[:, t] = atom
        g = torch.bmm(chosen[:, :t], atom.unsqueeze(2)).squeeze(2)
        chol.extend(t, g, (atom * atom).sum(1), (targets * atom).sum(1))
        coef = chol.coef(t + 1)
        residual = targets - torch.bmm(coef.unsqueeze(1), chosen[:, : t + 1]).squeeze(1)
    return OMPFit(indices, coef, _relative_residual(targets, atoms, indices, coef))


def omp_batched(targets: torch.Tensor, atoms: torch.Tensor, k: int, *, ridge: float = 1e-6) -> OMPFit:
    """Greedy OMP for a batch of targets, on the targets' device.

    targets: (B, e); atoms: (N, e), cast to the targets' dtype and device (use float32);
    ``1 <= k <= N``. Same atoms and coefficients as :func:`omp_reference` up to rounding.

    >>> fit = omp_batched(torch.tensor([[0.0, 2.0, -1.0]]), torch.eye(3), 2)
    >>> fit.indices.tolist(), [round(c, 4) for c in fit.coef[0].tolist()]
    ([[1, 2]], [2.0, -1.0])
    """
    n_atoms = atoms.shape[0]
    if not 1 <= k <= n_atoms:
        raise TokengraftError(f"k = {k} must be between 1 and the number of atoms ({n_atoms})")
    atoms = atoms.to(device=targets.device, dtype=targets.dtype)
    return _omp_exact(targets, atoms, k, ridge)


def _space(problem: InitProblem, which: str) -> tuple[str, torch.Tensor]:
    if which not in ("auto", "donor", "aux"):
        raise TokengraftError(f"unknown OMP space {which!r}; choose auto, donor or aux")
    if which in ("auto", "donor") and problem.donor_new is not None:
        return "donor", problem.donor_new
    if which in ("auto", "aux") and problem.aux_new is not None:
        return "aux", problem.aux_new
    raise TokengraftError("omp needs vectors of the new vocabulary: pass --donor SPEC (a model that already"
                          " uses the new tokenizer) or --aux SPEC")


def _check(options: OMPOptions) -> None:
    check_fallback(options.fallback)
    if options.k < 1 or options.batch_size < 1 or options.ridge < 0:
        raise TokengraftError(f"OMP options out of range (k={options.k}, batch_size={options.batch_size},"
                              f" ridge={options.ridge}); use k >= 1, batch_size >= 1, ridge >= 0")


@register("omp", OMPOptions, needs=Needs(space=(DONOR, "strings")),
          summary="orthogonal matching pursuit over shared tokens in a donor (or auxiliary) space")
def omp(problem: InitProblem, options: OMPOptions) -> InitResult:
    """Rows of non-shared tokens = sum_j c_j old[shared_j], c from k-atom OMP in the donor/aux space."""
    validate(problem)
    _check(options)
    name, space = _space(problem, options.space)
    if space.shape[0] != problem.new_size:
        raise TokengraftError(f"the {name} matrix has {space.shape[0]} rows for {problem.new_size} new tokens;"
                              " it must cover exactly the new vocabulary")
    copied = problem.copied.to(space.device)
    usable = finite_rows(space) & (space.abs().sum(dim=1) > 0)
    shared = ((copied >= 0) & usable).nonzero().flatten()
    wanted = ((copied < 0) & usable).nonzero().flatten()
    source = ["fallback:no-vector"] * problem.new_size
    rows = torch.zeros(problem.new_size, problem.old.shape[1], device=problem.old.device)
    residual = torch.full((problem.new_size,), float("nan"))
    if shared.numel() == 0:
        source = ["fallback:no-dictionary"] * problem.new_size
        logger.warning("omp: no shared token has a %s vector; every new row is a fallback", name)
        return finish(problem, rows, source, options.fallback, residual)
    atoms = space[shared].float()
    old_atoms = problem.old[problem.copied[shared.to(problem.copied.device)]].float()
    k = min(options.k, atoms.shape[0])
    start = time.perf_counter()
    for first in range(0, wanted.numel(), options.batch_size):
        ids = wanted[first:first + options.batch_size]
        fit = omp_batched(space[ids].float(), atoms, k, ridge=options.ridge)
        picked = old_atoms[fit.indices.to(old_atoms.device)]                 # (B, k, d)
        rows[ids.to(rows.device)] = torch.bmm(fit.coef.to(picked.device).unsqueeze(1), picked).squeeze(1)
        residual[ids.cpu()] = fit.residual.cpu()
        logger.debug("omp: %d / %d tokens", first + ids.numel(), wanted.numel())
    for t in wanted.tolist():
        source[t] = "omp"
    if wanted.numel():
        logger.info("omp in the %s space: %d tokens, %d atoms, k=%d, %.1f s, median relative residual %.3f",
                 name, wanted.numel(), atoms.shape[0], k, time.perf_counter() - start,
                 float(residual[wanted.cpu()].median()))
    return finish(problem, rows, source, options.fallback, residual)
