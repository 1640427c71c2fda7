"""WECHSEL (Minixhofer et al., NAACL 2022): nearest old tokens in an aligned bilingual space.

The provider (:func:`tokengraft.transplant.auxiliary.bilingual.bilingual_alignment`) puts old and
new tokens into one space: ``problem.aux_old`` (V_old, a) for the source-language vectors
of the old vocabulary, already rotated onto ``problem.aux_new`` (V_new, a), the
target-language vectors of the new vocabulary. Each non-copied new token ``t`` gets

    top k = 10 old tokens j by cos(aux_new[t], aux_old[j]);  w = softmax(sim / 0.1);  row = sum_j w_j old[j]

Old tokens without a vector or without bytes (specials) are never neighbours. New tokens
without a vector get FVT's estimate, the mean of their old pieces' rows (source ``fvt``), as
in FOCUS; the reference initialises them randomly, which ``paper=True`` (or ``fallback="normal"``)
restores. Rows are computed on the CPU.

The provider's default space is the paper's: fastText word vectors of both languages aligned
on the FreeDict dictionary plus identical words, token vectors from the word models
(:mod:`tokengraft.transplant.auxiliary.wordvectors`). Earlier measurements with static TOKEN
vectors instead (``space="tokens"``; 24k French BPE, 15 KB of ``libreoffice:fr:heldout``, original
1.254, FVT 1.832): 3.53 with the normal fallback, 2.09 with the mean row, the dictionary did not
help; those token spaces aligned weakly (precision@1 of dictionary translations 0.11-0.17). The
README has the current table.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import validate
from tokengraft.transplant.methods.focus import PIECES, check_fill, complete, has_vector, initial_sources, mix_pieces

logger = logging.getLogger(__name__)


@dataclass
class WechselOptions:
    neighbours: int = 10        # reference: top 10 old tokens
    temperature: float = 0.1    # reference: softmax(sim / 0.1)
    chunk_size: int = 2048      # new tokens per similarity block (memory: chunk x V_old floats)
    fallback: str = PIECES      # tokens without a vector: "fvt" (mean of old pieces), "mean" row, "normal" draw
    min_similarity: float = -1.0  # best neighbour's cosine below this: the token gets the fallback (FVT) instead
    fvt_share: float = 0.0      # share of FVT's row mixed into neighbour rows: (1 - s) neighbours + s FVT
    match_norms: bool = False   # rescale each neighbour row to the weighted mean norm of its neighbours' rows
    csls: int = 0               # > 0: rank neighbours by CSLS (cos - hubness / 2, hubness over this many queries)
    paper: bool = False         # the paper's behaviour: seeded normal rows for tokens without a vector, no FVT mix


def nearest(
    queries: torch.Tensor, keys: torch.Tensor, k: int, usable: torch.Tensor | None = None, chunk_size: int = 2048,
    penalty: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine top-k of each query among the keys: (sims (n, k), ids (n, k)), best first.

    ``usable`` (K,) bool masks keys out (their similarity is -inf); where fewer than k keys are
    usable the tail has sim = -inf and must be ignored by the caller. ``penalty`` (K,): the scores
    are cos - penalty (CSLS up to a per-query constant and a factor 2 when ``penalty = hubness / 2``).
    """
    queries = torch.nn.functional.normalize(queries.float(), dim=-1)
    keys = torch.nn.functional.normalize(keys.float(), dim=-1)
    k = min(k, keys.shape[0])
    sims_out = torch.empty(queries.shape[0], k)
    ids_out = torch.empty(queries.shape[0], k, dtype=torch.long)
    for start in range(0, queries.shape[0], chunk_size):
        sims = queries[start:start + chunk_size] @ keys.T
        if usable is not None:
            sims[:, ~usable] = float("-inf")
        top, idx = (sims if penalty is None else sims - penalty).topk(k, dim=-1)
        sims_out[start:start + sims.shape[0]], ids_out[start:start + sims.shape[0]] = top, idx
    return sims_out, ids_out


def hubness(keys: torch.Tensor, queries: torch.Tensor, k: int, chunk_size: int = 2048) -> torch.Tensor:
    """(K,) mean cosine of each key to its k nearest queries (CSLS's r; Conneau et al. 2018)."""
    sims, _ = nearest(keys, queries, k, chunk_size=chunk_size)
    return sims.mean(dim=-1)


def softmax_rows(sims: torch.Tensor, ids: torch.Tensor, old: torch.Tensor, temperature: float,
                 match_norms: bool = False) -> torch.Tensor:
    """(n, d) rows = sum_j softmax(sims / temperature)_j * old[ids_j]; -inf entries get weight 0.

    ``match_norms``: each row is rescaled to sum_j w_j |old[ids_j]| (averaging shrinks norms).
    """
    weights = torch.softmax(sims / temperature, dim=-1)
    picked = old[ids].float().cpu()
    rows = torch.einsum("nk,nkd->nd", weights, picked)
    if match_norms:
        target = (weights * picked.norm(dim=-1)).sum(dim=-1, keepdim=True)
        rows = rows * target / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return rows


@register("wechsel", WechselOptions, needs=Needs(space=("bilingual",)),
          summary="WECHSEL: softmax over the 10 nearest old tokens in an aligned bilingual static space")
def wechsel(problem: InitProblem, options: WechselOptions) -> InitResult:
    """WECHSEL: softmax-weighted nearest old tokens in an aligned bilingual auxiliary space."""
    validate(problem)
    fallback = "normal" if options.paper else check_fill(options.fallback)
    if not 0.0 <= options.fvt_share <= 1.0:
        raise TokengraftError(f"wechsel fvt_share={options.fvt_share} is out of range; use 0 <= fvt_share <= 1")
    min_similarity, fvt_share = (-1.0, 0.0) if options.paper else (options.min_similarity, options.fvt_share)
    if problem.aux_new is None or problem.aux_old is None:
        raise TokengraftError("wechsel needs problem.aux_new and problem.aux_old in one aligned space")
    if problem.aux_new.shape[1] != problem.aux_old.shape[1]:
        raise TokengraftError(f"wechsel: aux_new has dim {problem.aux_new.shape[1]}, aux_old {problem.aux_old.shape[1]}")
    rows = torch.zeros(problem.new_size, problem.old.shape[1])
    source = initial_sources(problem, "no-aux")
    usable = has_vector(problem.aux_old) & torch.tensor([b is not None for b in problem.old_bytes], dtype=torch.bool)
    if not usable.any():
        logger.warning("wechsel: no old token has an auxiliary vector; every new token falls back")
        return complete(problem, rows, source, fallback)
    targets = ((problem.copied < 0) & has_vector(problem.aux_new)).nonzero().squeeze(1)
    penalty = None
    if options.csls > 0 and not options.paper and targets.numel():
        penalty = torch.full((problem.aux_old.shape[0],), float("inf"))
        keys = usable.nonzero().squeeze(1)
        penalty[keys] = hubness(problem.aux_old[keys], problem.aux_new[targets], options.csls, options.chunk_size) / 2
    placed = []
    for start in range(0, targets.numel(), options.chunk_size):
        block = targets[start:start + options.chunk_size]
        sims, ids = nearest(problem.aux_new[block], problem.aux_old, options.neighbours, usable, options.chunk_size,
                            penalty)
        near = sims[:, 0] >= min_similarity  # weak neighbours: leave the token to the fallback
        rows[block[near]] = softmax_rows(sims[near], ids[near], problem.old, options.temperature,
                                         options.match_norms and not options.paper)
        placed.append(block[near])
    placed_ids = torch.cat(placed) if placed else targets
    mix_pieces(problem, rows, placed_ids, fvt_share)
    for i in placed_ids.tolist():
        source[i] = "wechsel"
    for i in sorted(set(targets.tolist()) - set(placed_ids.tolist())):
        source[i] = "fallback:weak-neighbours"
    logger.info("wechsel: %d tokens from neighbours, %d with weak neighbours, %d copied", placed_ids.numel(),
                targets.numel() - placed_ids.numel(), int((problem.copied >= 0).sum()))
    return complete(problem, rows, source, fallback)
