"""The key-value cache argument of a model's ``forward``, under every transformers version.

transformers 5.2x renamed ``past_key_values=`` to ``cache=`` (the old name warns, then goes
away); older versions take only ``past_key_values=``. Every caller passes its cache through
:func:`cache_argument`, so one place follows the rename.
"""
from __future__ import annotations

import inspect
from typing import Any


def cache_argument(module: Any, cache: Any) -> dict[str, Any]:
    """``{"cache": cache}`` where ``module.forward`` takes ``cache=``, else ``{"past_key_values": cache}``.

    >>> class New:
    ...     def forward(self, input_ids=None, cache=None): ...
    >>> class Old:
    ...     def forward(self, input_ids=None, past_key_values=None): ...
    >>> list(cache_argument(New(), 1)), list(cache_argument(Old(), 1))
    (['cache'], ['past_key_values'])
    """
    return {"cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values": cache}
