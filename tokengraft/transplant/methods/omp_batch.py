"""Batched orthogonal matching pursuit: many targets, one dictionary, few large matrix products.

Greedy OMP (Pati et al. 1993; for tokenizer transplants: "Training-Free Tokenizer Transplantation
via Orthogonal Matching Pursuit", 2025): per target x, k times: pick the atom with the largest
|<residual, atom>|, re-solve least squares on the chosen atoms. :func:`omp_reference` (one target,
``lstsq`` every step) is the readable version this one is tested against.

Two parts cost something:

* **Coefficients** (Batch-OMP's Cholesky part, Rubinstein, Zibulevsky & Elad 2008): the inverse
  Cholesky factor of the chosen atoms' Gram matrix grows by one row per step, so each step's
  least-squares solve is O(t^2) instead of a fresh factorisation (:class:`InverseCholesky`).
* **Selection**: the correlations of the residual with all N atoms, N x e per target and step
  (~80% of the time). ``selection="gram"`` (default) is Batch-OMP's other half, correlations
  a = D x - G[S, :]^T x_S from a float16 Gram matrix, N x t instead of N x e per step, run by a
  compiled kernel one target per core so that the target's t rows of G stay in cache
  (:mod:`.omp_gram`); it falls back to ``"screened"`` where it cannot run. ``"screened"`` computes
  the correlations with one bfloat16 matrix product (about 3x the float32 rate on AVX512-BF16
  CPUs), then re-scores in float32 the few atoms (median 2-8 on Gemma-3's embeddings) whose
  bfloat16 score lies within a proven rounding bound of the best (:func:`_screened_pick`).
  Both give the plain pursuit's picks; ``"exact"`` scans in float32.

Measured and dropped (2-core CPU, SmolLM2 -> Gemma-3, 46,257 atoms x 640, k = 64): the Gram
route in pure torch, a batch of targets per step. The t rows of G differ per target (the 1,024
targets of one batch pick 28,896 distinct atoms), so every step streams B x t x N floats from
memory: 51.6 s per 1k targets on one core against 25-28 s for the bfloat16 scan. Shortlists that
skip the scan on some steps change the pursuit (one different pick changes the rest: median row
cosine 0.3-0.4 against the exact pursuit), so every step scores all atoms.

Atoms (N, e) are prepared once (:class:`Dictionary`) and shared by all batches.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

# An atom closer than 1% of its norm to the span of the atoms already chosen (squared: 1e-4) is
# numerically a combination of them in float32: it gets coefficient 0 instead of a huge,
# rounding-driven one (duplicate rows exist in real embedding matrices).
DEPENDENT = 1e-4
# A target whose squared residual is below this share of its squared norm (residual < ~0.3%) is
# finished: later atoms get coefficient 0. Otherwise atoms picked by rounding noise get large
# coefficients that cancel in the donor space but not after the transfer to the old rows.
STOP2 = 1e-5
SELECTIONS = ("gram", "screened", "exact")
ROUND = 2.0 ** -8       # bfloat16 unit roundoff (8 significant bits): the rounding of a score
BAND = 2048             # candidates a target may have before it is re-scored in float32 instead
GRAM_RERUN = 1024       # targets per screened batch for those the gram selection leaves over
BLOCK = 256             # atoms per block of the candidate search (the bfloat16 copy is padded to it)


@dataclass
class OMPFit:
    indices: torch.Tensor    # (B, k) long: chosen atoms in selection order
    coef: torch.Tensor       # (B, k) coefficients (0 for an atom dropped as dependent)
    residual: torch.Tensor   # (B,) ||x - coef @ atoms[indices]|| / ||x|| (0 where x = 0)

    def slice(self, start: int, stop: int) -> "OMPFit":
        return OMPFit(self.indices[start:stop], self.coef[start:stop], self.residual[start:stop])


class Dictionary:
    """The atoms (N, e) in float32, plus the bfloat16 copy the screened selection scans with."""

    def __init__(self, atoms: torch.Tensor, device: torch.device | str | None = None):
        self.atoms = atoms.to(device=device or atoms.device, dtype=torch.float32).contiguous()
        self.max_norm = float(self.atoms.norm(dim=1).max()) if self.atoms.numel() else 0.0
        self._low: torch.Tensor | None = None
        self.low_error = self.low_norm = 0.0  # max ||a' - a||, max ||a'|| of the bfloat16 atoms a'
        self._gram: tuple[torch.Tensor, float] | None = None
        self._norms: torch.Tensor | None = None
        self.gram_fallback: str | None = None  # why the gram selection cannot run ("" when it can)
        # by the gram selection: (atoms re-scored in float32, targets left to screened, refined bands)
        self.gram_stats = (0, 0, 0)

    @property
    def size(self) -> int:
        return self.atoms.shape[0]

    def low(self) -> torch.Tensor:
        """(N', e) bfloat16 copy of the atoms, zero rows appended up to a multiple of ``BLOCK``; made once."""
        if self._low is None:
            low = self.atoms.to(torch.bfloat16)
            self.low_error = float((low.float() - self.atoms).norm(dim=1).max()) if self.size else 0.0
            self.low_norm = float(low.float().norm(dim=1).max()) if self.size else 0.0
            self._low = torch.nn.functional.pad(low, (0, 0, 0, -self.size % BLOCK))
        return self._low

    def norms(self) -> torch.Tensor:
        if self._norms is None:
            self._norms = self.atoms.norm(dim=1).contiguous()
        return self._norms

    def gram(self) -> tuple[torch.Tensor, float]:
        """(G / scale in float16, scale) for the gram selection; built once (:func:`.omp_gram.gram_matrix`)."""
        if self._gram is None:
            from tokengraft.transplant.methods.omp_gram import gram_matrix

            self._gram = gram_matrix(self.atoms)
        return self._gram


class InverseCholesky:
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


def _screened_pick(residual: torch.Tensor, dictionary: Dictionary, chosen: torch.Tensor) -> torch.Tensor:
    """The exact OMP pick, found with a bfloat16 scan and a proven band of float32-checked candidates.

    All N scores |<r, a_i>| come from one bfloat16 product (about 3x the float32 rate on
    AVX512-BF16 and tensor-core hardware). With r', a' the rounded inputs, a score moves by at most
    e_i = ||r' - r|| max||a|| + ||r'|| max||a' - a|| + g ||r'|| max||a'|| + ROUND |s_i|
    (rounded inputs; float32 accumulation of e products, g = 1.01 e 2^-24; bfloat16 output). So
    with m the largest bfloat16 score, the exact best scores at least L = m - e(m), and only atoms
    whose bfloat16 score is >= (m (1 - ROUND) - 2 e_0) / (1 + ROUND) can reach L (e_0: e without
    its last term). Those (found block by block) are re-scored in float32; the best one not yet
    chosen is the plain pursuit's pick when it scores >= L. A target whose band holds more than
    ``BAND`` atoms or whose check fails (its best bfloat16 atom was one already chosen: all scores
    ~0) is re-scored in float32.
    """
    batch = residual.shape[0]
    low = residual.to(torch.bfloat16)
    scores = torch.mm(low, dictionary.low().T).abs_()                       # (B, blocks x BLOCK)
    blocks = scores.view(batch, scores.shape[1] // BLOCK, BLOCK)
    block_top = blocks.amax(dim=2)
    top = block_top.amax(dim=1).float()
    low_norm = low.float().norm(dim=1)
    accumulation = 1.01 * residual.shape[1] * 2.0 ** -24
    slack = ((low.float() - residual).norm(dim=1) * dictionary.max_norm
             + low_norm * (dictionary.low_error + accumulation * dictionary.low_norm))
    floor = top - slack - ROUND * top                                        # L
    band = (top * (1.0 - ROUND) - 2.0 * slack) / (1.0 + ROUND)
    band = (band - band.abs() * 2.0 ** -6 - torch.finfo(torch.float32).tiny).to(torch.bfloat16)  # rounded down
    block_rows, block_ids = (block_top >= band.unsqueeze(1)).nonzero(as_tuple=True)
    inside = blocks[block_rows, block_ids] >= band[block_rows].unsqueeze(1)  # (P, BLOCK)
    count = torch.zeros(batch, dtype=torch.long, device=residual.device).index_add_(0, block_rows, inside.sum(1))
    crowded = count > BAND                                                   # left to the float32 re-scan
    pair, offset = (inside & ~crowded[block_rows].unsqueeze(1)).nonzero(as_tuple=True)
    rows, cols = block_rows[pair], block_ids[pair] * BLOCK + offset
    real = cols < dictionary.size                                            # padding atoms score 0
    rows, cols = rows[real], cols[real]
    exact = (residual[rows] * dictionary.atoms[cols]).sum(1).abs_()
    if chosen.shape[1]:
        exact.masked_fill_((chosen[rows] == cols.unsqueeze(1)).any(1), float("-inf"))
    best = torch.full((batch,), float("-inf"), device=residual.device).scatter_reduce(0, rows, exact, "amax")
    winner = (exact == best[rows]) & (exact > float("-inf"))
    new = torch.full((batch,), dictionary.size, dtype=torch.long, device=residual.device)
    new = new.scatter_reduce(0, rows[winner], cols[winner], "amin")        # first index on ties
    unsure = (best < floor) | crowded | (new >= dictionary.size)
    if bool(unsure.any()):
        again = unsure.nonzero().squeeze(1)
        new[again] = _exact_pick(residual[again], dictionary.atoms, chosen[again])
    return new


def _exact_pick(residual: torch.Tensor, atoms: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    scores = torch.mm(residual, atoms.T).abs_()  # B x N x e: the whole cost of the plain pursuit
    if chosen.shape[1]:
        scores.scatter_(1, chosen, -1.0)  # never pick an atom twice
    return scores.argmax(dim=1)


def _relative_residual(targets: torch.Tensor, atoms: torch.Tensor, fit_idx: torch.Tensor,
                       coef: torch.Tensor) -> torch.Tensor:
    approx = torch.bmm(coef.unsqueeze(1), atoms[fit_idx]).squeeze(1)
    norm = targets.norm(dim=1)
    return torch.where(norm > 0, (targets - approx).norm(dim=1) / norm.clamp_min(1e-30), torch.zeros_like(norm))


def resolve_selection(dictionary: Dictionary, selection: str, device: torch.device) -> str:
    """``selection``, except "gram" where its kernel cannot run: then "screened" (logged once per dictionary)."""
    if selection != "gram":
        return selection
    if dictionary.gram_fallback is None:
        from tokengraft.transplant.methods.omp_gram import unavailable

        why = "it runs on CPU tensors only" if torch.device(device).type != "cpu" else unavailable(dictionary.size)
        dictionary.gram_fallback = why or ""
        if why:
            logger.warning("omp: gram selection unavailable (%s); using the screened selection", why)
    return "screened" if dictionary.gram_fallback else "gram"


def omp_batched(targets: torch.Tensor, atoms: torch.Tensor | Dictionary, k: int, *, ridge: float = 1e-6,
                selection: str = "gram") -> OMPFit:
    """Greedy OMP for a batch of targets, on the targets' device.

    targets: (B, e) float32; atoms: (N, e) or a prepared :class:`Dictionary`; ``1 <= k <= N``.
    ``selection="exact"`` scores all atoms in float32 at every step, as :func:`omp_reference`
    does; ``"screened"`` finds the same atoms with a checked bfloat16 scan (:func:`_screened_pick`).

    >>> fit = omp_batched(torch.tensor([[0.0, 2.0, -1.0]]), torch.eye(3), 2)
    >>> fit.indices.tolist(), [round(c, 4) for c in fit.coef[0].tolist()]
    ([[1, 2]], [2.0, -1.0])
    """
    dictionary = atoms if isinstance(atoms, Dictionary) else Dictionary(atoms, targets.device)
    if not 1 <= k <= dictionary.size:
        raise TokengraftError(f"k = {k} must be between 1 and the number of atoms ({dictionary.size})")
    if selection not in SELECTIONS:
        raise TokengraftError(f"unknown selection {selection!r}; choose one of {SELECTIONS}")
    targets = targets.float()
    if selection == "gram":
        selection = resolve_selection(dictionary, selection, targets.device)
        if selection == "gram":
            from tokengraft.transplant.methods.omp_gram import gram_pursuit

            fit = OMPFit(*gram_pursuit(targets, dictionary, k, ridge, DEPENDENT, STOP2, BAND))
            crowded = (fit.indices[:, 0] < 0).nonzero().squeeze(1)
            for first in range(0, crowded.numel(), GRAM_RERUN):  # bands too wide to check: screened
                ids = crowded[first:first + GRAM_RERUN]
                rest = omp_batched(targets[ids], dictionary, k, ridge=ridge, selection="screened")
                fit.indices[ids], fit.coef[ids], fit.residual[ids] = rest.indices, rest.coef, rest.residual
            return fit
    atoms = dictionary.atoms
    batch, dim = targets.shape
    indices = torch.zeros(batch, k, dtype=torch.long, device=targets.device)
    chosen = targets.new_zeros(batch, k, dim)
    chol = InverseCholesky(targets, k, ridge)
    residual, coef = targets, targets.new_zeros(batch, 0)
    for t in range(k):
        if selection == "exact":
            new = _exact_pick(residual, atoms, indices[:, :t])
        else:
            new = _screened_pick(residual, dictionary, indices[:, :t])
        indices[:, t] = new
        atom = atoms[new]
        chosen[:, t] = atom
        g = torch.bmm(chosen[:, :t], atom.unsqueeze(2)).squeeze(2)
        chol.extend(t, g, (atom * atom).sum(1), (targets * atom).sum(1))
        coef = chol.coef(t + 1)
        residual = targets - torch.bmm(coef.unsqueeze(1), chosen[:, : t + 1]).squeeze(1)
    return OMPFit(indices, coef, _relative_residual(targets, atoms, indices, coef))
