"""Output rows fitted to cached hidden states: a convex problem, no backward through the body.

The head computes ``logits = W h`` (plus the model's bias, scale and softcap). With the
body frozen and its final states ``h`` cached at N positions of real text, the next-token
loss is a multinomial logistic regression in ``W`` (convex without a softcap), so the rows
can be fitted with many cheap passes over the cache instead of backpropagating through the
body for every step. Targets are the next token of the text (``labels``) and, optionally,
a soft distribution over a few candidate tokens per position (``soft``: e.g. the base model's
probability of each candidate's bytes), mixed with weight ``soft_weight``.

Regularisation is a pull towards the initial rows (decoupled, like AdamW's decay but towards
``init`` instead of 0): rows of tokens that the cache rarely shows stay near their
training-free estimate. The last slice of the cache (other rows of text) is held out; the rows
with the lowest held-out loss are returned, so the number of passes needs no tuning.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)


@dataclass
class OutputFitOptions:
    lr: float = 3e-3               # Adam step size on the rows
    batch: int = 2048              # cached positions per step
    max_epochs: int = 20           # passes over the cache at most (the deadline may stop earlier)
    anchor: float = 1e-3           # decoupled pull towards the initial rows, per step, times lr
    holdout: float = 0.1           # share of positions held out to pick the best pass
    soft_weight: float = 0.0       # weight of the soft-target cross-entropy (0: labels only)
    seed: int = 0


@dataclass
class Head:
    """How a model's head turns rows and states into logits (see measure.scorer.OutputHead)."""
    bias: torch.Tensor | None = None
    scale: float = 1.0
    softcap: float | None = None

    def logits(self, rows: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """(N, V) float32 logits of states ``hidden`` (N, d) under ``rows`` (V, d)."""
        out = F.linear(hidden, rows, self.bias).float()
        if self.scale != 1.0:
            out = out * self.scale
        if self.softcap:
            out = torch.tanh(out / self.softcap) * self.softcap
        return out


@dataclass
class SoftTargets:
    """A distribution over a few candidates per cached position."""
    ids: torch.Tensor              # (N, K) long candidate token ids (-1: none)
    logprob: torch.Tensor          # (N, K) float32 log-probabilities, normalised over the valid candidates


@dataclass
class OutputFit:
    rows: torch.Tensor             # (V, d) fitted rows
    curve: list[dict[str, float]] = field(default_factory=list)  # per pass: train and held-out loss
    epochs: int = 0
    seconds: float = 0.0


def mean_nll(head: Head, rows: torch.Tensor, hidden: torch.Tensor, labels: torch.Tensor, batch: int = 4096) -> float:
    """Mean next-token NLL (nats) of ``labels`` (N,) under ``rows`` on ``hidden`` (N, d)."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, hidden.shape[0], batch):
            total += float(F.cross_entropy(head.logits(rows, hidden[i:i + batch]), labels[i:i + batch],
                                           reduction="sum"))
    return total / max(1, hidden.shape[0])


def _loss(head: Head, rows: torch.Tensor, hidden: torch.Tensor, labels: torch.Tensor,
          soft: SoftTargets | None, idx: torch.Tensor, soft_weight: float) -> torch.Tensor:
    logits = head.logits(rows, hidden[idx])
    loss = F.cross_entropy(logits, labels[idx])
    if soft is not None and soft_weight > 0:
        ids, logp = soft.ids[idx], soft.logprob[idx]
        valid = ids >= 0
        student = torch.log_softmax(logits, dim=-1).gather(1, ids.clamp(min=0))
        ce = -(logp.exp() * student * valid).sum(dim=1)
        loss = (1 - soft_weight) * loss + soft_weight * ce.mean()
    return loss


def fit_output_rows(hidden: torch.Tensor, labels: torch.Tensor, init: torch.Tensor, head: Head | None = None,
                    options: OutputFitOptions | None = None, soft: SoftTargets | None = None,
                    deadline: float | None = None, trainable: torch.Tensor | None = None) -> OutputFit:
    """Fit rows (V, d) from ``init`` to cached states ``hidden`` (N, d) and next tokens ``labels`` (N,).

    ``trainable``: (V,) bool rows that may move (None: all). ``deadline``: a
    ``time.perf_counter()`` value after which no further step starts.

    >>> h = torch.randn(512, 8); w = torch.randn(5, 8); y = (h @ w.T).argmax(1)
    >>> fit = fit_output_rows(h, y, torch.zeros(5, 8), options=OutputFitOptions(lr=0.05, batch=64))
    >>> mean_nll(Head(), fit.rows, h, y) < math.log(5) / 2
    True
    """
    options = options or OutputFitOptions()
    head = head or Head()
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(options.seed)
    n = hidden.shape[0]
    # The held-out slice is the last positions, in order: other rows, mostly other documents. A
    # random sample of positions would share documents (and their phrases) with the training
    # positions and reward fitting them by heart.
    n_val = int(n * options.holdout) if n >= 20 else 0
    val, train = torch.arange(n - n_val, n), torch.arange(n - n_val)
    anchor = init.detach().float()
    rows = torch.nn.Parameter(anchor.clone())
    optimizer = torch.optim.Adam([rows], lr=options.lr)
    keep = None if trainable is None else trainable.to(rows.device, torch.float32)[:, None]

    def held_out() -> float:
        return mean_nll(head, rows.detach(), hidden[val], labels[val]) if n_val else math.nan

    best = (held_out(), rows.detach().clone())
    curve = [{"epoch": 0, "train": math.nan, "heldout": best[0]}]
    epochs, stopped = 0, False
    for epoch in range(1, options.max_epochs + 1):
        perm = train[torch.randperm(train.numel(), generator=gen)]
        total, count = 0.0, 0
        for i in range(0, perm.numel(), options.batch):
            if deadline is not None and time.perf_counter() > deadline:
                stopped = True
                break
            idx = perm[i:i + options.batch]
            loss = _loss(head, rows, hidden, labels, soft, idx, options.soft_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if keep is not None:
                rows.grad.mul_(keep)
            optimizer.step()
            with torch.no_grad():  # decoupled pull towards the training-free rows
                rows.sub_((rows - anchor) * (options.lr * options.anchor))
            total, count = total + float(loss.detach()) * idx.numel(), count + idx.numel()
        if count == 0:
            break
        epochs = epoch
        score = held_out()
        curve.append({"epoch": epoch, "train": total / count, "heldout": score})
        logger.info("output fit pass %d: train %.4f, held-out %.4f nats", epoch, total / count, score)
        if n_val and score < best[0]:
            best = (score, rows.detach().clone())
        elif n_val and score > best[0] + 1e-4:
            break  # past the best pass: further passes only fit the cache
        if stopped:
            break
    final = best[1] if n_val else rows.detach()
    return OutputFit(final, curve, epochs, time.perf_counter() - t0)
