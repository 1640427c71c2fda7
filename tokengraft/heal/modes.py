"""Which parameters a healing run trains, and how the trained model is handed back.

``lora`` (the default): LoRA adapters (``peft``) on every linear projection of the body, plus
the embeddings themselves, merged back into plain weights at the end so the output loads
without peft. ``embeddings``: only the input and output embedding matrices (one matrix when
tied). Both can keep the rows the transplant copied (``--only-new``). ``full``: everything.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)


def embedding_params(model: Any) -> list[torch.nn.Parameter]:
    """The input and output embedding weights, each once (tied models share one)."""
    params = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and all(out.weight is not p for p in params):
        params.append(out.weight)
    return params


def mask_rows(param: torch.nn.Parameter, frozen: torch.Tensor) -> None:
    """Zero the gradient of the ``frozen`` rows (bool, (V,)) of ``param``.

    With zero gradients from the first step on, Adam's moments of those rows stay zero and
    so do their updates; embeddings get no weight decay, so the rows stay bit-identical.
    """
    keep = (~frozen).to(device=param.device, dtype=param.dtype).unsqueeze(1)
    param.register_hook(lambda grad: grad * keep.to(grad.dtype))


def unwrap(model: Any) -> Any:
    """The transformers model inside a peft wrapper (the model itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def train_one_matrix(model: Any, rows: str) -> None:
    """Freeze the input (``rows="output"``) or output (``rows="input"``) embedding matrix."""
    base = unwrap(model)
    emb, head = base.get_input_embeddings(), base.get_output_embeddings()
    if head is None or head.weight is emb.weight:
        raise TokengraftError(f"--rows {rows} trains one embedding matrix, but this model's input and output "
                              "embeddings are one tied matrix; use --rows both")
    (head if rows == "input" else emb).weight.requires_grad_(False)


def _linear_targets(model: Any) -> list[str]:
    head = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
             if isinstance(mod, torch.nn.Linear) and mod is not head}
    if not names:
        raise TokengraftError("--mode lora found no linear projections in the model; use --mode full or embeddings")
    return sorted(names)


def prepare(model: Any, trains: str, frozen_rows: tuple[torch.Tensor, torch.Tensor] | None = None,
            lora_r: int = 16, lora_alpha: int = 32) -> Any:
    """Set ``requires_grad`` for ``trains`` (embeddings | full | lora); returns the model to train.

    ``frozen_rows``: (input, output) bool masks of rows kept as they are (``--only-new``,
    embeddings and lora); a tied matrix is frozen where both masks say so.
    """
    if trains == "lora":
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise TokengraftError("--mode lora needs peft; install it with: pip install 'tokengraft[heal]'") from None
        config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0, target_modules=_linear_targets(model))
        model = get_peft_model(model, config)
        _train_embeddings(model.get_base_model(), frozen_rows)
        return model
    for p in model.parameters():
        p.requires_grad_(trains == "full")
    if trains == "embeddings":
        _train_embeddings(model, frozen_rows)
    return model


def _train_embeddings(model: Any, frozen_rows: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    params = embedding_params(model)
    for p in params:
        p.requires_grad_(True)
    if frozen_rows is not None:
        inputs, outputs = frozen_rows
        if len(params) == 1:
            mask_rows(params[0], inputs & outputs)
        else:
            mask_rows(params[0], inputs)
            mask_rows(params[1], outputs)


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for trainable matrices of the body, none for embeddings, norms, biases."""
    base = unwrap(model)
    skip = {id(p) for p in embedding_params(base)}
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 and id(p) not in skip else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """Name -> CPU copy of every trainable parameter (a tied matrix once)."""
    params = dict(model.named_parameters())
    return {name: params[name].detach().to("cpu", copy=True) for name in trainable_names(model)}


def load_trainable_state(model: Any, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing or len(state) != len(trainable_names(model)):
        raise TokengraftError(f"the checkpoint's trainable parameters do not match this model ({missing[:3]}); "
                              "resume with the same --model and --mode")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def trainable_names(model: Any) -> list[str]:
    seen, names = set(), []
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            names.append(name)
    return names


def finalize(model: Any) -> Any:
    """A plain transformers model: LoRA adapters merged into the weights, grads off."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def interpolate(model: Any, start: dict[str, torch.Tensor], keep: float) -> None:
    """WiSE-FT weight averaging of a finalized model with the one training started from: every
    parameter becomes ``start + keep x (trained - start)`` (a tied matrix once; LoRA's merged
    change is scaled by ``keep``; frozen weights stay bit-identical)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            s = start[name].to(device=p.device, dtype=p.dtype)
            if s.shape != p.shape:
                raise TokengraftError(f"--interpolate: {name} has shape {tuple(p.shape)} here and "
                                      f"{tuple(s.shape)} in the start model")
            if not torch.equal(s, p):
                p.copy_(s + keep * (p - s))
