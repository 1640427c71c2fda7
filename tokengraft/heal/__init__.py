"""Healing a transplanted model: embedding training, ALM distillation, LoRA or full fine-tuning.

``heal(HealOptions(...))`` is the Python API; ``tokengraft heal`` maps its flags onto the
same dataclass. Submodules are imported lazily so that ``import tokengraft.heal`` stays
cheap (accelerate, peft and matplotlib load only when a run needs them).
"""
from __future__ import annotations

from tokengraft.heal.options import HealOptions, HealResult

__all__ = ["HealOptions", "HealResult", "heal"]


def heal(options: HealOptions) -> HealResult:
    """Train ``options.model`` on ``options.corpus``; see :mod:`tokengraft.heal.trainer`."""
    from tokengraft.heal.trainer import heal as _heal

    return _heal(options)

