"""Before/after bits per byte for an output folder's record (``transplant.json["eval"]``), which
the model card and the report show.

*Before* is the base model with its own tokenizer, *after* the transplanted model with the new
one, on the same bytes of each held-out corpus.
"""
from __future__ import annotations

from typing import Any, Sequence


def load_eval_corpora(specs: Sequence[str], max_bytes: int | None) -> list[Any]:
    """The corpora, cut to ``max_bytes`` each (cheap: call it before minutes of model loading)."""
    from tokengraft.assets import load_corpora

    return load_corpora(list(specs), max_bytes=max_bytes)


def score(model: Any, tokenizer: Any, corpora: Sequence[Any]) -> dict[str, dict[str, float]]:
    """``{corpus name: {bpb, tokens_per_byte, bytes}}``."""
    from tokengraft.measure import EvalOptions, bits_per_byte

    out = {}
    for corpus in corpora:
        r = bits_per_byte(model, tokenizer, corpus, EvalOptions())
        out[corpus.name] = {"bpb": r.bpb, "tokens_per_byte": r.tokens_per_byte, "bytes": r.bytes}
    return out


def eval_entries(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The record's list: ``[{corpus, bytes, before: {bpb, tokens_per_byte}, after: {...}}]``."""
    return [{"corpus": name, "bytes": after[name]["bytes"],
             "before": {k: before[name][k] for k in ("bpb", "tokens_per_byte")},
             "after": {k: after[name][k] for k in ("bpb", "tokens_per_byte")}}
            for name in after if name in before]


def record_eval(folder: Any, entries: list[dict[str, Any]]) -> None:
    """Add ``entries`` to ``folder/transplant.json`` (replacing those of the same corpora) and
    refresh the model card: for callers that measure after writing (the quickstart)."""
    import json
    from pathlib import Path

    from tokengraft.publish.card import write_card

    path = Path(folder) / "transplant.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    names = {e["corpus"] for e in entries}
    record["eval"] = [e for e in record.get("eval") or [] if e["corpus"] not in names] + entries
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    write_card(folder)
