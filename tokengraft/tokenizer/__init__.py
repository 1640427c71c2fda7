"""Train target tokenizers (BPE, Unigram, SuperBPE), compare tokenizers side by side, and
infer what a BPE tokenizer was trained on.

>>> from tokengraft.tokenizer import TrainOptions, train_tokenizer, compare_tokenizers
>>> tok = train_tokenizer(texts, TrainOptions(vocab_size=32000, kind="superbpe", base="smollm2-135m"))  # doctest: +SKIP
>>> infer_mixture("gpt2", {"en": en_texts, "code": py_texts}).proportions  # doctest: +SKIP
"""
from __future__ import annotations

from tokengraft.tokenizer.compare import CompareReport, CorpusStats, compare_tokenizers
from tokengraft.tokenizer.mixture import MixtureOptions, MixtureResult, infer_mixture
from tokengraft.tokenizer.options import KINDS, TrainOptions
from tokengraft.tokenizer.report import format_table, plot_report, write_json
from tokengraft.tokenizer.train import read_tokenizer, save_tokenizer, train_to_folder, train_tokenizer

__all__ = [
    "KINDS", "CompareReport", "CorpusStats", "MixtureOptions", "MixtureResult", "TrainOptions", "compare_tokenizers",
    "format_table", "infer_mixture", "plot_report",
    "read_tokenizer", "save_tokenizer", "train_to_folder", "train_tokenizer", "write_json",
]
