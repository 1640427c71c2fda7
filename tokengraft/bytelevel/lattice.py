"""The fast path: a pruned tree of the tokenizations of one text, evaluated in batched rounds.

A *node* is a token sequence whose bytes are exactly ``text[:end]``; its ``logmass`` is
log P(the model starts with those tokens). Once the model has been run on a node (one
query through :class:`~tokengraft.bytelevel.tree.TreeEvaluator`), the trie turns its
next-token log-probs into *covers*: log P(next token starts with ``text[end:end + k]``),
and into children: the tokens equal to ``text[end:end + k]``. Then

    P(text starts with text[:i]) = sum over evaluated nodes with end < i of mass * cover(i - end)

minus the mass of every *pruned* child ending at i. A pruned child is a node whose share
of that sum is below ``threshold`` (``deep_threshold`` once it strays more than ``max_depth``
tokens from the canonical tokenization): it is never run, and its mass is taken out of the sum where it
ends, so the prefix probabilities stay those of one well-defined set of token sequences
(every one whose proper prefixes were all kept). Then each next-byte distribution sums to
exactly 1, their product telescopes to P(text), and that is at least the probability of
the canonical tokenization, which is never pruned. ``pruned_bits`` adds up -log2(1 - share)
over the pruning points: how much higher the log-likelihood could get if every pruned
sequence continued as well as the kept ones.

Order of work: the canonical tokenization first (one prefill per context window, as plain
scoring does), then rounds: decide every pending node, evaluate the kept ones in one batch
(their ancestors are already in the cache), repeat until nothing is pending. A tokenization
that stays far from the canonical one with a large share (a tokenizer whose canonical split
of a word the model never saw: SmolLM2's " A|PS|O" against its " AP|SO") is run ahead
along the canonical tokens ``CHAIN`` at a time, and each of those is checked the next round.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from tokengraft.bytelevel.trie import VocabTrie
from tokengraft.bytelevel.tree import Query, TreeEvaluator

PENDING, DONE, PRUNED, LEAF, DEAD, MERGED = 0, 1, 2, 3, 4, 5  # DEAD: below a pruned node, counts nowhere
ROWS = 256   # log-prob rows materialised at once; at a 262k vocabulary that is 256 MiB of float32
CHAIN = 64   # tokens a deep tokenization is run ahead along the canonical one, in one round


@dataclass(slots=True)
class Node:
    parent: int
    token: int
    end: int                 # the node's tokens spell text[:end]
    logmass: float           # log P(the model's first tokens are these), nats; nan until the parent is evaluated
    depth: int               # tokens since leaving the canonical tokenization (0 on it)
    base: int                # index of the canonical node this branch left from (itself when canonical)
    state: int = PENDING
    unchecked: bool = False  # run ahead before its share was known: checked (and maybe pruned) next round
    slot: int = -1
    position: int = -1
    covers: list[float] = field(default_factory=list)  # covers[k - 1] = log P(next token starts with text[end:end + k])
    lo: int = 0              # streaming: trie range of the tokens that still cover the text after ``end``
    hi: int = 0
    sorted_lp: torch.Tensor | None = None  # streaming: log-probs of the trie entries [offset, ...), kept while open
    offset: int = 0          # trie index of sorted_lp[0]
    end_lp: float = -math.inf  # log P(next token spells nothing: the text ends)


@dataclass
class LatticeStats:
    evaluated: int = 0       # nodes run through the model (canonical ones included)
    branches: int = 0        # of those, non-canonical
    pruned: int = 0
    rounds: int = 0


@dataclass
class Limits:
    """When to prune (see the module docstring)."""
    threshold: float = 0.0       # smallest share of the prefix mass a kept tokenization holds
    max_depth: int = 1 << 30     # beyond this many tokens off the canonical tokenization ...
    deep_threshold: float = 0.0  # ... the smallest share instead
    positions: int = 1 << 30     # position ids stay below this (the context)
    merge: bool = False          # fold a tokenization that reaches a canonical boundary into the canonical node
    min_first: int = 0           # the first token must cover at least this many bytes (token healing)

    def log_floor(self, depth: int) -> float:
        share = max(self.threshold, self.deep_threshold) if depth > self.max_depth else self.threshold
        return math.log(share) if share > 0 else -math.inf


class Lattice:
    """The kept tokenizations of ``text`` (bytes) after the start token.

    ``final``: the text is complete (scoring); nodes that end at its last byte need no
    evaluation. Otherwise the text may grow (see :mod:`~tokengraft.bytelevel.stream`) and
    every kept node is evaluated; ``keep_probs`` keeps each open node's log-probs for that.
    """

    def __init__(self, evaluator: TreeEvaluator, trie: VocabTrie, text: bytes, limits: Limits, final: bool,
                 keep_probs: bool = False) -> None:
        self.ev, self.trie, self.limits = evaluator, trie, limits
        self.text = bytearray(text)
        self.final, self.keep_probs = final, keep_probs
        self.nodes: list[Node] = []
        self.expected: dict[int, int] = {}       # node -> its child created in advance (canonical or run ahead)
        self.canonical_at: dict[int, int] = {}   # byte offset -> canonical node ending there
        self.stats = LatticeStats()
        self.merged: list[tuple[int, float, float]] = []  # (offset, log mass, nats it added there) of each merge
        self.canonical_logprob = 0.0  # log P(canonical tokens): the token-level score of the same text

    # -- building -------------------------------------------------------------------------
    def add_canonical(self, root: int, ids: list[int], tokens: list[bytes | None]) -> list[int]:
        """Create the chain root -> ids (a tokenization of the text); returns the node indices.

        ``root`` is the last token before the text (the start token, or a prompt's last token).
        """
        end, out = 0, []
        for m, tok in enumerate([root, *ids]):
            end += len(tokens[tok] or b"") if m else 0
            out.append(self._add(out[-1] if out else -1, tok, end, 0.0 if m == 0 else math.nan, 0, len(self.nodes)))
            self.canonical_at[end] = out[-1]
        return out

    def _add(self, parent: int, tok: int, end: int, logmass: float, depth: int, base: int) -> int:
        self.nodes.append(Node(parent, tok, end, logmass, depth, base))
        if parent >= 0 and math.isnan(logmass):
            self.expected[parent] = len(self.nodes) - 1
        return len(self.nodes) - 1

    def absorb(self, idx: int, logprobs: torch.Tensor) -> None:
        """Record node ``idx``'s covers and children from its (V,) next-token log-probs."""
        node = self.nodes[idx]
        node.state = DONE
        self.stats.evaluated += 1
        self.stats.branches += node.depth > 0
        if self.keep_probs:
            node.end_lp = torch.logsumexp(logprobs[self.trie.ends], 0).item() if len(self.trie.ends) else -math.inf
        lo, hi = 0, len(self.trie.keys)
        sorted_lp = cum = None
        node.covers = []
        k = 0
        while node.end + k < len(self.text):
            lo, hi = self.trie.step(lo, hi, k, self.text[node.end + k])
            if lo >= hi:
                break
            if sorted_lp is None:  # gather only the first byte's range: a small share of the vocabulary
                sorted_lp, node.offset = logprobs[self.trie.ids[lo:hi]], lo
                top = sorted_lp.max().item()
                cum = np.concatenate([[0.0], np.cumsum(np.exp(sorted_lp.double().numpy() - top))])
            k += 1
            node.covers.append(_range_logsumexp(cum, top, sorted_lp, lo - node.offset, hi - node.offset))
            if idx or k >= self.limits.min_first:
                for tok in self.trie.exact(lo, hi, k):
                    self.child(idx, tok, node.end + k, node.logmass + logprobs[tok].item())
        node.lo, node.hi = lo, hi
        if self.keep_probs and lo < hi:
            if sorted_lp is None:
                sorted_lp, node.offset = logprobs[self.trie.ids], 0
            node.sorted_lp = sorted_lp.clone()

    def child(self, parent: int, tok: int, end: int, logmass: float) -> None:
        """A new pending child, unless it was created in advance (then it only gets its mass)."""
        made = self.expected.get(parent)
        if made is not None and self.nodes[made].token == tok:
            self.nodes[made].logmass = logmass
            if self.nodes[made].depth == 0:
                self.canonical_logprob += logmass - self.nodes[parent].logmass
            return
        p = self.nodes[parent]
        self._add(parent, tok, end, logmass, p.depth + 1, p.base)

    # -- deciding and evaluating ------------------------------------------------------------
    def prefix_logmass(self) -> tuple[np.ndarray, np.ndarray]:
        """``(kept, pruned)``: per byte offset i = 0..len(text), log P(text starts with text[:i]) over the kept
        sequences, and log of the pruned mass ending at i (-inf where none)."""
        n = len(self.text)
        pos, val, ppos, pval = [0], [0.0], [], []
        for node in self.nodes:
            if node.state == DONE and node.covers:
                pos.extend(range(node.end + 1, node.end + 1 + len(node.covers)))
                val.extend(node.logmass + c for c in node.covers)
            elif node.state == PRUNED:
                ppos.append(node.end)
                pval.append(node.logmass)
        total = _scatter_logsumexp(np.array(pos), np.array(val), n + 1)
        pruned = _scatter_logsumexp(np.array(ppos, dtype=np.int64), np.array(pval), n + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            kept = total + np.log1p(-np.exp(np.minimum(pruned - total, 0.0)))
        return np.where(np.isneginf(pruned), total, kept), pruned

    def decide(self) -> list[int]:
        """Check the nodes run ahead, prune or keep every pending node with a known mass; return the kept
        pending branch nodes (to evaluate next)."""
        todo = []
        for i, node in enumerate(self.nodes):
            if node.state == DEAD or math.isnan(node.logmass) or not (node.state == PENDING or node.unchecked):
                continue
            if node.depth == 0:
                continue  # canonical: evaluated with its window
            target = self.canonical_at.get(node.end)
            if node.state == PENDING and self.final and node.end == len(self.text):
                node.state = LEAF
            elif node.state == PENDING and self.limits.merge and target is not None:
                if not math.isnan(self.nodes[target].logmass):
                    self._merge(i, target)
            else:
                todo.append(i)
        # after the merges, which raise the masses below them: undecided nodes still count here (they are
        # inside their parents' covers)
        total, _ = self.prefix_logmass() if todo else (None, None)
        keep = []
        for i in todo:
            node = self.nodes[i]
            if node.state == DEAD:
                continue  # below a node pruned earlier in this loop
            if node.logmass - total[node.end] < self.limits.log_floor(node.depth) \
                    or node.depth + self.nodes[node.base].position >= self.limits.positions:
                self._prune(i)
            elif node.unchecked:
                node.unchecked = False
            else:
                keep.append(i)
        return keep

    def _merge(self, idx: int, target: int) -> None:
        # Fold idx into the canonical node ending at the same byte: assume that the model continues
        # after either tokenization alike. The canonical node and everything below it gain idx's mass.
        node, canon = self.nodes[idx], self.nodes[target]
        node.state = MERGED
        delta = math.log1p(math.exp(node.logmass - canon.logmass))
        self.merged.append((node.end, node.logmass, delta))
        for j in range(target, len(self.nodes)):
            other = self.nodes[j]
            if (other.depth == 0 and j >= target) or (other.depth > 0 and other.base >= target):
                other.logmass += delta

    def _prune(self, idx: int) -> None:
        self.nodes[idx].state = PRUNED
        self.stats.pruned += 1
        dead = {idx}
        for j in range(idx + 1, len(self.nodes)):  # children always come after their parents
            if self.nodes[j].parent in dead:
                dead.add(j)
                self.nodes[j].state = DEAD

    def run_ahead(self, idxs: list[int]) -> list[int]:
        """``idxs`` plus, after each deep node that ends on a canonical boundary with a share that keeps it
        followed, the next ``CHAIN`` canonical tokens as its descendants: one round instead of ``CHAIN``."""
        out = []
        total = None
        for i in idxs:
            out.append(i)
            node = self.nodes[i]
            c = self.canonical_at.get(node.end)
            if node.depth < self.limits.max_depth or c is None:
                continue
            total = self.prefix_logmass()[0] if total is None else total
            if node.logmass - total[node.end] < self.limits.log_floor(node.depth + 1):
                continue
            prev = i
            for j in range(c + 1, min(c + 1 + CHAIN, len(self.nodes))):
                canon = self.nodes[j]
                if canon.depth != 0 or (self.final and canon.end == len(self.text)):
                    break
                prev = self._add(prev, canon.token, canon.end, math.nan, self.nodes[prev].depth + 1, node.base)
                self.nodes[prev].unchecked = True
                out.append(prev)
        return out

    def queries(self, idxs: list[int]) -> list[Query]:
        """Queries for branch nodes ``idxs`` (in this order, slots from the evaluator's next free one)."""
        first = self.ev.slots
        for r, i in enumerate(idxs):
            self.nodes[i].slot = first + r
        out = []
        for i in idxs:
            node = self.nodes[i]
            extra, p = [], node.parent
            while self.nodes[p].depth > 0:
                extra.append(self.nodes[p].slot)
                p = self.nodes[p].parent
            node.position = self.nodes[node.base].position + node.depth
            out.append(Query(node.token, node.position, self.nodes[node.base].slot + 1, tuple(extra)))
        return out

    def evaluate(self, idxs: list[int]) -> None:
        """Run the model on branch nodes ``idxs`` (parents before children) and absorb their log-probs."""
        qs = self.queries(idxs)
        for start in range(0, len(qs), ROWS):
            hidden = self.ev.feed(qs[start:start + ROWS])
            lp = self.ev.logprobs(hidden).cpu()  # the trie and the bookkeeping live on the CPU
            for r, i in enumerate(idxs[start:start + ROWS]):
                self.absorb(i, lp[r])
        self.stats.rounds += 1

    def settle(self) -> None:
        """Decide and evaluate rounds of branches until nothing evaluable is pending."""
        while True:
            keep = self.decide()
            if not keep:
                return
            self.evaluate(self.run_ahead(keep))

    # -- results ---------------------------------------------------------------------------
    def byte_logprobs(self) -> np.ndarray:
        """(len(text),) float64: log P(byte i | bytes before it), nats, over the kept sequences."""
        kept, _ = self.prefix_logmass()
        return np.diff(kept)

    def dropped_mass(self, upto: int) -> float:
        """Probability mass pruned or merged at byte offsets <= ``upto``: P(text starts with text[:upto])
        differs from the kept value by at most this (a bound for short strings)."""
        _, pruned = self.prefix_logmass()
        merged = sum(math.exp(m) for end, m, _ in self.merged if end <= upto)
        return float(np.exp(pruned[:upto + 1]).sum()) + merged

    def merged_bits(self) -> float:
        """Sum over merges of log2(1 + merged mass / canonical mass there): the log-likelihood that merging
        added where it merged, which rests on the merge assumption."""
        return float(sum(d for _, _, d in self.merged) / math.log(2))

    def pruned_bits(self) -> float:
        """Sum over pruning points of -log2(1 - pruned share) (see the module docstring)."""
        kept, pruned = self.prefix_logmass()
        mask = ~np.isneginf(pruned)
        with np.errstate(divide="ignore"):
            return float(np.sum(np.logaddexp(kept[mask], pruned[mask]) - kept[mask]) / math.log(2))


def _range_logsumexp(cum: np.ndarray, top: float, values: torch.Tensor, lo: int, hi: int) -> float:
    """log sum exp(values[lo:hi]) from prefix sums of exp(values - top); exact recomputation where the
    difference of two prefix sums would lose the digits (a range far lighter than the whole)."""
    part = cum[hi] - cum[lo]
    if part > 1e-9 * cum[-1]:
        return top + math.log(part)
    return torch.logsumexp(values[lo:hi], 0).item()


def _scatter_logsumexp(pos: np.ndarray, val: np.ndarray, size: int) -> np.ndarray:
    """out[j] = log sum exp(val[pos == j]) (-inf where no value)."""
    out = np.full(size, -np.inf)
    if len(pos) == 0:
        return out
    top = np.full(size, -np.inf)
    np.maximum.at(top, pos, val)
    acc = np.zeros(size)
    np.add.at(acc, pos, np.exp(val - top[pos]))
    with np.errstate(divide="ignore"):
        found = acc > 0
        out[found] = top[found] + np.log(acc[found])
    return out
