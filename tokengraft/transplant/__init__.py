"""Transplant: give a pretrained model a new tokenizer, computing rows for the new vocabulary.

>>> # from tokengraft.transplant import TransplantOptions, transplant
>>> # result = transplant(TransplantOptions("smollm2-135m", "out/tok-fr-bpe32k", out="out/smollm2-fr"))

Names are resolved lazily so that importing a method module (``tokengraft.transplant.methods.fvt``)
does not pull in the orchestration, and the orchestration can import the methods freely.
"""
from __future__ import annotations

from tokengraft.lazy import lazy_exports

_EXPORTS = {
    "TransplantOptions": "tokengraft.transplant.options",
    "DEFAULT_METHOD": "tokengraft.transplant.options",
    "TransplantResult": "tokengraft.transplant.run",
    "transplant": "tokengraft.transplant.run",
    "transplant_model": "tokengraft.transplant.core",
    "get_method": "tokengraft.transplant.plan",
    "plan_transplant": "tokengraft.transplant.plan",
    "plan_inputs": "tokengraft.transplant.plan",
    "InputPlan": "tokengraft.transplant.plan",
    "Inputs": "tokengraft.transplant.provide",
    "Diagnostics": "tokengraft.transplant.diagnostics",
    "Correspondence": "tokengraft.transplant.correspondence",
    "build_correspondence": "tokengraft.transplant.correspondence",
    "write_transplant": "tokengraft.transplant.writer",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
