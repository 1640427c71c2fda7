"""Frozen weights held in bfloat16 while training under bf16 autocast: the same numbers, cast once.

Under bf16 autocast every ``F.linear`` casts its float32 weight to bfloat16 at every call, so a
LoRA heal re-cast the whole frozen body (the base weights of every adapted projection) at every
forward pass. Holding those weights in bfloat16 for the training steps gives the matmuls the very
values autocast would have made (round to nearest, once): the losses are bit-identical and a step
of heal's default on 2 CPU cores is about 5% shorter (session 30). The float32 weights are kept
and put back for evaluation, checkpoints and the output folder.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch


class FrozenLinears:
    """The frozen float32 ``nn.Linear`` weights of a model, switchable to a low-precision copy."""

    def __init__(self, model: Any, dtype: torch.dtype = torch.bfloat16) -> None:
        self.dtype = dtype
        self.kept = [(m, m.weight.data) for m in model.modules()
                     if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad
                     and m.weight.dtype == torch.float32]

    def cast(self) -> None:
        for module, weight in self.kept:
            module.weight.data = weight.to(self.dtype)

    def restore(self) -> None:
        for module, weight in self.kept:
            module.weight.data = weight

    @contextmanager
    def exact(self) -> Iterator[None]:
        """The float32 weights for what runs inside (evaluation), the cast ones again after."""
        self.restore()
        try:
            yield
        finally:
            self.cast()
