"""Log-probabilities of many short piece sequences after one shared context, as a prefix tree.

``graft``'s continuations need, for each new token ``p_1 .. p_n``, the base model's
``log p(p_i | context, p_1 .. p_{i-1})`` for ``i >= 2``. Tokens share their first pieces
(" don" + "n" + "ées", " don" + "n" + "er", " don" + "ne"), so every distinct piece prefix
(a *node* of the tree of pieces) is read once: SmolLM2 -> the 32k French BPE has 23.5k
positions when each token's stem is run on its own, 19.3k when only the longest stems are,
14.2k nodes in the tree.

One forward pass reads a *batch* of whole subtrees packed into one sequence after the
cached context: node ``j`` sits at position ``len(context) + depth(j) - 1`` and attends to
the context and to its own ancestors only (a custom 4D attention mask, "tree attention").
The context's keys and values are computed once and never copied per row. The head then
gives each node one logsumexp over the vocabulary and each needed (node, next piece) pair
its exact float32 logit: no (nodes x vocab) log-softmax is kept.

In bfloat16 (autocast) the body and the logsumexp's matmul run at 2-3x the float32 speed on
CPUs with native bf16 (AVX512-BF16, AMX) and on GPUs; the pairs' own logits stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from tokengraft.lm.cache import cache_argument

# Largest block of logits the logsumexp materialises at once: 2**25 elements (128 MiB in float32),
# a small part of a transplant's peak memory; blocks are LSE_COLUMNS wide (8,192: fastest of 2k-32k
# on 2 CPU cores for 512 rows of Gemma-3's and SmolLM2's heads).
LOGIT_ELEMENTS = 2**25
LSE_COLUMNS = 8192
LOWEST = torch.finfo(torch.float32).min


@dataclass
class Batch:
    """One packed forward pass: nodes (piece prefixes) with parents before children."""
    nodes: list[tuple[int, ...]]
    parent: list[int]              # local index of each node's parent; -1 at depth 1


def nodes_of(stems: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], None]:
    """Every non-empty prefix of every stem, each once, in depth-first order (parents first)."""
    out: dict[tuple[int, ...], None] = {}
    for stem in sorted(set(stems)):  # sorted tuples: a prefix sorts before its extensions
        for i in range(1, len(stem) + 1):
            out.setdefault(stem[:i], None)
    return out


def pack(nodes: Sequence[tuple[int, ...]], size: int) -> list[Batch]:
    """Whole subtrees (all nodes of one first piece) packed into batches of about ``size`` nodes.

    A subtree is never split, so that every node's ancestors are in its batch; a subtree larger
    than ``size`` is a batch of its own.

    >>> [b.nodes for b in pack([(1,), (1, 2), (3,)], 2)]
    [[(1,), (1, 2)], [(3,)]]
    """
    trees: dict[int, list[tuple[int, ...]]] = {}
    for node in nodes:
        trees.setdefault(node[0], []).append(node)
    batches: list[list[tuple[int, ...]]] = [[]]
    for tree in trees.values():
        if batches[-1] and len(batches[-1]) + len(tree) > size:
            batches.append([])
        batches[-1].extend(tree)
    out = []
    for group in batches:
        group.sort()  # depth-first: parents before children
        local = {node: i for i, node in enumerate(group)}
        out.append(Batch(group, [local.get(node[:-1], -1) for node in group]))
    return [b for b in out if b.nodes]


def tree_mask(batch: Batch, context: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """(1, 1, n, context + n) additive mask: 0 where node i may attend (the context, its
    ancestors and itself), -inf elsewhere."""
    n = len(batch.nodes)
    allowed = torch.zeros(n, n, dtype=torch.bool)
    for i, p in enumerate(batch.parent):
        if p >= 0:
            allowed[i] = allowed[p]
        allowed[i, i] = True
    mask = torch.zeros(n, context + n, dtype=dtype)
    mask[:, context:].masked_fill_(~allowed, float("-inf"))
    return mask.to(device)[None, None]


def context_cache(body: Any, ids: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Run the context ``ids`` (1, P) once: its final hidden states (P, d) and each layer's keys and values."""
    from transformers import DynamicCache

    cache = DynamicCache()  # no config: plain full-attention layers, never trimmed to a sliding window
    out = body(input_ids=ids, use_cache=True, **cache_argument(body, cache))
    if hasattr(cache, "layers"):
        kv = [(layer.keys, layer.values) for layer in cache.layers]
    else:  # transformers before the cache layers
        kv = list(zip(cache.key_cache, cache.value_cache))
    return out[0][0], kv


def run_batch(body: Any, batch: Batch, kv: list[tuple[torch.Tensor, torch.Tensor]], context: int,
              mask_dtype: torch.dtype) -> torch.Tensor:
    """(n, d) final hidden states of the batch's nodes, each read after the context and its ancestors."""
    from transformers import DynamicCache

    device = kv[0][0].device
    ids = torch.tensor([[node[-1] for node in batch.nodes]], device=device)
    positions = torch.tensor([[context + len(node) - 1 for node in batch.nodes]], device=device)
    cache = DynamicCache(ddp_cache_data=kv)  # a fresh cache each batch: the context's tensors are never written
    mask = tree_mask(batch, context, mask_dtype, device)
    return body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                **cache_argument(body, cache))[0][0]


def pair_logprobs(head: Any, hidden: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor,
                  lse_weight: torch.Tensor) -> torch.Tensor:
    """(m,) log p(labels[k] | node rows[k]) from hidden (n, d): exact float32 logits of the pairs,
    minus each node's logsumexp over the vocabulary computed with ``lse_weight`` (the head's weight
    in the compute dtype)."""
    lse = logsumexp_logits(head, hidden, lse_weight)
    picked = (hidden[rows].float() * head.weight[labels].float()).sum(dim=-1)
    return _transform(head, picked, labels) - lse[rows]


def logsumexp_logits(head: Any, hidden: torch.Tensor, weight: torch.Tensor, columns: int = LSE_COLUMNS) -> torch.Tensor:
    """(n,) float32 logsumexp over the vocabulary of the head's logits of ``hidden`` (n, d), ``weight``
    being the head's weight in the compute dtype.

    The vocabulary is read in blocks of ``columns`` with a running maximum and sum, into one
    reused (n x columns) buffer and in place: no (n x vocab) logits, no fresh block per step. The
    plain form, ``head.logits(hidden).logsumexp(-1)``, is 1.7x slower on 2 CPU cores (Gemma-3's
    262k vocabulary: 2.7 s against 1.6 s per 512 rows) and is the tests' reference.
    """
    n, vocab = hidden.shape[0], weight.shape[0]
    step = max(1, min(columns, LOGIT_ELEMENTS // max(n, 1)))
    compute = hidden.to(weight.dtype)
    buffer = torch.empty(n * min(step, vocab), dtype=weight.dtype, device=hidden.device)
    top = torch.full((n,), float("-inf"), device=hidden.device)
    total = torch.zeros(n, device=hidden.device)
    with torch.autocast(hidden.device.type, enabled=False):  # the dtypes are explicit; autocast refuses out=
        for start in range(0, vocab, step):
            width = min(step, vocab - start)
            block = torch.matmul(compute, weight[start:start + width].T, out=buffer[: n * width].view(n, width))
            block = _transform(head, block.float(), slice(start, start + width))  # .float(): a copy only off float32
            new_top = torch.maximum(top, block.amax(dim=-1)).clamp_(min=LOWEST)  # finite: -inf - -inf is nan
            total.mul_(torch.exp(top - new_top)).add_(block.sub_(new_top[:, None]).exp_().sum(dim=-1))
            top = new_top
    return total.log_().add_(top)


def _transform(head: Any, raw: torch.Tensor, columns: torch.Tensor | slice) -> torch.Tensor:
    """The head's bias, logit scale and softcap applied in place to raw dot products of the vocabulary
    ``columns`` (a slice of it, or one label per entry)."""
    if head.bias is not None:
        raw.add_(head.bias[columns].float())
    if head.scale != 1.0:
        raw.mul_(head.scale)
    if head.softcap:
        raw.div_(head.softcap).tanh_().mul_(head.softcap)
    return raw
