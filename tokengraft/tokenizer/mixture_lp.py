"""The data-mixture linear program (Hayase et al. 2024), solved with lazy constraints.

Unknowns: the mixture ``alpha`` (n,), ``alpha >= 0``, ``sum(alpha) = 1``. With ``c[i, t](p)``
the count of pair ``p`` in category ``i``'s sample at step ``t``, per MB of that sample, the
merge ``m_t`` chosen at step ``t`` must have been at least as frequent as every other pair::

    sum_i alpha_i (c[i, t](m_t) - c[i, t](p)) + v_t + v_p >= 0      for every step t, pair p

Samples make these fail a little, so each step has a slack ``v_t >= 0`` and each pair a
slack ``v_p >= 0`` (a pair that is over-represented in the samples, at every step at once);
the LP minimises ``sum v_t + sum v_p``. Slacks are in pair occurrences per MB.

There are steps x pairs constraints (30k x 100k+), so they are generated lazily: solve with
the constraints found so far, then find the violated ones and add the worst, until none is
violated. Finding them is vectorised: a pair's mixed count is constant between the steps
at which one of its category counts changes (a *segment*), so for each segment the step
where it is most violated is the one with the lowest threshold ``s_t(m_t) + v_t`` in its
range, found with a sparse table (range minimum in O(1) per segment).
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from tokengraft.errors import missing_package
from tokengraft.tokenizer.mixture_counts import PairCounts

logger = logging.getLogger(__name__)

PER_MB = 1e6  # counts are compared per MB of each category's sample


@dataclass
class LPSolution:
    proportions: np.ndarray      # (n,) the mixture, sums to 1
    total_slack: float           # objective: sum of all slacks, occurrences per MB
    merge_slack: np.ndarray      # (T,) v_t
    merge_mixed: np.ndarray      # (T,) the mixed count of each step's merge, mc_t @ alpha
    pair_slack: float            # sum of v_p
    merge_frequency: float       # sum over constrained steps of the mixed count of the merge
    rounds: int
    constraints: int
    active_steps: int            # steps whose merge occurs in some sample
    converged: bool


@dataclass
class _Segments:
    pid: np.ndarray      # (S,) dense pair id
    start: np.ndarray    # (S,) first step of the segment
    stop: np.ndarray     # (S,) one past its last step (merge's own step excluded)
    values: np.ndarray   # (S, n) counts per MB in each category


def build_segments(counts: list[PairCounts], merge_keys: np.ndarray) -> tuple[_Segments, np.ndarray]:
    """Piecewise-constant timelines of every pair's counts; also the dense id of each merge's pair."""
    n, T = len(counts), len(merge_keys)
    keys = np.unique(np.concatenate([c.initial_keys for c in counts] + [c.delta_keys for c in counts]))
    parts_pid, parts_t, parts_cat, parts_d = [], [], [], []
    for i, c in enumerate(counts):
        steps = np.repeat(np.arange(T, dtype=np.int64), np.diff(c.step_ptr))
        parts_pid += [np.searchsorted(keys, c.initial_keys), np.searchsorted(keys, c.delta_keys)]
        parts_t += [np.full(len(c.initial_keys), -1, dtype=np.int64), steps]
        parts_cat += [np.full(len(c.initial_keys) + len(c.delta_keys), i, dtype=np.int8)]
        parts_d += [c.initial_counts, c.delta_values]
    pid, t, cat, delta = (np.concatenate(parts_pid), np.concatenate(parts_t),
                          np.concatenate(parts_cat), np.concatenate(parts_d))
    order = np.lexsort((t, pid))
    pid, t, cat, delta = pid[order], t[order], cat[order], delta[order]
    # one segment per (pid, t) group: it holds from step t + 1 to the pair's next change
    last = np.ones(len(pid), dtype=bool)
    last[:-1] = (pid[1:] != pid[:-1]) | (t[1:] != t[:-1])
    group_start = np.ones(len(pid), dtype=bool)
    group_start[1:] = pid[1:] != pid[:-1]
    seg_pid, seg_start = pid[last], t[last] + 1
    seg_stop = np.empty_like(seg_start)
    seg_stop[:-1] = np.where(seg_pid[1:] == seg_pid[:-1], seg_start[1:], T)
    seg_stop[-1:] = T
    values = np.empty((len(seg_pid), n), dtype=np.float64)
    pair_first = np.maximum.accumulate(np.where(group_start, np.arange(len(pid)), 0))
    for i, c in enumerate(counts):
        running = np.cumsum(np.where(cat == i, delta, 0))
        before = np.where(pair_first > 0, running[pair_first - 1], 0)  # cumsum restarts at each pair
        values[:, i] = (running - before)[last] * (PER_MB / c.n_bytes)
    merge_pid = np.searchsorted(keys, merge_keys)
    merge_pid = np.where((merge_pid < len(keys)) & (keys[np.minimum(merge_pid, len(keys) - 1)] == merge_keys),
                         merge_pid, -1)
    own = seg_stop > 0
    own[own] = merge_pid[seg_stop[own] - 1] == seg_pid[own]
    seg_stop = seg_stop - own  # a merge's pair does not compete with itself at its own step
    keep = (seg_stop > seg_start) & (values.max(axis=1) > 0)
    return _Segments(seg_pid[keep], seg_start[keep], seg_stop[keep], values[keep]), merge_pid


def _sparse_table(theta: np.ndarray) -> list[np.ndarray]:
    """levels[k][i] = argmin of theta[i : i + 2**k]."""
    levels = [np.arange(len(theta))]
    span = 1
    while 2 * span <= len(theta):
        prev = levels[-1]
        a, b = prev[:-span], prev[span:]
        levels.append(np.where(theta[b] < theta[a], b, a))
        span *= 2
    return levels


def range_argmin(theta: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """argmin of ``theta[start[j]:stop[j]]`` for every j (all ranges non-empty)."""
    levels = _sparse_table(theta)
    length = stop - start
    k = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty(len(start), dtype=np.int64)
    for level in np.unique(k):
        sel = k == level
        table = levels[level]
        a, b = table[start[sel]], table[stop[sel] - (1 << int(level))]
        out[sel] = np.where(theta[b] < theta[a], b, a)
    return out


@contextmanager
def _quiet_stdout():
    """HiGHS prints a banner from C++ when constructed; keep it out of our output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def dyadic_cover(start: np.ndarray, stop: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cover each range ``[start[j], stop[j])`` of ``0..size-1`` (size a power of two) by
    O(log size) nodes of a segment tree (node 1 is the root, leaf t is ``size + t``).
    Returns (j, node) pairs.

    >>> dyadic_cover(np.array([1]), np.array([4]), 4)
    (array([0, 0]), array([5, 3]))
    """
    owner = np.arange(len(start))
    lo, hi = start + size, stop + size
    owners, nodes = [owner[:0]], [lo[:0]]
    while True:
        live = lo < hi
        if not live.any():
            break
        take = live & (lo & 1 == 1)
        owners.append(owner[take])
        nodes.append(lo[take])
        lo = lo + take
        take = live & (hi & 1 == 1)
        hi = hi - take
        owners.append(owner[take])
        nodes.append(hi[take])
        lo, hi = lo >> 1, hi >> 1
    return np.concatenate(owners), np.concatenate(nodes)


class _LP:
    """The LP over the segments found so far, kept in one HiGHS instance so that each
    round re-solves from the last basis (dual simplex after adding rows).

    Columns: alpha (n), v_t (T), u_k for the nodes of a segment tree over the steps, then
    one v_p per pair as its segments enter. ``u_k <= min(threshold_t)`` over the steps of
    node k (``u_k <= u_children``, ``u_leaf_t <= mc_t @ alpha + v_t``), so a segment of
    pair p over steps [l, r) needs only ``value @ alpha - v_p <= u_k`` for the O(log T)
    nodes covering [l, r): all its (step, pair) constraints at once, exactly."""

    def __init__(self, mc: np.ndarray, active: np.ndarray) -> None:
        try:
            import highspy
        except ImportError as exc:
            raise missing_package("data-mixture inference", "highspy", "pip install highspy") from exc
        with _quiet_stdout():
            self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        inf = self.inf = highspy.kHighsInf
        self.optimal = highspy.HighsModelStatus.kOptimal
        T, n = mc.shape
        self.n, self.T = n, T
        self.size = 1 << max(0, int(T - 1).bit_length())
        self.u0 = n + T  # column of node k is u0 + k (node 0 unused)
        ncols = n + T + 2 * self.size
        self.h.addVars(ncols, np.zeros(ncols), np.r_[np.ones(n), np.full(T, inf), np.zeros(1),
                                                     np.full(2 * self.size - 1, inf)])
        self.h.changeColsBounds(2 * self.size - 1, np.arange(self.u0 + 1, ncols, dtype=np.int32),
                                np.full(2 * self.size - 1, -inf), np.full(2 * self.size - 1, inf))
        self.h.changeColsCost(T, np.arange(n, n + T, dtype=np.int32), np.ones(T))
        self._rows(np.ones((1, n)), np.arange(n)[None, :], 1.0, 1.0)  # sum(alpha) = 1
        parents = np.arange(1, self.size)
        for child in (2 * parents, 2 * parents + 1):  # u_parent - u_child <= 0
            self._rows(np.tile([1.0, -1.0], (len(parents), 1)), np.stack([self.u0 + parents, self.u0 + child], 1),
                       -inf, 0.0)
        steps = np.flatnonzero(active)  # u_leaf - mc @ alpha - v_t <= 0
        coef = np.concatenate([np.ones((len(steps), 1)), -mc[steps], -np.ones((len(steps), 1))], axis=1)
        cols = np.concatenate([(self.u0 + self.size + steps)[:, None], np.tile(np.arange(n), (len(steps), 1)),
                               (n + steps)[:, None]], axis=1)
        self._rows(coef, cols, -inf, 0.0)
        self.pair_col: dict[int, int] = {}
        self.segment_rows = 0

    def _rows(self, coef: np.ndarray, cols: np.ndarray, lower: float, upper: float) -> None:
        k, width = coef.shape
        if k:
            self.h.addRows(k, np.full(k, lower), np.full(k, upper), k * width,
                           np.arange(0, k * width, width, dtype=np.int32), cols.astype(np.int32).ravel(),
                           coef.astype(np.float64).ravel())

    def add_rows(self, pids: np.ndarray, nodes: np.ndarray, values: np.ndarray) -> None:
        """Rows ``values[j] @ alpha - v_{pids[j]} - u_{nodes[j]} <= 0``."""
        new = [p for p in dict.fromkeys(pids.tolist()) if p not in self.pair_col]
        if new:
            first = self.n + self.T + 2 * self.size + len(self.pair_col)
            self.pair_col.update({p: first + j for j, p in enumerate(new)})
            self.h.addVars(len(new), np.zeros(len(new)), np.full(len(new), self.inf))
            self.h.changeColsCost(len(new), np.arange(first, first + len(new), dtype=np.int32), np.ones(len(new)))
        pcol = np.asarray([self.pair_col[p] for p in pids.tolist()], dtype=np.int64)
        coef = np.concatenate([values, -np.ones((len(pids), 2))], axis=1)
        cols = np.concatenate([np.tile(np.arange(self.n), (len(pids), 1)), pcol[:, None], (self.u0 + nodes)[:, None]], 1)
        self._rows(coef, cols, -self.inf, 0.0)
        self.segment_rows += len(pids)

    def node_minimum(self, theta: np.ndarray) -> np.ndarray:
        """(2 * size,) the minimum of ``theta`` over the steps of every tree node."""
        out = np.full(2 * self.size, np.inf)
        out[self.size:self.size + self.T] = theta
        lo = self.size
        while lo > 1:
            hi, lo = lo, lo // 2
            out[lo:hi] = np.minimum(out[2 * lo:2 * hi:2], out[2 * lo + 1:2 * hi:2])
        return out

    def solve(self) -> tuple[np.ndarray, np.ndarray, dict[int, float], float]:
        """(alpha, v_t, {pid: v_p}, objective)."""
        self.h.run()
        status = self.h.getModelStatus()
        if status != self.optimal:
            raise RuntimeError(f"HiGHS did not solve the mixture LP: {self.h.modelStatusToString(status)}")
        x = np.asarray(self.h.getSolution().col_value)
        alpha = np.clip(x[:self.n], 0, None)
        pairs = {p: float(x[c]) for p, c in self.pair_col.items()}
        return alpha / alpha.sum(), x[self.n:self.n + self.T], pairs, float(self.h.getInfo().objective_function_value)


def solve_mixture(counts: list[PairCounts], merge_keys: np.ndarray, *, min_count: int = 1, tolerance: float = 1e-6,
                  max_add: int = 1000, max_rounds: int = 200) -> LPSolution:
    """Solve the mixture LP for ``counts`` (one :class:`PairCounts` per category, same
    merges) and ``merge_keys`` (T,) the pair key of each merge.

    Only steps whose merge occurs at least ``min_count`` times in some sample are
    constrained (a merge seen once or twice is noise, not evidence). Each round adds the
    (at most ``max_add``) most violated segments; a segment once added
    is satisfied for good, so the rounds end when no segment is violated by more than
    ``tolerance`` (occurrences per MB).
    """
    n, T = len(counts), len(merge_keys)
    seg, _ = build_segments(counts, merge_keys)
    mc = np.stack([c.merge_counts * (PER_MB / c.n_bytes) for c in counts], axis=1)  # (T, n)
    active = np.stack([c.merge_counts for c in counts], axis=1).max(axis=1) >= max(1, min_count)
    # a segment above no threshold whatever the mixture can never be violated: drop it
    floor = np.where(active, mc.min(axis=1), np.inf)
    if len(seg.pid):
        lowest = floor[range_argmin(floor, seg.start, seg.stop)]
        keep = seg.values.max(axis=1) > lowest
        seg = _Segments(seg.pid[keep], seg.start[keep], seg.stop[keep], seg.values[keep])
    logger.debug("mixture LP: %d steps (%d active), %d segments that may bind", T, int(active.sum()), len(seg.pid))
    alpha, v_step, v_pair = np.full(n, 1.0 / n), np.zeros(T), {}
    lp = _LP(mc, active)
    # every segment's range as tree nodes; a (segment, node) row enters once it is violated
    owner, node = dyadic_cover(seg.start, seg.stop, lp.size)
    added = np.zeros(len(owner), dtype=bool)
    objective, rounds, converged = 0.0, 0, False
    n_pairs = int(seg.pid.max()) + 1 if len(seg.pid) else 1
    while rounds < max_rounds:
        theta = np.where(active, mc @ alpha + v_step + tolerance, np.inf)
        pslack = np.zeros(n_pairs)
        if v_pair:
            pslack[np.fromiter(v_pair.keys(), dtype=np.int64)] = np.fromiter(v_pair.values(), dtype=np.float64)
        value = seg.values @ alpha - pslack[seg.pid]
        excess = value[owner] - lp.node_minimum(theta)[node]
        hit = np.flatnonzero((excess > 0) & ~added)
        if len(hit) == 0:
            converged = True
            break
        hit = hit[np.argsort(-excess[hit], kind="stable")[:max_add]]
        added[hit] = True
        lp.add_rows(seg.pid[owner[hit]], node[hit], seg.values[owner[hit]])
        rounds += 1
        alpha, v_step, v_pair, objective = lp.solve()
        logger.debug("round %d: +%d rows (%d), slack %.4g, alpha %s", rounds, len(hit), lp.segment_rows,
                  objective, np.round(alpha, 4).tolist())
    if not converged:
        logger.warning("the mixture LP stopped after %d rounds with violated constraints left; "
                    "the proportions are approximate", max_rounds)
    return LPSolution(
        proportions=alpha, total_slack=objective, merge_slack=v_step, merge_mixed=mc @ alpha, pair_slack=float(sum(v_pair.values())),
        merge_frequency=float((mc @ alpha)[active].sum()), rounds=rounds, constraints=lp.segment_rows,
        active_steps=int(active.sum()), converged=converged)
