"""Shared piece changes (``--share-pieces``): a step also moves the rows no batch shows.

A CPU budget reads a few pages of its corpus, and a sparse step moves only the rows those
pages use: the rows of every other new token keep their zero-shot estimate, and on text the
budget never showed (man pages, after LibreOffice help) those tokens carry most of the
transplant's excess bits. The original model healed on the same pages has no such gap: its
vocabulary is made of pieces, and moving a piece moves every word that contains it.

This gives a transplant the same sharing on its input side. The input matrix gets a shadow
matrix ``U`` with one row per *old* token that spells some new token (a new token's pieces: the
old-tokenizer ids that spell it). A step computes ``U``'s gradient from the matrix's (already masked) gradient,
``M^T g``, where ``M`` averages each new token's pieces; the optimizer steps ``U`` (its own
Adam moments, learning rate ``share x lr``); then every row moves by ``M U`` and ``U`` is
reset to zero. So the parametrisation is ``E = E_rows + M U``: a row the batch reads gets its
own step plus its pieces' shared one, and the row of a token the budget never read moves
with the pieces it shares with tokens it did read. ``U`` is zero between steps, so
checkpoints hold only the matrix (and the optimizer its moments).

Only an untied input matrix shares. On dev text (540 s of one thread from the German graft
transplant, libreoffice:de:fit; BPB of the first 40 KB of libreoffice:de:dev / manpages:de:dev)
sharing the input rows took 1.3559 / 2.0998 to 1.3361 / 2.0902; sharing the output rows too
made both worse (1.3670 / 2.1545 at the full step, 1.3425 / 2.1003 at 0.3 of it): raising a
target's output row raises every token that shares its pieces, and those are then predicted
where they do not come. A tied matrix is both, so it does not share.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from tokengraft.heal.modes import unwrap


def piece_matrix(pieces: Sequence[Sequence[int]], rows: int, old: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """(rows, old) CSR matrix averaging each row's pieces; rows beyond ``pieces``, rows
    without pieces and rows where ``keep`` is False are empty.

    >>> piece_matrix([[0, 2], [1], []], 4, 3).to_dense().tolist()
    [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    index, values = [], []
    for t, p in enumerate(pieces[:rows]):
        if p and (keep is None or bool(keep[t])):
            index += [(t, i) for i in p]
            values += [1.0 / len(p)] * len(p)
    idx = torch.tensor(index, dtype=torch.long).reshape(-1, 2).t()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(idx, torch.tensor(values), (rows, old), check_invariants=True)
        return coo.coalesce().to_sparse_csr()


@dataclass
class SharedPieces:
    """The input matrix, its shadow ``U`` (old tokens x d) and the piece matrix ``M`` (and ``M^T``)."""

    matrix: torch.nn.Parameter
    shadow: torch.nn.Parameter
    m: torch.Tensor
    mt: torch.Tensor

    @staticmethod
    def shares(model: Any) -> bool:
        """Whether ``model``'s input matrix is trained and untied (the only one that shares)."""
        base = unwrap(model)
        param, head = base.get_input_embeddings().weight, base.get_output_embeddings()
        return bool(param.requires_grad) and head is not None and head.weight is not param

    @classmethod
    def of(cls, model: Any, pieces: Sequence[Sequence[int]], keep: torch.Tensor | None = None) -> "SharedPieces | None":
        """For the trained, untied input matrix of ``model`` (else None); ``keep``: the rows allowed to move."""
        if not cls.shares(model):
            return None
        param = unwrap(model).get_input_embeddings().weight
        # one shadow row per old token that spells some new token: the rest would never move
        # (the German pair: 7,898 of SmolLM2's 49,152, a sixth of the shadow's optimizer cost)
        used = sorted({i for p in pieces for i in p})
        column = {old_id: k for k, old_id in enumerate(used)}
        compact = [[column[i] for i in p] for p in pieces]
        m = piece_matrix(compact, param.shape[0], max(1, len(used)), keep).to(param.device)
        shadow = torch.nn.Parameter(torch.zeros(max(1, len(used)), param.shape[1], device=param.device,
                                                dtype=param.dtype))
        return cls(param, shadow, m, m.t().to_sparse_csr())

    def gradients(self) -> None:
        """The shadow's gradient ``M^T g`` from the matrix's (call after masking, before the step)."""
        g = self.matrix.grad
        self.shadow.grad = None if g is None else (self.mt @ g.float()).to(self.shadow.dtype)

    def apply(self) -> None:
        """Move every row by its pieces' stepped shadow rows, then zero the shadow (after the step)."""
        with torch.no_grad():
            self.matrix.add_((self.m @ self.shadow.float()).to(self.matrix.dtype))
            self.shadow.zero_()
