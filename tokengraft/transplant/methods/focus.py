"""FOCUS (Dobler & de Melo, EMNLP 2023): new rows as sparse convex combinations of anchors.

Anchors are new tokens that also exist in the old vocabulary (copied rows) and, by default,
new tokens equal to an old one up to case and the word-boundary space (``b" Paris"`` ~
``b"paris"``: fuzzy anchors, whose rows are copied too). In an auxiliary space where new tokens
have vectors (``problem.aux_new``: static token embeddings trained on target-language text
tokenized with the NEW tokenizer, see :mod:`tokengraft.transplant.auxiliary.static`), each other
new token ``t`` with a vector gets

    w = sparsemax(cos(aux[t], aux[anchor_j]) over anchors j);   row = sum_j w_j * old[anchor_j]

sparsemax puts exactly zero weight on all but the most similar anchors.

How tokengraft's default differs from the paper (``paper=True`` restores the paper's behaviour):

* tokens without an auxiliary vector (rarer than the static trainer's min count: most of a 32k
  vocabulary on a few MB of text) get FVT's estimate, the mean of their old pieces' rows
  (source ``fvt``), instead of the paper's seeded normal draw; tokens without pieces (specials)
  get the mean row;
* fuzzy anchors are on (the paper's reference implementation has them off by default).

Measured (SmolLM2-135M -> a 24k BPE trained on ``libreoffice:fr:train``; 15 KB of
``libreoffice:fr:heldout``; original model 1.254, FVT 1.832): with the paper's normal fallback
FOCUS scored 3.19 (random rows hurt a tied model badly), with the mean row 1.79; the README has
the current table (FVT fallback, fuzzy anchors) on two language pairs.

Fallback rows and the exact copy of the overlap come from :mod:`.fallback`; this file holds the
helpers the other auxiliary-space methods share (:func:`has_vector`, :func:`initial_sources`,
:func:`fill_with_pieces`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import FALLBACKS, finish, validate
from tokengraft.transplant.methods.sparsemax import sparsemax

logger = logging.getLogger(__name__)


PIECES = "fvt"  # the fallback that estimates a token from its old pieces
FILL_FALLBACKS = (PIECES, *FALLBACKS)


@dataclass
class FocusOptions:
    fuzzy_anchors: bool = True   # also treat tokens equal up to case and a leading space as copies/anchors
    candidates: int = 256        # sparsemax is solved exactly on the top candidates (wider where needed)
    chunk_size: int = 1024       # new tokens per similarity block (memory: chunk x anchors floats)
    fallback: str = PIECES       # tokens without a vector: "fvt" (mean of old pieces), "mean" row, "normal" draw
    paper: bool = False          # the paper's behaviour: no fuzzy anchors, seeded normal fallback


def check_fill(how: str) -> str:
    if how not in FILL_FALLBACKS:
        raise TokengraftError(f"unknown fallback {how!r}; choose one of: {', '.join(FILL_FALLBACKS)}")
    return how


def fill_with_pieces(problem: InitProblem, rows: torch.Tensor, source: list[str]) -> int:
    """Give every token still marked ``fallback:<reason>`` (not copied, with old pieces) FVT's row.

    FVT's estimate, the mean of the old rows of the token's pieces (FVT, Gee et al. 2022), is a
    far better guess for a token a method could not place than a random or mean row. Changes
    ``rows`` (V_new, d) and ``source`` in place (source ``"fvt"``); returns how many it filled.
    """
    from tokengraft.transplant.methods.fvt import piece_means

    todo = [t for t, s in enumerate(source)
            if s.startswith("fallback:") and problem.copied[t] < 0 and problem.pieces[t]]
    if todo:
        rows[torch.tensor(todo)] = piece_means(problem.old, problem.pieces, todo).to(rows.device, rows.dtype)
        for t in todo:
            source[t] = PIECES
    return len(todo)


def mix_pieces(problem: InitProblem, rows: torch.Tensor, tokens: torch.Tensor, share: float) -> None:
    """rows[t] = (1 - share) rows[t] + share FVT(t) for the ``tokens`` that have old pieces (in place).

    >>> from types import SimpleNamespace
    >>> p = SimpleNamespace(old=torch.tensor([[2.0], [4.0]]), pieces=[[0, 1], []])
    >>> rows = torch.tensor([[1.0], [7.0]]); mix_pieces(p, rows, torch.tensor([0, 1]), 0.5); rows.tolist()
    [[2.0], [7.0]]
    """
    from tokengraft.transplant.methods.fvt import piece_means

    with_pieces = [t for t in tokens.tolist() if problem.pieces[t]]
    if share > 0 and with_pieces:
        ids = torch.tensor(with_pieces)
        fvt = piece_means(problem.old, problem.pieces, with_pieces).to(rows.device, rows.dtype)
        rows[ids] = (1 - share) * rows[ids] + share * fvt


def complete(problem: InitProblem, rows: torch.Tensor, source: list[str], how: str) -> InitResult:
    """:func:`finish` after FVT rows for the unplaced tokens when ``how == "fvt"`` (then mean rows for the rest)."""
    if check_fill(how) == PIECES:
        fill_with_pieces(problem, rows, source)
        how = "mean"
    return finish(problem, rows, source, how)


def has_vector(aux: torch.Tensor) -> torch.Tensor:
    """(V,) bool: rows that are real auxiliary vectors (finite and non-zero)."""
    return torch.isfinite(aux).all(dim=-1) & (aux.abs().sum(dim=-1) > 0)


def initial_sources(problem: InitProblem, reason: str) -> list[str]:
    """Every token starts as a fallback (``fallback:no-bytes`` for specials, else ``reason``);
    methods overwrite what they estimate and :func:`finish` fills the rest and the copies."""
    return ["fallback:no-bytes" if b is None else f"fallback:{reason}" for b in problem.new_bytes]


def fuzzy_matches(new_bytes: list[bytes | None], old_bytes: list[bytes | None], copied: torch.Tensor) -> torch.Tensor:
    """(V_new,) old id equal to each non-copied new token up to case and a leading space, -1 if none.

    Prefers a match that keeps the word boundary (b" Paris" -> b" paris") over one that drops it.

    >>> fuzzy_matches([b" Paris", b"x"], [b" paris", b"y"], torch.tensor([-1, -1])).tolist()
    [0, -1]
    """
    bounded: dict[bytes, int] = {}
    bare: dict[bytes, int] = {}
    for i, b in enumerate(old_bytes):
        if b:
            bounded.setdefault(_lower(b), i)
            bare.setdefault(_lower(b.removeprefix(b" ")), i)
    out = torch.full((len(new_bytes),), -1, dtype=torch.long)
    for t, b in enumerate(new_bytes):
        if b and copied[t] < 0:
            out[t] = bounded.get(_lower(b), bare.get(_lower(b.removeprefix(b" ")), -1))
    return out


def sparse_convex_rows(
    targets: torch.Tensor, anchors: torch.Tensor, anchor_rows: torch.Tensor, options: FocusOptions
) -> torch.Tensor:
    """(n, d) rows = sparsemax(cos(targets, anchors)) @ anchor_rows.

    ``targets`` (n, a) and ``anchors`` (A, a) auxiliary vectors, ``anchor_rows`` (A, d).
    Sparsemax is exact: it is solved on the top ``candidates`` similarities and, for the rare
    row whose support fills all of them, again on the full row.
    """
    targets = torch.nn.functional.normalize(targets.float(), dim=-1)
    anchors = torch.nn.functional.normalize(anchors.float(), dim=-1)
    out = torch.empty(targets.shape[0], anchor_rows.shape[1])
    k = min(options.candidates, anchors.shape[0])
    for start in range(0, targets.shape[0], options.chunk_size):
        sims = targets[start:start + options.chunk_size] @ anchors.T          # (c, A)
        top, idx = sims.topk(k, dim=-1)
        top_weights = sparsemax(top)
        weights = torch.zeros_like(sims).scatter_(1, idx, top_weights)
        full = (top_weights > 0).all(dim=1) & (k < anchors.shape[0])
        if full.any():  # support may extend past the candidates: solve those rows on everything
            weights[full] = sparsemax(sims[full])
        out[start:start + sims.shape[0]] = torch.sparse.mm(weights.to_sparse(), anchor_rows)
    return out


@register("focus", FocusOptions, needs=Needs(space=("static",)),
          summary="FOCUS: sparsemax-weighted anchors by similarity in static token embeddings of the target text")
def focus(problem: InitProblem, options: FocusOptions) -> InitResult:
    """FOCUS: sparsemax-weighted anchors by similarity in an auxiliary space of the new vocabulary."""
    validate(problem)
    fuzzy, fallback = (False, "normal") if options.paper else (options.fuzzy_anchors, check_fill(options.fallback))
    if problem.aux_new is None or problem.aux_new.shape[0] != problem.new_size:
        raise TokengraftError("focus needs problem.aux_new with one row per new token")
    rows = torch.zeros(problem.new_size, problem.old.shape[1])
    source = initial_sources(problem, "no-aux")
    anchor_old = problem.copied.clone()
    if fuzzy:
        matches = fuzzy_matches(problem.new_bytes, problem.old_bytes, problem.copied)
        matched = matches >= 0
        rows[matched] = problem.old[matches[matched]].float().cpu()
        anchor_old[matched] = matches[matched]
        for i in matched.nonzero().squeeze(1).tolist():
            source[i] = "focus"
    is_anchor = anchor_old >= 0
    valid = has_vector(problem.aux_new)
    usable = (is_anchor & valid).nonzero().squeeze(1)
    if usable.numel() == 0:
        logger.warning("focus: no anchor has an auxiliary vector; every new token falls back")
        source = [s if s != "fallback:no-aux" else "fallback:no-anchors" for s in source]
        return complete(problem, rows, source, fallback)
    targets = (~is_anchor & valid).nonzero().squeeze(1)
    if targets.numel():
        anchor_rows = problem.old[anchor_old[usable]].float().cpu()
        rows[targets] = sparse_convex_rows(problem.aux_new[targets], problem.aux_new[usable], anchor_rows, options)
        for i in targets.tolist():
            source[i] = "focus"
    logger.info("focus: %d anchors with vectors, %d tokens combined, %d without a vector (fallback %s)",
             usable.numel(), targets.numel(), int((~is_anchor & ~valid).sum()), fallback)
    return complete(problem, rows, source, fallback)


def _lower(b: bytes) -> bytes:
    try:
        return b.decode("utf-8").lower().encode("utf-8")
    except UnicodeDecodeError:
        return b.lower()
