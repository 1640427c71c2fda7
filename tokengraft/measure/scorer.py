"""Negative log-likelihood of chosen labels at chosen positions of a right-padded batch.

Fast path: run the decoder body to hidden states, keep only the scored positions, and
apply the output head to them in chunks, so no (batch, seq, vocab) float32 logits ever
exist (at a 262k vocabulary one 2048-token row alone would be 2 GB). Architecture quirks
of the head (Gemma's final logit softcapping, Cohere's logit scale, Granite's logit
divisor) are applied from the config, and a one-off check against the model's own full
forward decides whether the split is exact; models without a separable decoder, or whose
check fails, use the full forward (correct, just heavier).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tokengraft.lm.head import split_head
from tokengraft.measure.windows import Window

logger = logging.getLogger(__name__)

# How far the split path may differ from the full forward (nats) and still count as exact.
TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 5e-2}


@dataclass
class Batch:
    input_ids: torch.Tensor       # (B, T) long, right padded
    attention_mask: torch.Tensor  # (B, T) long, 1 on real tokens
    positions: torch.Tensor       # (N,) long: row * T + column of every scored input position
    labels: torch.Tensor          # (N,) long: the token each scored position must predict


def build_batch(rows: list[tuple[torch.Tensor, Window]], pad_id: int = 0) -> Batch:
    """Pack windows of start-prefixed sequences into one right-padded batch.

    Row r feeds ``seq[begin:end]`` and scores columns ``score_from - begin .. end - begin - 1``
    against labels ``seq[score_from + 1 : end + 1]``.
    """
    width = max(w.end - w.begin for _, w in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    positions, labels = [], []
    for r, (seq, w) in enumerate(rows):
        n = w.end - w.begin
        input_ids[r, :n] = seq[w.begin:w.end]
        attention_mask[r, :n] = 1
        positions.append(torch.arange(w.score_from - w.begin, n) + r * width)
        labels.append(seq[w.score_from + 1:w.end + 1])
    return Batch(input_ids, attention_mask, torch.cat(positions), torch.cat(labels))


class Scorer:
    """Turns a :class:`Batch` into per-label NLL (nats) with the cheapest exact path."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self.model = model
        self.device = device
        self.head = split_head(model)
        self.verified = self.head is None  # nothing to verify on the full-forward path

    @property
    def path(self) -> str:
        return "split" if self.head is not None else "full"

    def nll(self, batch: Batch) -> torch.Tensor:
        """(N,) float32 NLL of ``batch.labels``, on ``self.device``."""
        non_blocking = self.device.type == "cuda"
        ids = batch.input_ids.to(self.device, non_blocking=non_blocking)
        mask = batch.attention_mask.to(self.device, non_blocking=non_blocking)
        positions = batch.positions.to(self.device, non_blocking=non_blocking)
        labels = batch.labels.to(self.device, non_blocking=non_blocking)
        if not self.verified:
            self._verify(ids[:1, :64])
        if self.head is None:
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            picked = logits.reshape(-1, logits.shape[-1]).index_select(0, positions).float()
            return F.cross_entropy(picked, labels, reduction="none")
        hidden = self.model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)[0]
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
        return self.head.nll(picked, labels)

    def _verify(self, ids: torch.Tensor) -> None:
        # Some architectures change hidden states between the body and the head (e.g. a
        # scaling in the CausalLM wrapper); compare once with the model's own logits.
        self.verified = True
        if ids.shape[1] < 2:
            ids = ids.repeat(1, 2)  # a batch of one-token windows: any two ids make a probe
        labels = ids[0, 1:]
        full = self.model(input_ids=ids, use_cache=False).logits[0, :-1].float()
        expected = F.cross_entropy(full, labels, reduction="none")
        hidden = self.model.base_model(input_ids=ids, use_cache=False)[0][0, :-1]
        got = self.head.nll(hidden, labels)  # type: ignore[union-attr]
        diff = (got - expected).abs().max().item()
        kind = self.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else hidden.dtype
        tol = TOLERANCE.get(dtype, TOLERANCE[torch.bfloat16])
        if diff > tol:
            logger.warning("hidden-state scoring differs from the model's forward by %.3g nats;"
                           " using the full forward", diff)
            self.head = None
        else:
            logger.debug("split scoring agrees with the full forward (max diff %.2g nats)", diff)
