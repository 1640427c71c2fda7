"""Train target tokenizers (BPE, Unigram, SuperBPE) and compare tokenizers side by side.

>>> from tokengraft.tokenizer import TrainOptions, train_tokenizer, compare_tokenizers
>>> tok = train_tokenizer(texts, TrainOptions(vocab_size=32000, kind="superbpe", base="smollm2-135m"))  # doctest: +SKIP
"""
from __future__ import annotations

from tokengraft.tokenizer.compare import CompareReport, CorpusStats, compare_tokenizers
from tokengraft.tokenizer.options import KINDS, TrainOptions
from tokengraft.tokenizer.report import format_table, plot_report, write_json
from tokengraft.tokenizer.train import read_tokenizer, save_tokenizer, train_to_folder, train_tokenizer

__all__ = [
    "KINDS", "CompareReport", "CorpusStats", "TrainOptions", "compare_tokenizers", "format_table", "plot_report",
    "read_tokenizer", "save_tokenizer", "train_to_folder", "train_tokenizer", "write_json",
]
