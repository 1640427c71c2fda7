"""A ZeTT-style hypernetwork: learn once per base model, then give any tokenizer rows in seconds.

``train_hypernet(HypernetTrainOptions(...))`` trains a small transformer that reads the base
model's rows of a token's old-tokenizer pieces and predicts the token's input and output
rows (relative to FVT, so an untrained one is FVT); ``load_hypernet(folder)`` loads it and
``predict_rows`` applies it; ``--method hypernet`` of ``tokengraft transplant`` uses it, and
:mod:`tokengraft.hypernet.dynamic` embeds units merged on the fly (dynamic tokenization).

>>> from tokengraft.hypernet import HypernetTrainOptions
>>> HypernetTrainOptions("smollm2-135m").objectives
['recon', 'head']
"""
from __future__ import annotations

from tokengraft.lazy import lazy_exports

_EXPORTS = {
    "Hypernet": "tokengraft.hypernet.model",
    "HypernetConfig": "tokengraft.hypernet.model",
    "HypernetTrainOptions": "tokengraft.hypernet.options",
    "LoadedHypernet": "tokengraft.hypernet.store",
    "load_hypernet": "tokengraft.hypernet.store",
    "predict_rows": "tokengraft.hypernet.apply",
    "train_hypernet": "tokengraft.hypernet.train",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
