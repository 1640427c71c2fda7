"""The base model's own distribution over the NEW vocabulary at a context (METHODS.md §10, §12).

The base model reads text with its old tokenizer. A new token ``t`` spelled by old pieces
``p_1 .. p_n`` gets the probability of its bytes after a context:

    log P(bytes(t) | ctx) = log p(p_1 | ctx) + sum_{i >= 2} log p(p_i | ctx, p_1 .. p_{i-1}),

the first piece from the context's own next-token distribution, the rest from forward passes
over the pieces (tokens that share pieces but the last share one pass). Bytes' probabilities
overlap: " don" is a prefix of " données", so P(" don") counts every text that goes on with
" données" too. The distribution over which new token comes NEXT keeps, for a token, only
the texts that do not continue with a longer candidate: P(t) minus the probability of its
nearest longer candidates (disjoint events), then normalised over the candidates. Only
canonical spellings (the old tokenizer's own pieces) are counted, as in the byte-level
probability literature's approximation; other spellings of the same bytes are rare.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch

from tokengraft.lm.cache import cache_argument


def _cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers take no config
        return DynamicCache()


def bytes_logprob(model: Any, context: Sequence[int], pieces: Sequence[Sequence[int]], batch: int = 64) -> torch.Tensor:
    """(K,) float32 log P(bytes of candidate k | context) under ``model`` with its own tokenizer.

    ``context``: old token ids read so far (start token first); ``pieces[k]``: the old ids
    that spell candidate k (at least one).
    """
    device = model.get_input_embeddings().weight.device
    with torch.no_grad():
        cache = _cache(model)
        out = model(input_ids=torch.tensor([list(context)], device=device), use_cache=True,
                    **cache_argument(model, cache))
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        result = torch.stack([first[p[0]] for p in pieces]).cpu() if pieces else torch.zeros(0)
        stems: dict[tuple[int, ...], list[int]] = {}
        for k, p in enumerate(pieces):
            if len(p) >= 2:
                stems.setdefault(tuple(p[:-1]), []).append(k)
        by_length: dict[int, list[tuple[int, ...]]] = {}
        for stem in stems:
            by_length.setdefault(len(stem), []).append(stem)
        for length, group in by_length.items():
            for i in range(0, len(group), batch):
                part = group[i:i + batch]
                past = copy.deepcopy(cache)
                past.batch_repeat_interleave(len(part))
                ids = torch.tensor(part, device=device)
                pos = torch.arange(len(context), len(context) + length, device=device).expand(len(part), -1)
                logp = torch.log_softmax(model(input_ids=ids, position_ids=pos, use_cache=True,
                                               **cache_argument(model, past)).logits.float(), dim=-1)
                for row, stem in enumerate(part):
                    for k in stems[stem]:
                        labels = pieces[k][1:]
                        result[k] += float(sum(logp[row, j, labels[j]] for j in range(len(labels))))
    return result


def next_token_distribution(byte_logp: torch.Tensor, candidates: Sequence[bytes]) -> torch.Tensor:
    """(K,) log-probabilities of each candidate being the next token, from the log-probabilities
    of their bytes (see the module docstring): each keeps its mass minus that of its nearest
    longer candidates, floored at 1e-6 of it, then all are normalised.

    >>> p = torch.log(torch.tensor([0.5, 0.3, 0.1]))
    >>> [round(x, 3) for x in next_token_distribution(p, [b"a", b"ab", b"b"]).exp().tolist()]
    [0.333, 0.5, 0.167]
    """
    mass = byte_logp.double().exp()
    own = mass.clone()
    order = sorted(range(len(candidates)), key=lambda k: len(candidates[k]))
    for i, k in enumerate(order):
        # nearest longer candidates: extensions of k that extend no other extension of k
        longer = [j for j in order[i + 1:] if len(candidates[j]) > len(candidates[k])
                  and candidates[j].startswith(candidates[k])]
        nearest = [j for j in longer if not any(candidates[j].startswith(candidates[m]) and m != j for m in longer)]
        if nearest:
            own[k] = torch.clamp(mass[k] - mass[nearest].sum(), min=float(mass[k]) * 1e-6)
    return torch.log(own / own.sum()).float()
