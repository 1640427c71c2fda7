"""What the base model itself says about each new token's bytes (for ``graft``).

A new token ``t`` that the old tokenizer spells as pieces ``p_1 .. p_n`` (n >= 2) has, under
the base model and after a context ``h``, the log-probability of its bytes

    log p(p_1 | h) + sum_{i >= 2} log p(p_i | h, p_1 .. p_{i-1}).

The first term is the old output row of ``p_1`` against ``h``, exactly. The rest, the
*continuation* ``c_t``, is measured here once per token in one fixed target-language
context: the first ``prefix_tokens`` tokens of the corpus, run once and cached, then every
token's pieces but the last after it (tokens that share those share one forward pass), in
batches of equal length. ``unit`` is a vector ``u`` with
``h . u ~= 1`` on the model's final hidden states (ridge least squares on the hidden states
of that same run), so adding ``c_t * u`` to an output row adds about ``c_t`` to its logit.

Measured in a neutral context (the start token alone) the continuation is far too
pessimistic: SmolLM2 gives " données" as [" don", "n", "ées"] a continuation of -15 nats
at the start of a document but -0.2 in French text. Hence the corpus prefix.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

# Largest (rows x length x vocab) block of float32 log-probabilities per batch: 64 MiB, so the
# logits, their log-softmax and the gather stay a small part of a transplant's peak memory.
LOGPROB_ELEMENTS = 2**24


@dataclass
class ContinuationOptions:
    prefix_tokens: int = 64        # context: this many old tokens of the corpus (0: the start token only)
    limit: int | None = 50_000     # measure at most this many tokens, lowest new ids first; the rest get the
                                   # mean continuation of measured tokens with as many pieces (None: all)
    max_pieces: int | None = None  # sum log-probabilities of pieces 2..max_pieces only (None: all); bounds
                                   # the time for superword tokenizers, whose tokens have many pieces
    batch_size: int = 64           # tokens per forward pass (each holds a copy of the prefix's cache)
    unit_states: int = 4096        # hidden states used to fit the unit vector
    ridge: float = 1e-3            # ridge of the unit fit, relative to the mean eigenvalue of H^T H / n


@dataclass
class Continuation:
    logprob: torch.Tensor          # (V_new,) float32 c_t; 0 for copied tokens and tokens with < 2 pieces
    measured: torch.Tensor         # (V_new,) bool: c_t was measured (False: estimated or not applicable)
    unit: torch.Tensor             # (d,) float32 u with h . u ~= 1 on final hidden states
    unit_fit: tuple[float, float]  # mean and standard deviation of h . u on the states it was fitted to
    context: str                   # the decoded prefix
    seconds: float


def continuation(model: Any, old_tok: Any, pieces: Sequence[Sequence[int]], copied: torch.Tensor,
                 texts: Sequence[str] | None, options: ContinuationOptions | None = None) -> Continuation:
    """Measure ``c_t`` for every new token with >= 2 pieces (see the module docstring)."""
    from tokengraft.lm.head import split_head
    from tokengraft.lm.start import resolve_start_token

    options = options or ContinuationOptions()
    if options.max_pieces is not None:
        if options.max_pieces < 2:
            raise TokengraftError(f"graft max_pieces must be at least 2, got {options.max_pieces}")
        pieces = [p[: options.max_pieces] for p in pieces]
    start = time.perf_counter()
    head, body = split_head(model), getattr(model, "base_model", None)
    if head is None or body is None or body is model:
        raise TokengraftError(f"{type(model).__name__} has no separable decoder body and output head;"
                              " graft cannot read its hidden states (use --method wvt)")
    device = head.weight.device
    prefix = [resolve_start_token(old_tok)[1], *_prefix_ids(old_tok, texts, options.prefix_tokens)]
    candidates = [t for t, p in enumerate(pieces) if len(p) >= 2 and int(copied[t]) < 0]
    chosen = candidates if options.limit is None else candidates[: options.limit]
    n_new = len(pieces)
    logprob, measured = torch.zeros(n_new), torch.zeros(n_new, dtype=torch.bool)
    states: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ids = torch.tensor([prefix], device=device)
            cache = _new_cache(model)
            out = body(input_ids=ids, use_cache=True, **_cache_kwarg(body, cache))
            states.append(out[0][0].float())
            stems = _stems(chosen, pieces)
            served = _served(list(stems))
            for batch in tqdm(_batches(list(served), head.weight.shape[0], options.batch_size),
                              desc="continuations", unit="batch", disable=None, leave=False):
                hidden = _after_prefix(body, cache, torch.tensor(batch, device=device), len(prefix))
                width = hidden.shape[1]
                logits = head.logits(hidden.reshape(-1, hidden.shape[-1]))
                norm = torch.logsumexp(logits, dim=-1).view(len(batch), width)
                logits = logits.view(len(batch), width, -1)
                for b, longest in enumerate(batch):
                    tokens = [t for stem in served[longest] for t in stems[stem]]
                    for t in tokens:
                        labels = torch.tensor(pieces[t][1:], device=device)
                        at = torch.arange(len(labels), device=device)
                        logprob[t] = float((logits[b, at, labels] - norm[b, at]).sum())
                    measured[tokens] = True
                if sum(s.shape[0] for s in states) < options.unit_states:
                    states.append(hidden.reshape(-1, hidden.shape[-1]).float())
    finally:
        model.train(was_training)
    _estimate_the_rest(logprob, measured, candidates, pieces)
    unit, fit = _unit(torch.cat(states)[: options.unit_states], options.ridge)
    seconds = time.perf_counter() - start
    logger.info("continuation of %d tokens measured (%d estimated) in %.1f s; h.u = %.3f +- %.3f",
             len(chosen), len(candidates) - len(chosen), seconds, *fit)
    return Continuation(logprob, measured, unit.cpu(), fit, old_tok.decode(prefix[1:]), seconds)


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


def _new_cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older signatures take no config
        return DynamicCache()


def _after_prefix(body: Any, cache: Any, x: torch.Tensor, offset: int) -> torch.Tensor:
    """(B, L, d) final hidden states of rows ``x`` that each follow the cached prefix."""
    batch = copy.deepcopy(cache)
    batch.batch_repeat_interleave(x.shape[0])
    positions = torch.arange(offset, offset + x.shape[1], device=x.device).expand(x.shape[0], -1)
    return body(input_ids=x, position_ids=positions, use_cache=True, **_cache_kwarg(body, batch))[0]


def _cache_kwarg(body: Any, cache: Any) -> dict[str, Any]:
    """``{"cache": cache}`` where the forward takes that name (transformers >= 5.2x, which deprecates
    ``past_key_values`` with a warning on every call), else ``{"past_key_values": cache}``."""
    import inspect

    name = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
    return {name: cache}


def _stems(tokens: list[int], pieces: Sequence[Sequence[int]]) -> dict[tuple[int, ...], list[int]]:
    """Tokens by their pieces without the last one: one forward pass serves every token of a stem
    (" don" + "n" + "ées" and " don" + "n" + "er" share the stem (" don", "n"))."""
    stems: dict[tuple[int, ...], list[int]] = {}
    for t in tokens:
        stems.setdefault(tuple(pieces[t][:-1]), []).append(t)
    return stems


def _served(stems: list[tuple[int, ...]]) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
    """Stems that are no prefix of another, each with the stems its forward pass serves.

    A pass over (" Ver", "wal", "t") gives the log-probabilities after " Ver" and after
    (" Ver", "wal") too, so those stems need no pass of their own (a third fewer passes on a
    32k German BPE).

    >>> _served([(5,), (5, 6), (7,)])
    {(5, 6): [(5, 6), (5,)], (7,): [(7,)]}
    """
    owner: dict[tuple[int, ...], tuple[int, ...]] = {}
    served: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for stem in sorted(stems, key=len, reverse=True):
        longest = owner.get(stem)
        if longest is None:
            served[stem] = [stem]
            for k in range(1, len(stem)):
                owner.setdefault(stem[:k], stem)
        else:
            served[longest].append(stem)
    return served


def _batches(stems: list[tuple[int, ...]], vocab: int, size: int) -> list[list[tuple[int, ...]]]:
    """Stems grouped by length (no padding), at most ``size`` per group and at most
    LOGPROB_ELEMENTS log-probabilities (rows x length x vocab) per group."""
    by_length: dict[int, list[tuple[int, ...]]] = {}
    for stem in stems:
        by_length.setdefault(len(stem), []).append(stem)
    out = []
    for length, group in sorted(by_length.items()):
        step = max(1, min(size, LOGPROB_ELEMENTS // (length * vocab)))
        out += [group[i:i + step] for i in range(0, len(group), step)]
    return out


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
