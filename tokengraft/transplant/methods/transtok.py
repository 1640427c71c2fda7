"""Trans-tokenization (Remy et al. 2024): new rows from the old tokens they translate to.

A parallel corpus is word-aligned and the links are mapped to token links
(:mod:`tokengraft.transplant.auxiliary.parallel`); ``problem.extras["parallel"]`` holds the
sparse (V_new, V_old) alignment counts. Each non-copied new token ``t`` with at least
``min_count`` aligned occurrences gets

    row = sum_j count[t, j] * old[j] / sum_j count[t, j]

the alignment-frequency-weighted average of the old rows (Remy et al. 2024, "Trans-Tokenization and Cross-lingual Vocabulary Transfers"). Tokens that
never align (rare subwords, tokens of pages without a translation) get FVT's estimate, the mean
of their old pieces' rows (source ``fvt``); tokens without pieces get the mean row.
``fvt_share`` mixes FVT into the aligned rows as well: row = (1 - s) aligned + s FVT.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import validate
from tokengraft.transplant.methods.focus import PIECES, check_fill, complete, initial_sources, mix_pieces

logger = logging.getLogger(__name__)

EXTRA = "parallel"  # the provider whose counts the method reads (problem.extras["parallel"])


@dataclass
class TranstokOptions:
    min_count: float = 1.0   # aligned occurrences a token needs before its alignment is trusted
    fvt_share: float = 0.0   # share of FVT's row mixed into aligned rows (0 = the paper's pure average)
    fallback: str = PIECES   # never-aligned tokens: "fvt" (mean of old pieces), "mean" row, "normal" draw


def aligned_rows(counts: torch.Tensor, old: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(len(tokens), d) count-weighted means of old rows; ``counts`` sparse (V_new, V_old).

    >>> c = torch.sparse_coo_tensor([[0, 0], [0, 1]], [3.0, 1.0], (1, 2))
    >>> aligned_rows(c, torch.tensor([[4.0, 0.0], [0.0, 4.0]]), torch.tensor([0])).tolist()
    [[3.0, 1.0]]
    """
    picked = counts.coalesce().index_select(0, tokens.cpu()).float()
    total = torch.sparse.sum(picked, dim=1).to_dense().clamp_min(1e-30)
    return torch.sparse.mm(picked, old.float().cpu()) / total.unsqueeze(1)


@register("transtok", TranstokOptions, needs=Needs(extras=(EXTRA,)),
          summary="trans-tokenization: alignment-weighted average of the old tokens a parallel corpus aligns to")
def transtok(problem: InitProblem, options: TranstokOptions) -> InitResult:
    """Trans-tokenization: row = alignment-count-weighted mean of aligned old rows; never aligned -> FVT."""
    validate(problem)
    fallback = check_fill(options.fallback)
    if not 0.0 <= options.fvt_share <= 1.0 or options.min_count <= 0:
        raise TokengraftError(f"transtok options out of range (fvt_share={options.fvt_share},"
                              f" min_count={options.min_count}); use 0 <= fvt_share <= 1, min_count > 0")
    counts = problem.extras.get(EXTRA)
    if counts is None:
        raise TokengraftError("transtok needs word-aligned parallel text: pass --corpus (a libreoffice:<lang>"
                              " corpus, aligned with the same English pages) or a line-aligned pair of files")
    if tuple(counts.shape) != (problem.new_size, problem.old.shape[0]):
        raise TokengraftError(f"alignment counts have shape {tuple(counts.shape)}, expected"
                              f" ({problem.new_size}, {problem.old.shape[0]}); align with these tokenizers")
    rows = torch.zeros(problem.new_size, problem.old.shape[1])
    source = initial_sources(problem, "unaligned")
    total = torch.sparse.sum(counts.coalesce(), dim=1).to_dense().float() if counts._nnz() else \
        torch.zeros(problem.new_size)
    todo = ((total >= options.min_count) & (problem.copied.cpu() < 0)).nonzero().squeeze(1)
    if todo.numel():
        rows[todo] = aligned_rows(counts, problem.old, todo)
        for t in todo.tolist():
            source[t] = "transtok"
    mix_pieces(problem, rows, todo, options.fvt_share)
    wanted = int((problem.copied < 0).sum())
    logger.info("transtok: %d of %d non-copied tokens aligned (%.1f%%)", todo.numel(), wanted,
             100.0 * todo.numel() / max(wanted, 1))
    return complete(problem, rows, source, fallback)
