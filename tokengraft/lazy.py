"""A package's public names, imported on first use (PEP 562 module ``__getattr__``).

>>> __getattr__ = lazy_exports(__name__, {"bits_per_byte": "bpb", "resolve_start_token": "tokengraft.lm.start"})

A value is a module: relative to the package when it has no dot, absolute otherwise.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``name`` is read from the module ``where[name]`` names."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = where[name] if "." in where[name] else f"{package}.{where[name]}"
        return getattr(importlib.import_module(module), name)

    return __getattr__
