"""``graft``: tokengraft's own method, an ensemble of what the transplant benchmark shows works.

Three estimates of a new token's row, each good at something different:

* ``semantic``: the TokenAdapt hybrid (pieces and nearest old tokens weighted by a sentence
  embedder's similarities, :mod:`~tokengraft.transplant.methods.tokenadapt`); the best single
  estimate of input rows in our benchmark;
* ``mean``: WVT, the byte-length-weighted mean of the old pieces' rows;
* ``exact``: ``old[p_1] + c_t * u``, the base model's own logit for the token's whole byte
  string: ``old[p_1] . h`` is exactly the logit of the first piece, and ``c_t * u`` adds about
  ``c_t``, the log-probability of the remaining pieces measured in target-language context
  (:mod:`tokengraft.transplant.auxiliary.continuation`). It only makes sense for output rows.

Input rows are ``semantic``. Output rows are ``0.5 semantic + 0.35 mean + 0.15 exact``, so a
tied model comes out untied (its output matrix adds ``V x d`` parameters). The weights were
chosen on SmolLM2-135M -> a 32k French BPE, 20 KB of LibreOffice French held-out text
(BPB; the original model: 1.173):

| input / output rows                          | BPB   |
|----------------------------------------------|-------|
| FVT / FVT (tied)                             | 1.803 |
| WVT / 0.7 mean + 0.3 exact                   | 1.695 |
| semantic / semantic (= tokenadapt, tied)     | 1.672 |
| semantic / 0.85 semantic + 0.15 exact        | 1.673 |
| semantic / 0.5 semantic + 0.5 mean           | 1.676 |
| semantic / 0.5 semantic + 0.35 mean + 0.15 exact | **1.658** |

``exact`` alone overrates a token that is a prefix of longer ones (its bytes' probability
includes every longer continuation) and a piece mean underrates a token where it belongs;
mixed, the errors partly cancel. A token with no semantic estimate uses ``mean`` in its
place; one with no pieces gets the fallback (default: the mean row). The orchestrator copies the overlap.

Those weights were chosen on held-out text; session 13 re-checked them on dev text only
(SmolLM2-135M -> the 32k German BPE, first 40 KB of libreoffice:de:dev / manpages:de:dev, zero-shot
and after the default 540-s heal): every other mix of the three is within about 1% and trades one
text for the other. What gains on both is more ``exact`` for the tokens whose continuation was
*estimated* (beyond the continuation's ``limit``: the rare ones, whose rows a budgeted heal
rarely reaches): ``0.5 semantic + 0.2 mean + 0.3 exact`` there (``exact_estimated``), zero-shot
1.754 / 2.329 -> 1.740 / 2.315, healed 1.162 / 1.959 -> 1.154 / 1.947.

Copied tokens keep their old rows, and an old output row overrates its token in the new
vocabulary: the old model's p(" Date") counts the texts that go on with "i", which the new
tokenizer writes as one longer token " Datei". The continuations measure that share,
S_t (:func:`~tokengraft.transplant.auxiliary.continuation.exclusive_logprob`), so a copied
token's output row gets ``calibrate_copied x log(1 - S_t) x u``: its logit falls by about
-log(1 - S_t). Input rows stay the old ones, bit for bit. Session 16, German pair, dev text
(first 40 KB of libreoffice:de:dev / manpages:de:dev), zero-shot: 1.7400 / 2.3149 off,
1.7278 / 2.3055 at 1, 1.7222 / 2.3042 at 2 (1.7161 / 2.2985 at 1 with every continuation
measured: ``limit=null``, 2,618 copied tokens calibrated instead of 1,495); after the 60-step dev
heal, 1.1515 / 1.9540 off against 1.1522 / 1.9575 at 2. The heal learns the same correction for
the frequent tokens within its first steps, so the default is off.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.methods.base import InitProblem, InitResult, Needs, register
from tokengraft.transplant.methods.fallback import check_fallback
from tokengraft.transplant.methods.fvt import FVTOptions, _piece_transfer
from tokengraft.transplant.methods.tokenadapt import (TokenAdaptOptions, TokenAdaptWeights, tokenadapt_rows,
                                                      tokenadapt_weights)


@dataclass
class GraftOptions:
    semantic: float = 0.5          # share of the semantic (TokenAdapt) estimate in output rows
    mean: float = 0.35             # share of the piece mean (WVT)
    exact: float = 0.15            # share of the base model's own logit of the token (old[p_1] + c_t * u)
    exact_estimated: float = 0.3   # exact's share (taken from mean's) for tokens whose continuation was
                                   # estimated, not measured (beyond the continuation's limit: the rare ones)
    calibrate_copied: float = 0.0  # copied tokens' output rows += this x log(1 - S_t) u, S_t the measured share of
                                   # the old token's texts that go on into a longer new token (see below); 2 is
                                   # better zero-shot, not after a heal (German dev text: README, session 16); 0: off
    fallback: str = "mean"         # rows of tokens without any estimate: "mean" | "normal"
    # The continuations' own options (prefix_tokens, limit, max_pieces: ContinuationOptions) are
    # set with the same --method-option KEY=VALUE; e.g. max_pieces=4 bounds the CPU time for
    # superword tokenizers (pair c: 1,508 s with all pieces, 2 busy cores).


def _semantic_weights(problem: InitProblem, options: GraftOptions) -> TokenAdaptWeights:
    """TokenAdapt's weights: computed once by the orchestrator for the input and output rows."""
    return tokenadapt_weights(problem, TokenAdaptOptions(fallback=options.fallback))


@register("graft", GraftOptions, needs=Needs(space=("vocab-strings",), extras=("continuation",)), unties=True,
          prepare=_semantic_weights,
          summary="tokengraft's own: semantic (TokenAdapt) input rows; output rows ensemble it with WVT and "
                  "the base model's own logit of the token")
def graft(problem: InitProblem, options: GraftOptions) -> InitResult:
    """Input: semantic rows (WVT where none); output: semantic/mean/exact ensemble."""
    weights = (options.semantic, options.mean, options.exact)
    if min(weights) < 0 or abs(sum(weights) - 1.0) > 1e-6:
        raise TokengraftError(f"graft weights semantic, mean, exact must be >= 0 and sum to 1, got {weights}")
    if not 0 <= options.exact_estimated <= options.mean + options.exact:
        raise TokengraftError(f"graft exact_estimated takes its share from mean's: give a value in [0, mean + exact = "
                              f"{options.mean + options.exact:g}], got {options.exact_estimated}")
    if options.calibrate_copied < 0:
        raise TokengraftError(f"graft calibrate_copied scales a log-probability shift: give a value >= 0 (0: off), "
                              f"got {options.calibrate_copied}")
    check_fallback(options.fallback)
    mean = _piece_transfer(problem, FVTOptions(options.fallback), "graft", weighted=True)
    shared = problem.shared if problem.shared is not None else _semantic_weights(problem, options)
    semantic = tokenadapt_rows(problem, shared, options.fallback)
    has_mean = torch.tensor([s == "graft" for s in mean.source])
    has_semantic = torch.tensor([s == "tokenadapt" for s in semantic.source])
    device = mean.rows.device
    rows = torch.where(has_semantic[:, None].to(device), semantic.rows.to(device).float(), mean.rows.float())
    source = ["graft" if a or b else s for a, b, s in zip(has_semantic.tolist(), has_mean.tolist(), mean.source)]
    shift = None
    if problem.which == "output":
        # in place and in blocks: a 262k vocabulary makes every (V, d) temporary 600 MB
        rows.mul_(options.semantic).add_(mean.rows.float(), alpha=options.mean + options.exact)
        _add_exact(problem, rows, mean.rows, has_mean, options.exact, options.exact_estimated)
        shift = _copied_shift(problem, options.calibrate_copied)
    return InitResult(rows.to(problem.old.dtype), source, None, shift)


def _copied_shift(problem: InitProblem, weight: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(ids, rows) to add to copied tokens' output rows: ``weight`` x log(1 - S_t) x u where S_t > 0."""
    cont = problem.extras.get("continuation")
    if weight == 0 or cont is None or cont.exclusive is None:
        return None
    exclusive = cont.exclusive  # measured before chat markers were added: they have none
    ids = ((problem.copied.cpu()[:len(exclusive)] >= 0) & (exclusive < 0)).nonzero().flatten()
    return ids, weight * exclusive[ids, None] * cont.unit[None]


def _add_exact(problem: InitProblem, rows: torch.Tensor, mean_rows: torch.Tensor, has_mean: torch.Tensor,
               weight: float, estimated: float, block: int = 16384) -> None:
    """rows += w_t * (exact - mean) for tokens of >= 2 pieces, exact = old[p_1] + c_t * u; w_t = ``weight``
    where c_t was measured, ``estimated`` where it is the mean of measured tokens with as many pieces."""
    cont = problem.extras.get("continuation")
    if cont is None:
        raise TokengraftError("graft needs the base model's continuations (extras['continuation']);"
                              " call it through transplant/transplant_model, which measures them")
    multi = has_mean & torch.tensor([len(p) >= 2 for p in problem.pieces]) & (problem.copied.cpu() < 0)
    ids = multi.nonzero().flatten()
    old = problem.old.float()
    unit = cont.unit.to(old.device)[None]
    for start in range(0, ids.numel(), block):
        part = ids[start:start + block]
        first = torch.tensor([problem.pieces[t][0] for t in part.tolist()], device=old.device)
        exact = old[first] + cont.logprob[part].to(old.device)[:, None] * unit
        share = torch.where(cont.measured[part], weight, estimated).to(rows.device, torch.float32)[:, None]
        on = part.to(rows.device)
        rows[on] += share * (exact.to(rows.device) - mean_rows[on].float())
