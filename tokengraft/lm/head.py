"""The output head of a causal language model as a separate step: hidden states -> logits.

Measuring (bits per byte) and transplanting (``graft``'s continuations) both run the decoder
body to hidden states and apply the head themselves, so that only the positions they need
get (V,)-wide logits. Architecture quirks of the head are applied from the config: Gemma's
final logit softcapping, Cohere's logit scale, Granite's logit divisor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

# Largest logits chunk (rows x vocab) the head materialises at once: 2**27 float32 = 512 MiB.
CHUNK_ELEMENTS = 2**27


def text_config(model: Any) -> Any:
    """The language model's own config (the text part of a multi-module config)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


@dataclass
class OutputHead:
    weight: torch.Tensor              # (V, d)
    bias: torch.Tensor | None = None  # (V,)
    softcap: float | None = None      # logits -> softcap * tanh(logits / softcap)
    scale: float = 1.0                # logits -> logits * scale, before the softcap

    def nll(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """hidden (N, d), labels (N,) -> (N,) float32 NLL in nats, in chunks of rows."""
        rows = max(1, CHUNK_ELEMENTS // self.weight.shape[0])
        out = [F.cross_entropy(self.logits(hidden[i:i + rows]), labels[i:i + rows], reduction="none")
               for i in range(0, hidden.shape[0], rows)]
        return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (N, d) -> (N, V) float32 logits, exactly as the model's head computes them."""
        logits = F.linear(hidden, self.weight, self.bias).float()
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def split_head(model: Any) -> OutputHead | None:
    """The model's output head as a separate step, or None when it has no separable decoder."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    body = getattr(model, "base_model", model)
    if body is model or not isinstance(head, torch.nn.Linear):
        return None
    config = text_config(model)
    scale = float(getattr(config, "logit_scale", None) or 1.0)  # Cohere multiplies
    divisor = getattr(config, "logits_scaling", None)             # Granite divides
    if divisor:
        scale /= float(divisor)
    return OutputHead(head.weight, head.bias, getattr(config, "final_logit_softcapping", None), scale)
