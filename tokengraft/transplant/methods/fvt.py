"""FVT and WVT: a new token's row is the (weighted) mean of its old-tokenizer pieces' rows.

FVT (Gee et al. 2022, "Fast Vocabulary Transfer for Language Model Compression"): ``problem.pieces[t]`` are the old ids whose
bytes concatenate to the new token's bytes; the row is their plain mean. WVT weighs each
piece by its byte length, so ``b" international"`` split as ``[b" inter", b"national"]``
leans towards the longer piece. Both run as one ``embedding_bag`` over all tokens (a
262k-token vocabulary takes about a second), not a Python loop per token.

Tokens with an empty decomposition get the fallback (default: the old matrix's mean row),
``source = "fallback:empty-decomposition"`` (or ``"fallback:no-bytes"`` for specials).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, register
from tokengraft.transplant.methods.fallback import check_fallback, empty_reason, finish, validate


@dataclass
class FVTOptions:
    fallback: str = "mean"  # "mean" row of the old matrix, or "normal": seeded N(mu, sigma) per dimension


def decomposition_lengths(pieces: Sequence[Sequence[int]]) -> torch.Tensor:
    """(V,) long: how many old pieces each token decomposes into (0 = empty).

    >>> decomposition_lengths([[5], [1, 2, 3], []]).tolist()
    [1, 3, 0]
    """
    return torch.tensor([len(p) for p in pieces], dtype=torch.long)


def byte_lengths(tokens_bytes: Sequence[bytes | None]) -> torch.Tensor:
    """(V,) long: the byte length of each token, 0 for tokens without bytes (specials).

    >>> byte_lengths([b"ab", None, b"\\xc3\\xa9"]).tolist()
    [2, 0, 2]
    """
    return torch.tensor([len(b) if b is not None else 0 for b in tokens_bytes], dtype=torch.long)


def flatten_pieces(pieces: Sequence[Sequence[int]], tokens: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The decompositions of ``tokens`` as one id list plus each id's position in ``tokens``.

    Returns ``(flat, bag)``: both (P,) long, ``flat[i]`` an old id, ``bag[i]`` the index into
    ``tokens`` of the token it belongs to.

    >>> [t.tolist() for t in flatten_pieces([[7], [1, 2], [3]], [1, 2])]
    [[1, 2, 3], [0, 0, 1]]
    """
    flat = torch.tensor(list(itertools.chain.from_iterable(pieces[t] for t in tokens)), dtype=torch.long)
    lengths = torch.tensor([len(pieces[t]) for t in tokens], dtype=torch.long)
    bag = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    return flat, bag


def piece_means(old: torch.Tensor, pieces: Sequence[Sequence[int]], tokens: Sequence[int],
                piece_weights: torch.Tensor | None = None) -> torch.Tensor:
    """(len(tokens), d) float32: per token, the mean of ``old[pieces[t]]`` weighted by ``piece_weights``.

    ``piece_weights`` (V_old,) gives each old id a weight (None = 1 each); a token whose
    pieces all weigh 0 falls back to equal weights. Every token must have >= 1 piece.

    >>> old = torch.tensor([[0.0, 0.0], [2.0, 4.0], [4.0, 0.0]])
    >>> piece_means(old, [[1, 2], [1]], [0, 1]).tolist()
    [[3.0, 2.0], [2.0, 4.0]]
    """
    flat, bag = flatten_pieces(pieces, tokens)
    n, v_old = len(tokens), old.shape[0]
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= v_old):
        bad = int(flat.max()) if int(flat.max()) >= v_old else int(flat.min())
        raise TokengraftError(f"a decomposition uses old id {bad} but the old matrix has {v_old} rows;"
                              " the old tokenizer and model disagree (pass the model's own tokenizer)")
    weight = torch.ones(flat.numel()) if piece_weights is None else piece_weights.float().cpu()[flat]
    total = torch.zeros(n).index_add_(0, bag, weight)
    weight = torch.where(total[bag] > 0, weight, torch.ones_like(weight))
    total = torch.zeros(n).index_add_(0, bag, weight)
    weight = weight / total[bag]
    offsets = torch.cumsum(torch.bincount(bag, minlength=n), 0) - torch.bincount(bag, minlength=n)
    device = old.device
    # one fused gather-and-sum: no (P, d) intermediate, no Python loop per token
    return F.embedding_bag(flat.to(device), old.float(), offsets.to(device), mode="sum",
                           per_sample_weights=weight.to(device))


def _piece_transfer(problem: InitProblem, options: FVTOptions, name: str, weighted: bool) -> InitResult:
    validate(problem)
    check_fallback(options.fallback)
    lengths = decomposition_lengths(problem.pieces)
    copied = problem.copied.cpu() >= 0
    todo = (~copied & (lengths > 0)).nonzero().flatten().tolist()
    rows = torch.zeros(problem.new_size, problem.old.shape[1], device=problem.old.device)
    if todo:
        weights = byte_lengths(problem.old_bytes) if weighted else None
        rows[torch.tensor(todo, device=rows.device)] = piece_means(problem.old, problem.pieces, todo, weights)
    source = [name if n else empty_reason(problem, t) for t, n in enumerate(lengths.tolist())]
    source = [s if s == name else f"fallback:{s}" for s in source]
    return finish(problem, rows, source, options.fallback)


@register("fvt", FVTOptions, summary="mean of the old rows of the token's old-tokenizer pieces (Gee et al. 2022)")
def fvt(problem: InitProblem, options: FVTOptions) -> InitResult:
    """Fast vocabulary transfer: row = mean(old[pieces[t]]); overlap copied; empty -> fallback."""
    return _piece_transfer(problem, options, "fvt", weighted=False)


@register("wvt", FVTOptions, summary="FVT with each piece weighted by its byte length")
def wvt(problem: InitProblem, options: FVTOptions) -> InitResult:
    """Weighted vocabulary transfer: row = sum_i len(piece_i) old[piece_i] / sum_i len(piece_i)."""
    return _piece_transfer(problem, options, "wvt", weighted=True)
