"""Growing a lattice byte by byte, and its next-byte distribution (generation, prompts).

The distribution after ``text[:n]`` sums, over the kept nodes, the mass of their next
tokens that extend ``text[end:n]`` by one more byte, grouped by that byte; nodes that end
exactly at n add their probability of a token without bytes (the text ends). Its 257
entries (bytes 0..255, then "end") sum to 1.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from tokengraft.bytelevel.lattice import DONE, Lattice
from tokengraft.bytelevel.reference import END
from tokengraft.errors import TokengraftError


def extend(lattice: Lattice, data: bytes) -> None:
    """Append ``data`` to the text: narrow every open node's trie range, create the new children.

    New children stay pending; call ``lattice.settle()`` before asking for a distribution.
    """
    trie = lattice.trie
    for byte in data:
        lattice.text.append(byte)
        n = len(lattice.text)
        for idx in range(len(lattice.nodes)):
            node = lattice.nodes[idx]
            k = len(node.covers)
            if node.state != DONE or node.sorted_lp is None or node.end + k != n - 1:
                continue
            lo, hi = trie.step(node.lo, node.hi, k, byte)
            node.lo, node.hi = lo, hi
            if lo >= hi:
                node.sorted_lp = None  # no token covers the text any more: this node is finished
                continue
            part = node.sorted_lp[lo - node.offset:hi - node.offset]
            node.covers.append(torch.logsumexp(part, 0).item())
            for j, tok in enumerate(trie.exact(lo, hi, k + 1)):
                lattice.child(idx, tok, n, node.logmass + part[j].item())


def distribution(lattice: Lattice) -> torch.Tensor:
    """(257,) float64 next-byte probabilities after the whole text (last entry: the text ends)."""
    kept, _ = lattice.prefix_logmass()
    n = len(lattice.text)
    total = kept[n] if n else 0.0
    out = torch.zeros(END + 2, dtype=torch.float64)  # one spare bin for exact matches, dropped below
    for node in lattice.nodes:
        if node.state != DONE or node.end > n:
            continue
        k = n - node.end
        weight = math.exp(node.logmass - total)
        if k == 0:
            out[END] += weight * math.exp(node.end_lp)
        if node.sorted_lp is None or len(node.covers) != k:
            continue
        lo, hi = node.lo, node.hi
        probs = node.sorted_lp[lo - node.offset:hi - node.offset].double().exp()
        nxt = lattice.trie.byte_at(k)[lo:hi]
        nxt = torch.where(nxt == 256, END + 1, nxt)  # tokens equal to text[end:n] are children, not next bytes
        out.index_add_(0, nxt, probs * weight)
    out = out[:END + 1]
    mass = out.sum().item()
    if not mass > 0 or not np.isfinite(mass):
        raise TokengraftError(f"no kept tokenization continues this text of {n} bytes: the context of "
                              f"{lattice.limits.positions} tokens is full or the byte threshold is too high")
    return out / mass
