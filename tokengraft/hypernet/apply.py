"""Predict rows for many tokens at once: the pure function behind ``--method hypernet``.

Tokens are sorted by the number of pieces the network reads, so each block is padded to
its own length (a 32k vocabulary is mostly 2-4 pieces), and the FVT means come from
:func:`tokengraft.transplant.methods.fvt.piece_means` over *all* pieces, exactly as FVT
computes them, so an untrained network reproduces FVT bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import torch

from tokengraft.hypernet.model import Hypernet, pad_pieces

BLOCK = 4096  # tokens per forward pass


def predict_rows(net: Hypernet, old_in: torch.Tensor, old_out: torch.Tensor, pieces: Sequence[Sequence[int]],
                 tokens: Sequence[int], block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """((n, d), (n, d)) float32 input and output rows of ``tokens`` (each with >= 1 piece).

    ``pieces[t]`` is token t's old decomposition; ``old_in`` / ``old_out`` (V_old, d) the
    base rows (the same tensor for a tied base).
    """
    from tokengraft.transplant.methods.fvt import piece_means

    tokens = list(tokens)
    d = old_in.shape[1]
    rows_in = torch.empty(len(tokens), d, device=old_in.device)
    rows_out = torch.empty(len(tokens), d, device=old_in.device)
    if not tokens:
        return rows_in, rows_out
    cap = net.config.max_pieces
    order = sorted(range(len(tokens)), key=lambda i: min(len(pieces[tokens[i]]), cap))
    with torch.no_grad():
        for start in range(0, len(order), block):
            chunk = order[start:start + block]
            mine = [tokens[i] for i in chunk]
            mean_in = piece_means(old_in, pieces, mine)
            mean_out = mean_in if old_out is old_in else piece_means(old_out, pieces, mine)
            ids, mask = pad_pieces([list(pieces[t]) for t in mine], cap, old_in.device)
            delta = net.deltas(old_in, old_out, ids, mask).float() * net.out_std
            where = torch.tensor(chunk, device=old_in.device)
            rows_in[where] = mean_in + delta[:, :d]
            rows_out[where] = mean_out + delta[:, d:]
    return rows_in, rows_out
