"""Plain-text table and JSON form of :class:`EvalResult`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokengraft.measure.options import EvalResult

COLUMNS = ("corpus", "bytes", "tokens", "tokens/byte", "BPB", "seconds", "tokens/s")


def _row(r: EvalResult) -> list[str]:
    return [r.name, f"{r.bytes:,}", f"{r.tokens:,}", f"{r.tokens_per_byte:.4f}", f"{r.bpb:.4f}",
            f"{r.seconds:.1f}", f"{r.tokens_per_second:,.0f}"]


def format_table(result: EvalResult) -> str:
    """One row per corpus, and a total row when there are several.

    >>> from tokengraft.measure.options import make_result
    >>> print(format_table(make_result("en", 800.0, 250, 1000, 2.0, 3)))
    corpus  bytes  tokens  tokens/byte     BPB  seconds  tokens/s
    en      1,000     250       0.2500  0.8000      2.0       125
    """
    rows = [_row(p) for p in (result.parts or [result])]
    if len(result.parts) > 1:
        rows.append(_row(result))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = [[c for c in COLUMNS], *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
        for line in lines
    )


def write_json(path: str | Path, result: EvalResult, meta: dict[str, Any]) -> None:
    """Write ``meta`` (model, tokenizer, options) and every result, per corpus (with each document's bits) and total."""
    data = {**meta, "total": {k: v for k, v in result.to_dict().items() if k != "parts" and not k.startswith("document_")},
            "corpora": [{k: v for k, v in p.to_dict().items() if k != "parts"} for p in result.parts]}
    from tokengraft.assets.outputs import write_text

    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", flag="--json")
