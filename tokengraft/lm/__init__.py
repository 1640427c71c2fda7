"""Helpers on a causal language model that several stages use (measure, transplant, heal).

- :mod:`~tokengraft.lm.head`: the output head as a separate step (``split_head``, ``OutputHead``).
- :mod:`~tokengraft.lm.start`: the token every document starts with (``resolve_start_token``).
- :mod:`~tokengraft.lm.cache`: the key-value cache argument of ``forward`` (``cache_argument``).

Nothing here loads a model or imports another stage: stages import this, never the reverse.
"""
from __future__ import annotations
