"""tokengraft: swap the tokenizer of a pretrained language model and keep what it knows.

The public API, by pipeline stage (names are imported on first use, so ``import
tokengraft`` stays cheap and has no side effects):

>>> from tokengraft import load_model, load_tokenizer, load_corpus        # assets
>>> from tokengraft import TrainOptions, train_to_folder, compare_tokenizers  # tokenizers
>>> from tokengraft import MixtureOptions, infer_mixture                     # what a tokenizer was trained on
>>> from tokengraft import TransplantOptions, transplant_model             # transplant
>>> from tokengraft import EvalOptions, bits_per_byte                      # measure
>>> from tokengraft import HealOptions                                      # heal
>>> from tokengraft import ByteModel, generate, score_corpora              # byte level

The functions named like their stage (``transplant``, ``heal``) are imported from the
stage: ``from tokengraft.transplant import transplant``. At the top level the name would
be the function or the subpackage depending on what was imported first.
"""
from __future__ import annotations

from tokengraft.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "TokengraftError": "tokengraft.errors",
    "load_model": "tokengraft.assets", "load_tokenizer": "tokengraft.assets",
    "load_corpus": "tokengraft.assets", "load_corpora": "tokengraft.assets",
    "byte_vocab": "tokengraft.vocab", "encode_bytes": "tokengraft.vocab", "vocab_overlap": "tokengraft.vocab",
    "TrainOptions": "tokengraft.tokenizer", "train_tokenizer": "tokengraft.tokenizer",
    "train_to_folder": "tokengraft.tokenizer", "compare_tokenizers": "tokengraft.tokenizer",
    "MixtureOptions": "tokengraft.tokenizer", "infer_mixture": "tokengraft.tokenizer",
    "TransplantOptions": "tokengraft.transplant",
    "transplant_model": "tokengraft.transplant",
    "EvalOptions": "tokengraft.measure", "bits_per_byte": "tokengraft.measure",
    "HealOptions": "tokengraft.heal",
    "ByteModel": "tokengraft.bytelevel", "generate": "tokengraft.bytelevel", "score_corpora": "tokengraft.bytelevel",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
