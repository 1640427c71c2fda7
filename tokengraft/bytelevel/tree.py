"""Next-token log-probs of many token sequences that share prefixes, through one KV cache.

Every token fed to the model takes one *slot* of the cache, with its own position id. A
query token attends to the slots of its ancestors only (a 4-D attention mask), so the
alternative tokenizations of a text are evaluated as one tree in batched forwards: the
canonical tokenization first (a prefill, as plain scoring does), then each round of
alternatives on top of it, reusing every key and value already computed. Models with
sliding-window layers (Gemma-3) get a second mask that also hides slots further back
than the window.

A one-off check compares a tree-evaluated node with the model's own forward over the
same tokens; where they disagree (an architecture that ignores custom masks) every node
is evaluated by a plain forward of its whole sequence instead: correct, just slower.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from tokengraft.lm.cache import cache_argument

log = logging.getLogger(__name__)

# How far the tree path may differ from a plain forward (max |log-prob| difference, nats).
TOLERANCE = {torch.float32: 2e-3, torch.bfloat16: 8e-2}


@dataclass
class Query:
    """One token to feed: it sees cache slots ``[0, prefix)``, the slots in ``extra``, and itself."""
    token: int
    position: int
    prefix: int
    extra: tuple[int, ...] = ()


@dataclass
class TreeEvaluator:
    """Feeds :class:`Query` batches into one growing cache; ``slots`` counts the tokens fed so far."""
    model: Any
    device: torch.device
    head: Any = None                      # measure.scorer.OutputHead, or None: the model's own logits
    slot_tokens: list[int] = field(default_factory=list)
    slot_positions: list[int] = field(default_factory=list)
    plain: bool = False                   # True: the check failed, evaluate every node by a plain forward
    checked: bool = False

    def __post_init__(self) -> None:
        from tokengraft.lm.head import split_head, text_config

        config = text_config(self.model)
        kinds = set(getattr(config, "layer_types", None) or [])
        self.window = getattr(config, "sliding_window", None) if "sliding_attention" in kinds else None
        self.head = split_head(self.model)
        self.body = self.model.base_model if self.head is not None else self.model
        self.reset()

    @property
    def slots(self) -> int:
        return len(self.slot_tokens)

    def reset(self) -> None:
        """Forget every slot (a new window or a new text)."""
        from transformers import DynamicCache

        self.cache = DynamicCache()  # no config: every layer keeps all its slots, the masks do the windowing
        self.slot_tokens, self.slot_positions = [], []

    def feed(self, queries: list[Query]) -> torch.Tensor:
        """Feed ``queries`` (new slots ``slots .. slots + Q - 1``); return their (Q, d) hidden states
        (their logits where the model has no separable head): see :meth:`logprobs`."""
        if not queries:
            return torch.zeros(0, 0)
        if not self.checked:
            self._check()
        if self.plain:  # one query at a time: a query may see the slots of those before it in the batch
            out = []
            for q in queries:
                out.append(self._plain(q))
                self.slot_tokens.append(q.token)
                self.slot_positions.append(q.position)
            return torch.cat(out)
        out = self._tree(queries)
        self.slot_tokens += [q.token for q in queries]
        self.slot_positions += [q.position for q in queries]
        return out

    def logprobs(self, hidden: torch.Tensor) -> torch.Tensor:
        """(N, d) hidden states (or logits without a split head) -> (N, V) float32 log-probs."""
        logits = self.head.logits(hidden) if self.head is not None else hidden.float()
        return torch.log_softmax(logits, dim=-1)

    def _tree(self, queries: list[Query]) -> torch.Tensor:
        start = self.slots
        total = start + len(queries)
        visible = torch.zeros(len(queries), total, dtype=torch.bool)
        for r, q in enumerate(queries):
            visible[r, :q.prefix] = True
            if q.extra:
                visible[r, list(q.extra)] = True
            visible[r, start + r] = True
        positions = torch.tensor([q.position for q in queries], dtype=torch.long)
        masks = self._masks(visible, positions)
        ids = torch.tensor([[q.token for q in queries]], device=self.device)
        out = self.body(input_ids=ids, attention_mask=masks, position_ids=positions[None].to(self.device),
                        use_cache=True, **cache_argument(self.body, self.cache))
        return out[0][0] if self.head is not None else out.logits[0]

    def _masks(self, visible: torch.Tensor, positions: torch.Tensor) -> Any:
        dtype = next(self.model.parameters()).dtype
        if torch.is_autocast_enabled(self.device.type):
            dtype = torch.get_autocast_dtype(self.device.type)
        low = torch.finfo(dtype).min

        def additive(allowed: torch.Tensor) -> torch.Tensor:
            mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, low)
            return mask[None, None].to(self.device)

        full = additive(visible)
        if self.window is None:
            return full
        keys = torch.tensor(self.slot_positions + positions.tolist(), dtype=torch.long)
        near = positions[:, None] - keys[None, :] < self.window
        return {"full_attention": full, "sliding_attention": additive(visible & near)}

    def _sequence(self, q: Query) -> list[int]:
        # the query's own slot (the next free one) may be inside its prefix range
        slots = sorted(s for s in set(range(q.prefix)) | set(q.extra) if s < self.slots)
        return [self.slot_tokens[s] for s in slots] + [q.token]

    def _plain(self, q: Query) -> torch.Tensor:
        return self._plain_ids(self._sequence(q))

    def _plain_ids(self, seq: list[int]) -> torch.Tensor:
        out = self.body(input_ids=torch.tensor([seq], device=self.device), use_cache=False)
        return (out[0] if self.head is not None else out.logits)[0, -1:]

    def _check(self) -> None:
        # Feed a, b, c, then d seeing only a and b: with working masks, d's log-probs equal a
        # plain forward of [a, b, d]. The probe uses a scratch cache; the real one is restored.
        self.checked = True
        saved = self.cache, self.slot_tokens, self.slot_positions
        a, b, c, d = (saved[1] + [1, 2, 3, 4])[:4]
        try:
            self.reset()
            self.feed([Query(a, 0, 1), Query(b, 1, 2), Query(c, 2, 3)])
            got = self.logprobs(self._tree([Query(d, 2, 2)]))
            want = self.logprobs(self._plain_ids([a, b, d]))
        finally:
            self.cache, self.slot_tokens, self.slot_positions = saved
        diff = (got - want).abs().max().item()
        kind = self.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else next(self.model.parameters()).dtype
        if diff > TOLERANCE.get(dtype, TOLERANCE[torch.bfloat16]):
            log.warning("tree attention differs from the model's own forward by %.3g nats; "
                        "evaluating every tokenization with a plain forward (slower)", diff)
            self.plain = True
        else:
            log.debug("tree attention agrees with the model's forward (max diff %.2g nats)", diff)
