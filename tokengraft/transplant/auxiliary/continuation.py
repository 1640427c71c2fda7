"""What the base model itself says about each new token's bytes (for ``graft``).

A new token ``t`` that the old tokenizer spells as pieces ``p_1 .. p_n`` (n >= 2) has, under
the base model and after a context ``h``, the log-probability of its bytes

    log p(p_1 | h) + sum_{i >= 2} log p(p_i | h, p_1 .. p_{i-1}).

The first term is the old output row of ``p_1`` against ``h``, exactly. The rest, the
*continuation* ``c_t``, is measured here once per token in one fixed target-language
context: the first ``prefix_tokens`` tokens of the corpus, run once and cached, then every
distinct piece prefix of the measured tokens once, as a prefix tree packed into long
forward passes (:mod:`.prefix_tree`). ``unit`` is a vector ``u`` with ``h . u ~= 1`` on the
model's final hidden states (ridge least squares on the hidden states of that same run), so
adding ``c_t * u`` to an output row adds about ``c_t`` to its logit.

Only the ``limit`` most frequent new tokens are measured (their frequency in the corpus's
first ``rank_bytes`` under the new tokenizer; ``order="id"``: the lowest ids). The others
get the mean continuation of measured tokens with as many pieces. SmolLM2 -> the 32k French
BPE: the 8,192 most frequent in 1 MB of libreoffice:fr:fit carry 83% of the new-token
occurrences of fr:dev; measuring only them halves the time and scored 1.6503 BPB on fr:dev
against 1.6602 with all 23k measured (a rare token's exact logit overrates it when it is a
prefix of longer tokens; a piece-count mean is the safer guess).

The same measured pairs give each token the share of its spelling that goes on into a longer
new token (``exclusive``: log(1 - S_t), :func:`exclusive_logprob`), which ``graft`` can use to
lower copied tokens' output rows (``calibrate_copied``).

Measured in a neutral context (the start token alone) the continuation is far too
pessimistic: SmolLM2 gives " données" as [" don", "n", "ées"] a continuation of -15 nats
at the start of a document but -0.2 in French text. Hence the corpus prefix.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from tokengraft.errors import TokengraftError
from tokengraft.lm.precision import PRECISIONS, autocast, compute_dtype
from tokengraft.transplant.auxiliary.prefix_tree import context_cache, nodes_of, pack, pair_logprobs, run_batch

logger = logging.getLogger(__name__)

ORDERS = ("frequency", "id")


@dataclass
class ContinuationOptions:
    prefix_tokens: int = 64        # context: this many old tokens of the corpus (0: the start token only)
    limit: int | None = 8192       # measure at most this many tokens (in `order`); the rest get the mean
                                   # continuation of measured tokens with as many pieces (None: all). 8192
                                   # of 23k on the French pair: 2x faster and 0.6% lower BPB on fr:dev
    order: str = "frequency"       # which tokens the limit keeps: "frequency" (most frequent in the corpus's
                                   # first rank_bytes under the new tokenizer, then lowest id) | "id" (lowest ids)
    rank_bytes: int = 1_000_000    # corpus bytes counted for order=frequency
    max_pieces: int | None = None  # sum log-probabilities of pieces 2..max_pieces only (None: all); bounds
                                   # the time for superword tokenizers, whose tokens have many pieces
    batch_nodes: int = 512         # piece prefixes per forward pass (attention cost grows with its square)
    precision: str = "auto"        # compute dtype: "auto" (bfloat16 where the hardware has it) | "bfloat16" |
                                   # "float32"; the pairs' own logits are float32 either way
    unit_states: int = 4096        # hidden states used to fit the unit vector
    ridge: float = 1e-3            # ridge of the unit fit, relative to the mean eigenvalue of H^T H / n

    def validate(self) -> None:
        if self.max_pieces is not None and self.max_pieces < 2:
            raise TokengraftError(f"graft max_pieces must be at least 2, got {self.max_pieces}")
        if self.order not in ORDERS:
            raise TokengraftError(f"graft order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.precision not in PRECISIONS:
            raise TokengraftError(f"graft precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 0):
            raise TokengraftError(f"graft limit must be an integer >= 0 or null (all), got {self.limit!r}")


@dataclass
class Continuation:
    logprob: torch.Tensor          # (V_new,) float32 c_t; 0 for copied tokens and tokens with < 2 pieces
    measured: torch.Tensor         # (V_new,) bool: c_t was measured (False: estimated or not applicable)
    unit: torch.Tensor             # (d,) float32 u with h . u ~= 1 on final hidden states
    unit_fit: tuple[float, float]  # mean and standard deviation of h . u on the states it was fitted to
    context: str                   # the decoded prefix
    seconds: float
    exclusive: torch.Tensor | None = None  # (V_new,) float32 log(1 - S_t) <= 0: S_t is the measured probability
                                   # that t's pieces go on into a longer new token's (see :func:`exclusive_logprob`)


def continuation(model: Any, old_tok: Any, pieces: Sequence[Sequence[int]], copied: torch.Tensor,
                 texts: Sequence[str] | None, options: ContinuationOptions | None = None,
                 new_tok: Any = None) -> Continuation:
    """Measure ``c_t`` for the new tokens with >= 2 pieces (see the module docstring).

    ``new_tok`` counts the new tokens in ``texts`` for ``order="frequency"``; without it (or
    without texts) the lowest ids come first.
    """
    from tokengraft.lm.head import split_head
    from tokengraft.lm.start import resolve_start_token

    options = options or ContinuationOptions()
    options.validate()
    if options.max_pieces is not None:
        pieces = [p[: options.max_pieces] for p in pieces]
    start = time.perf_counter()
    head, body = split_head(model), getattr(model, "base_model", None)
    if head is None or body is None or body is model:
        raise TokengraftError(f"{type(model).__name__} has no separable decoder body and output head;"
                              " graft cannot read its hidden states (use --method wvt)")
    prefix = [resolve_start_token(old_tok)[1], *_prefix_ids(old_tok, texts, options.prefix_tokens)]
    candidates = [t for t, p in enumerate(pieces) if len(p) >= 2 and int(copied[t]) < 0]
    if options.order == "frequency":
        candidates = _by_frequency(candidates, new_tok, texts, options.rank_bytes)
    chosen = candidates if options.limit is None else candidates[: options.limit]
    logprob, measured = torch.zeros(len(pieces)), torch.zeros(len(pieces), dtype=torch.bool)
    was_training = model.training
    model.eval()
    try:
        states, value = _measure(body, head, prefix, chosen, pieces, logprob, options)
    finally:
        model.train(was_training)
    exclusive = exclusive_logprob(value, chosen, pieces)
    measured[chosen] = True
    _estimate_the_rest(logprob, measured, sorted(candidates), pieces)
    unit, fit = _unit(torch.cat(states)[: options.unit_states], options.ridge)
    seconds = time.perf_counter() - start
    logger.info("continuation of %d tokens measured (%d estimated) in %.1f s; h.u = %.3f +- %.3f",
                len(chosen), len(candidates) - len(chosen), seconds, *fit)
    return Continuation(logprob, measured, unit.cpu(), fit, old_tok.decode(prefix[1:]), seconds, exclusive)


def _measure(body: Any, head: Any, prefix: list[int], chosen: list[int], pieces: Sequence[Sequence[int]],
             logprob: torch.Tensor, options: ContinuationOptions
             ) -> tuple[list[torch.Tensor], dict[tuple[tuple[int, ...], int], float]]:
    """Write ``c_t`` of the ``chosen`` tokens into ``logprob``; return hidden states for the unit fit
    and every measured (piece prefix, next piece) log-probability."""
    device = head.weight.device
    dtype = compute_dtype(options.precision, device)
    nodes = nodes_of([tuple(pieces[t][:-1]) for t in chosen])
    pairs = {(tuple(pieces[t][:j]), pieces[t][j]) for t in chosen for j in range(1, len(pieces[t]))}
    by_node: dict[tuple[int, ...], list[int]] = {}
    for node, label in pairs:
        by_node.setdefault(node, []).append(label)
    value: dict[tuple[tuple[int, ...], int], float] = {}
    lse_weight = head.weight.to(dtype)  # the logsumexp's matmul in the compute dtype: one cast, not one per batch
    with torch.no_grad(), autocast(device, dtype):
        hidden, kv = context_cache(body, torch.tensor([prefix], device=device))
        states = [hidden.float()]
        batches = pack(list(nodes), options.batch_nodes)
        for batch in tqdm(batches, desc="continuations", unit="batch", disable=None, leave=False):
            hidden = run_batch(body, batch, kv, len(prefix), torch.float32)
            keys = [(node, label) for node in batch.nodes for label in by_node[node]]
            local = {node: i for i, node in enumerate(batch.nodes)}
            rows = torch.tensor([local[node] for node, _ in keys], device=device)
            labels = torch.tensor([label for _, label in keys], device=device)
            got = pair_logprobs(head, hidden.float(), rows, labels, lse_weight).cpu().tolist()
            value.update(zip(keys, got))
            if sum(s.shape[0] for s in states) < options.unit_states:
                states.append(hidden.float())
    for t in chosen:
        logprob[t] = sum(value[(tuple(pieces[t][:j]), pieces[t][j])] for j in range(1, len(pieces[t])))
    logger.info("continuations: %d tokens, %d piece prefixes in %d forward passes (%s)", len(chosen), len(nodes),
                len(batches), str(dtype).removeprefix("torch."))
    return states, value


def exclusive_logprob(value: dict[tuple[tuple[int, ...], int], float], chosen: Sequence[int],
                      pieces: Sequence[Sequence[int]], floor: float = 1e-3) -> torch.Tensor:
    """(V_new,) log(1 - S_t): the share of t's spelling that ends where t ends.

    The base model's probability of t's pieces counts every text that goes on into a longer new
    token spelled by the same pieces and more (" Date" + "i" for " Datei" after " Date"); the
    new tokenizer emits t only where the text does not. S_t sums, over t's nearest such longer
    tokens among the measured ones (disjoint events), the probability of their extra pieces
    after t's, read from the measured pairs ``value``. Any token can be a parent, a copied one
    (one piece) too. ``floor`` bounds 1 - S_t from below.
    """
    owner = {tuple(p): t for t, p in enumerate(pieces) if len(p)}
    total = torch.zeros(len(pieces), dtype=torch.float64)
    for child in chosen:
        spelled = tuple(pieces[child])
        for cut in range(len(spelled) - 1, 0, -1):  # the longest proper prefix that is a token
            parent = owner.get(spelled[:cut])
            if parent is not None:
                total[parent] += math.exp(sum(value[(spelled[:j], spelled[j])] for j in range(cut, len(spelled))))
                break
    return torch.log1p(-total.clamp(max=1 - floor)).float()


def _by_frequency(candidates: list[int], new_tok: Any, texts: Sequence[str] | None, max_bytes: int) -> list[int]:
    """``candidates`` most frequent first in the first ``max_bytes`` of ``texts`` (new tokenizer), then by id."""
    if new_tok is None or not texts:
        return candidates
    sample, size = [], 0
    for text in texts:
        if size >= max_bytes:
            break
        sample.append(text.encode("utf-8")[: max_bytes - size].decode("utf-8", errors="ignore"))
        size += len(sample[-1].encode("utf-8"))
    counts = Counter(i for ids in new_tok(sample, add_special_tokens=False)["input_ids"] for i in ids)
    seen = sum(counts[t] for t in candidates)
    ranked = sorted(candidates, key=lambda t: (-counts[t], t))
    logger.info("continuations: %d of %d candidate tokens occur in %d bytes of the corpus (%d occurrences)",
                sum(1 for t in candidates if counts[t]), len(candidates), size, seen)
    return ranked


def _prefix_ids(old_tok: Any, texts: Sequence[str] | None, n: int) -> list[int]:
    """The first ``n`` old tokens of the texts (documents joined by newlines)."""
    if n <= 0 or not texts:
        if n > 0:
            logger.warning("graft has no target-language text for its context; continuations are measured after the"
                        " start token alone, which underrates them (pass --corpus)")
        return []
    ids: list[int] = []
    for text in texts:
        if text:
            ids += old_tok(text + "\n", add_special_tokens=False)["input_ids"][: n - len(ids)]
        if len(ids) >= n:
            break
    return ids


def _estimate_the_rest(logprob: torch.Tensor, measured: torch.Tensor, candidates: list[int],
                       pieces: Sequence[Sequence[int]]) -> None:
    """Unmeasured candidates: the mean of measured tokens with as many pieces (else of all measured)."""
    rest = [t for t in candidates if not measured[t]]
    if not rest:
        return
    lengths = torch.tensor([len(p) for p in pieces])
    overall = float(logprob[measured].mean()) if bool(measured.any()) else 0.0
    for n in sorted({len(pieces[t]) for t in rest}):
        same = measured & (lengths == n)
        value = float(logprob[same].mean()) if bool(same.any()) else overall
        logprob[[t for t in rest if len(pieces[t]) == n]] = value


def _unit(states: torch.Tensor, ridge: float) -> tuple[torch.Tensor, tuple[float, float]]:
    """u = argmin sum_i (h_i . u - 1)^2 / n + ridge * tr(G)/d * |u|^2, and the fit of h . u."""
    gram = states.T @ states / states.shape[0]
    d = gram.shape[0]
    scale = float(gram.trace()) / d
    u = torch.linalg.solve(gram + ridge * scale * torch.eye(d, device=gram.device), states.mean(dim=0))
    fit = states @ u
    return u, (float(fit.mean()), float(fit.std(correction=0)))
