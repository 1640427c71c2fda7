"""TokenAdapt hybrid (2025): a local estimate from the token's own pieces, a global one from
its nearest old tokens, both weighted by similarities in a sentence embedder's space.

``problem.aux_new`` (V_new, a) = ext(new token strings), ``problem.aux_old`` (V_old, a) =
ext(old token strings), from :func:`tokengraft.transplant.auxiliary.strings.string_embeddings`.

* local: pieces o_1..o_n = ``problem.pieces[t]``; sim_i = cos(ext(t), ext(o_i)); a = softmax(sim);
  len_i = bytes(o_i) / bytes(t); w = softmax(((a + len) / 2) / T); e_loc = sum_i w_i old[o_i].
* global: top k = 3 old tokens by cos(ext(t), ext(j)); w = softmax(sim / T); neighbours with
  sim < threshold dropped and the rest renormalised; e_glob = sum_j w_j old[j].
* e = (1 - lambda) e_loc + lambda e_glob; one estimate alone where only one exists; seeded
  normal (``fallback:no-estimate``) where neither does.

A missing vector (token not text, e.g. a lone UTF-8 fragment) counts as similarity 0 in the
local estimate and means no global estimate. Rows are computed on the CPU.

Measured (SmolLM2-135M -> the 24k French BPE of ``libreoffice:fr:train``, MiniLM-L6 strings;
bits per byte on 15 KB of ``libreoffice:fr:heldout``): 1.743 against FVT's 1.832 and the
original model's 1.254; 16 of 16.9k new tokens had neither estimate.

>>> local_weights(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.75, 0.25]]), torch.ones(1, 2, dtype=torch.bool), 0.3)
tensor([[0.6971, 0.3029]])
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import check_fallback, finish, validate
from tokengraft.transplant.methods.focus import has_vector, initial_sources

logger = logging.getLogger(__name__)


@dataclass
class TokenAdaptOptions:
    temperature: float = 0.3    # T in both softmaxes
    neighbours: int = 3         # global estimate: top k old tokens
    threshold: float = 0.0      # global estimate: neighbours with similarity below this are dropped
    mix: float = 0.3            # lambda: weight of the global estimate
    chunk_size: int = 512       # new tokens per block (a block of similarities: 512 x V_old floats)
    fallback: str = "normal"    # tokens with neither estimate: seeded N(mu, sigma) per dimension, or "mean"


def local_weights(sims: torch.Tensor, length_share: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """(n, L) weights of each token's pieces; padded slots (mask False) get 0.

    ``sims`` (n, L) cos(ext(t), ext(o_i)), ``length_share`` (n, L) bytes(o_i)/bytes(t).
    """
    neg = torch.tensor(float("-inf"))
    a = torch.softmax(torch.where(mask, sims, neg), dim=-1)
    return torch.softmax(torch.where(mask, ((a + length_share) / 2) / temperature, neg), dim=-1)


def global_weights(sims: torch.Tensor, temperature: float, threshold: float) -> torch.Tensor:
    """(n, k) weights of the nearest neighbours: softmax(sim / T), drop sim < threshold, renormalise.

    Rows where every neighbour is dropped are all zero (no global estimate).
    """
    weights = torch.softmax(sims / temperature, dim=-1)
    weights = torch.where(sims >= threshold, weights, torch.zeros_like(weights))
    total = weights.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, weights / total.clamp(min=1e-30), torch.zeros_like(weights))


@dataclass
class Block:
    """One block of new tokens: which old rows each estimate combines, with which weights."""
    local: torch.Tensor            # (n,) tokens with a local estimate
    local_ids: torch.Tensor        # (n, L) their pieces (padded with 0, weight 0)
    local_weights: torch.Tensor    # (n, L)
    glob: torch.Tensor             # (m,) tokens with a global estimate
    glob_ids: torch.Tensor         # (m, k) their nearest old tokens
    glob_weights: torch.Tensor     # (m, k)
    both: torch.Tensor             # (m, 1) bool: the token also has a local estimate (then they are mixed)


@dataclass
class TokenAdaptWeights:
    """Everything TokenAdapt computes before it touches a matrix: the same for input and output rows."""
    blocks: list[Block]
    source: list[str]              # (V_new) "tokenadapt" | "fallback:<reason>"
    mix: float


def local_weights_of(problem: InitProblem, tokens: torch.Tensor, temperature: float,
                     lengths: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (n, L), weights (n, L)) of the pieces of ``tokens`` (each with at least one piece).

    ``lengths``: (old, new) byte lengths of every token (:func:`byte_lengths`), computed once by a
    caller that asks for many blocks.
    """
    old_len, new_len = lengths if lengths is not None else byte_lengths(problem)
    pieces = [problem.pieces[t] for t in tokens.tolist()]
    counts = torch.tensor([len(p) for p in pieces], dtype=torch.long)
    mask = torch.arange(int(counts.max()))[None] < counts[:, None]
    ids = torch.zeros(mask.shape, dtype=torch.long)
    ids[mask] = torch.tensor([i for p in pieces for i in p], dtype=torch.long)  # row-major: each row's pieces in order
    share = torch.where(mask, old_len[ids] / new_len[tokens].clamp(min=1)[:, None], 0.0)
    unit_new = torch.nn.functional.normalize(problem.aux_new[tokens].float(), dim=-1)
    unit_old = torch.nn.functional.normalize(problem.aux_old[ids].float(), dim=-1)
    sims = torch.einsum("na,nla->nl", unit_new, unit_old)  # zero vectors give similarity 0
    return ids, local_weights(sims, share, mask, temperature)


def byte_lengths(problem: InitProblem) -> tuple[torch.Tensor, torch.Tensor]:
    """(old (V_old,), new (V_new,)) float byte lengths of the tokens; 0 where a token has no bytes."""
    return tuple(torch.tensor([len(b or b"") for b in table], dtype=torch.float32)
                 for table in (problem.old_bytes, problem.new_bytes))


def global_weights_of(problem: InitProblem, tokens: torch.Tensor, keys: "Keys",
                      options: TokenAdaptOptions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens that have a global estimate, their neighbours' ids (m, k), weights (m, k)); a token whose
    neighbours are all below the threshold has none."""
    if tokens.numel() == 0 or keys.ids.numel() == 0:
        return tokens[:0], torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0)
    queries = torch.nn.functional.normalize(problem.aux_new[tokens].float(), dim=-1)
    sims, local = (queries @ keys.vectors.T).topk(min(options.neighbours, keys.ids.numel()), dim=-1)
    weights = global_weights(sims, options.temperature, options.threshold)
    found = weights.sum(dim=-1) > 0
    return tokens[found], keys.ids[local][found], weights[found]


@dataclass
class Keys:
    """The old tokens a global estimate may use, with their unit auxiliary vectors (normalised once)."""
    ids: torch.Tensor              # (K,) old ids
    vectors: torch.Tensor          # (K, a) unit vectors


def usable_keys(problem: InitProblem) -> Keys:
    """Old tokens with bytes and an auxiliary vector: only these are searched for neighbours."""
    usable = has_vector(problem.aux_old) & torch.tensor([b is not None for b in problem.old_bytes], dtype=torch.bool)
    ids = usable.nonzero().flatten()
    return Keys(ids, torch.nn.functional.normalize(problem.aux_old[ids].float(), dim=-1))


def tokenadapt_weights(problem: InitProblem, options: TokenAdaptOptions) -> TokenAdaptWeights:
    """The local and global weights of every new token; reads the auxiliary vectors, never ``problem.old``."""
    validate(problem)
    check_fallback(options.fallback)
    if problem.aux_new is None or problem.aux_old is None:
        raise TokengraftError("tokenadapt needs problem.aux_new and problem.aux_old from the same embedder")
    source = initial_sources(problem, "no-estimate")
    todo = problem.copied.cpu() < 0
    has_local = todo & torch.tensor([len(p) > 0 and b is not None for p, b in zip(problem.pieces, problem.new_bytes)],
                                    dtype=torch.bool)
    keys, lengths = usable_keys(problem), byte_lengths(problem)
    has_global = todo & has_vector(problem.aux_new) & (keys.ids.numel() > 0)
    blocks = []
    for start in range(0, problem.new_size, options.chunk_size):
        block = torch.arange(start, min(start + options.chunk_size, problem.new_size))
        loc, glob = block[has_local[block]], block[has_global[block]]
        loc_ids, loc_w = local_weights_of(problem, loc, options.temperature, lengths) if loc.numel() else (None, None)
        glob, glob_ids, glob_w = global_weights_of(problem, glob, keys, options)
        blocks.append(Block(loc, loc_ids, loc_w, glob, glob_ids, glob_w, has_local[glob].unsqueeze(1)))
        for i in torch.cat([loc, glob]).tolist():
            source[i] = "tokenadapt"
    logger.info("tokenadapt: %d local estimates, %d global estimates, %d tokens with neither",
                sum(b.local.numel() for b in blocks), sum(b.glob.numel() for b in blocks),
                sum(s.startswith("fallback:") for s, t in zip(source, todo.tolist()) if t))
    return TokenAdaptWeights(blocks, source, options.mix)


def tokenadapt_rows(problem: InitProblem, weights: TokenAdaptWeights, fallback: str) -> InitResult:
    """The rows of ``problem.old`` that ``weights`` describe, fallbacks filled (rows are computed on the CPU)."""
    rows = torch.zeros(problem.new_size, problem.old.shape[1])
    mix = weights.mix
    for b in weights.blocks:
        if b.local.numel():
            rows[b.local] = torch.einsum("nl,nld->nd", b.local_weights, problem.old[b.local_ids].float().cpu())
        if b.glob.numel():
            e_glob = torch.einsum("nk,nkd->nd", b.glob_weights, problem.old[b.glob_ids].float().cpu())
            rows[b.glob] = torch.where(b.both, (1 - mix) * rows[b.glob] + mix * e_glob, e_glob)
    return finish(problem, rows, list(weights.source), fallback)


@register("tokenadapt", TokenAdaptOptions, needs=Needs(space=("strings",)), prepare=tokenadapt_weights,
          summary="TokenAdapt: local (pieces) + global (nearest old tokens) estimates weighted by a sentence embedder")
def tokenadapt(problem: InitProblem, options: TokenAdaptOptions) -> InitResult:
    """TokenAdapt hybrid: local piece estimate mixed with a global nearest-neighbour estimate."""
    weights = problem.shared if problem.shared is not None else tokenadapt_weights(problem, options)
    return tokenadapt_rows(problem, weights, options.fallback)
