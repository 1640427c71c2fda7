"""Bits per byte: the batched meter, its plain reference, and reports.

>>> from tokengraft.measure import EvalOptions, bits_per_byte
>>> result = bits_per_byte(model, tokenizer, corpus, EvalOptions(max_bytes=200_000))  # doctest: +SKIP

Names are imported on first use, so that ``tokengraft.measure.options`` (which the CLI
reads to build its flags) does not pull in torch.
"""
from __future__ import annotations

from tokengraft.lazy import lazy_exports

_WHERE = {
    "EvalOptions": "options", "EvalResult": "options", "bits_per_byte": "bpb",
    "bits_per_byte_reference": "reference", "format_table": "report", "write_json": "report",
    "resolve_start_token": "tokengraft.lm.start",  # lives below both measure and transplant
}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
