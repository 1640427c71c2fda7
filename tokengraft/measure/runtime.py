"""Put a model on the asked device and precision for scoring, and put it back afterwards."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from tokengraft.errors import TokengraftError
from tokengraft.measure.options import DTYPES, EvalOptions

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    from tokengraft.assets.weights import check_device

    return check_device(name)


@contextmanager
def scoring(model: Any, options: EvalOptions) -> Iterator[torch.device]:
    """Eval mode, inference mode and the precision of ``options``; yields the device.

    The model is moved to ``options.device`` (and stays there). float32 weights scored in
    bfloat16 run under autocast; bfloat16 weights are used as they are. Asking float32 of
    bfloat16 weights is an error rather than a silent precision change.
    """
    if options.dtype not in DTYPES:
        raise TokengraftError(f"dtype {options.dtype!r} is not one of {', '.join(DTYPES)}; pass --dtype float32 or bfloat16")
    device = resolve_device(options.device)
    weights = next(model.parameters())
    if weights.device != device and not (device.index is None and weights.device.type == device.type):
        logger.info("moving the model to %s", device)
        model.to(device)
    want = getattr(torch, options.dtype)
    if weights.dtype != want and not (weights.dtype == torch.float32 and want == torch.bfloat16):
        raise TokengraftError(
            f"the model's weights are {str(weights.dtype).removeprefix('torch.')} but dtype {options.dtype} was asked; "
            f"load the model in {options.dtype} or pass --dtype {str(weights.dtype).removeprefix('torch.')}"
        )
    use_autocast = weights.dtype != want
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
            yield device
    finally:
        model.train(was_training)
