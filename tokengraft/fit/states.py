"""Hidden states of a decoder body: final (what the output head reads) or after ``k`` layers.

Early exit: a forward hook on layer ``k - 1`` records its output and stops the forward,
so matching the first third of the layers costs a third of a forward pass (MATT).
"""
from __future__ import annotations

from typing import Any

import torch

from tokengraft.errors import TokengraftError


class _Stop(Exception):
    pass


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The list of transformer blocks of a causal LM's body (Llama, Gemma, Qwen, ...)."""
    body = getattr(model, "base_model", model)
    for holder in (body, getattr(body, "model", None), getattr(body, "decoder", None)):
        layers = getattr(holder, "layers", None) if holder is not None else None
        if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0:
            return layers
    raise TokengraftError(f"{type(model).__name__} has no list of decoder layers (.layers); the fit cannot read"
                          " its hidden states; use --mode embeddings")


def final_states(model: Any, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, d) the body's output, which the output head turns into logits."""
    return model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)[0]


def layer_states(model: Any, ids: torch.Tensor, layer: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T, d) the residual stream after the first ``layer`` blocks (``layer`` = all: the
    body's output, final norm included)."""
    layers = decoder_layers(model)
    if layer >= len(layers):
        return final_states(model, ids, mask)
    if layer < 1:
        raise ValueError(f"layer must be at least 1, got {layer}")
    seen: list[torch.Tensor] = []

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        seen.append(output[0] if isinstance(output, tuple) else output)
        raise _Stop

    handle = layers[layer - 1].register_forward_hook(hook)
    try:
        model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise RuntimeError("the forward hook on the decoder layer never ran")
    return seen[0]
