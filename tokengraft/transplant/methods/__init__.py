"""Initialisation methods for the new vocabulary's rows, registered by name on import.

``import tokengraft.transplant.methods`` fills :data:`METHODS` (name -> :class:`Method`).
Every method is a pure function ``(InitProblem, options) -> InitResult``; see ``base.py``.
A new method is one new module here, added to ``_MODULES``.

>>> from tokengraft.transplant.methods import METHODS
>>> {"random", "mean", "fvt", "wvt", "omp"} <= set(METHODS)
True
"""
from __future__ import annotations

import importlib

from tokengraft.transplant.methods.base import METHODS, InitProblem, InitResult, Method, Needs, register

# One module per method family; importing one registers its methods.
_MODULES = ["baselines", "fvt", "omp", "focus", "tokenadapt", "wechsel", "graft", "transtok", "hypernet"]


def import_methods(names: list[str]) -> None:
    """Import each method module; one that fails to import is an error, never a method silently missing."""
    for name in names:
        importlib.import_module(f"{__name__}.{name}")


import_methods(_MODULES)

__all__ = ["METHODS", "InitProblem", "InitResult", "Method", "Needs", "register"]
