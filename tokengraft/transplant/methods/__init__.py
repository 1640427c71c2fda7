"""Initialisation methods for the new vocabulary's rows, registered by name on import.

``import tokengraft.transplant.methods`` fills :data:`METHODS` (name -> :class:`Method`).
Every method is a pure function ``(InitProblem, options) -> InitResult``; see ``base.py``.

>>> from tokengraft.transplant.methods import METHODS
>>> {"random", "mean", "fvt", "wvt", "omp"} <= set(METHODS)
True
"""
from __future__ import annotations

import importlib

from tokengraft.transplant.methods.base import METHODS, InitProblem, InitResult, Method, register

# One module per method family; importing one registers its methods. A module that does not
# exist yet (work in progress) is skipped; any other import error is a real bug and raised.
_MODULES = ["baselines", "fvt", "omp", "focus", "tokenadapt", "wechsel", "graft", "transtok"]

for _name in _MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_name}":
            raise

__all__ = ["METHODS", "InitProblem", "InitResult", "Method", "register"]
