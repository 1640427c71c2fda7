"""What a run's report shows, read from its folder: ``transplant.json``, ``transplant_tokens.jsonl``,
``heal.json`` and ``eval*.json`` (see :mod:`tokengraft.publish.card` for the BPB rows)."""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.publish.card import measurements, read_json

WORST = 25  # tokens listed per table


@dataclass
class RunData:
    folder: Path
    transplant: dict[str, Any] | None
    heal: dict[str, Any] | None
    bpb: list[dict[str, Any]]                                   # rows of card.measurements
    sources: Counter = field(default_factory=Counter)           # input-row source -> count
    sources_out: Counter = field(default_factory=Counter)       # output-row source -> count (untied)
    pieces: Counter = field(default_factory=Counter)            # old pieces per new token -> count
    worst_residual: list[dict[str, Any]] = field(default_factory=list)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    most_pieces: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0


def read_run(folder: str | Path) -> RunData:
    """Everything the report needs from ``folder``; an error if it holds no tokengraft record."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TokengraftError(f"{folder} is not a folder; pass the output folder of a transplant or heal")
    transplant, heal = read_json(folder / "transplant.json"), read_json(folder / "heal.json")
    bpb = measurements(folder)
    if transplant is None and heal is None and not bpb:
        raise TokengraftError(f"{folder} has no transplant.json, heal.json or eval*.json; nothing to report")
    run = RunData(folder, transplant, heal, bpb)
    lines = folder / "transplant_tokens.jsonl"
    if lines.is_file():
        _read_tokens(run, lines)
    return run


def _read_tokens(run: RunData, path: Path) -> None:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    run.tokens = len(rows)
    for r in rows:
        src = _group(r.get("src", "?"))
        run.sources[src] += 1
        run.sources_out[_group(r.get("src_out", r.get("src", "?")))] += 1
        if src not in ("copied", "special", "padding"):
            run.pieces[min(int(r.get("n", 0)), 8)] += 1
    if run.sources_out == run.sources:
        run.sources_out = Counter()
    made = [r for r in rows if _group(r.get("src", "")) not in ("copied", "special", "padding")]
    with_res = [r for r in made if isinstance(r.get("res"), (int, float)) and math.isfinite(r["res"])]
    run.worst_residual = sorted(with_res, key=lambda r: -r["res"])[:WORST]
    run.fallbacks = [r for r in rows if str(r.get("src", "")).startswith("fallback")][:WORST]
    run.most_pieces = sorted(made, key=lambda r: (-int(r.get("n", 0)), r["id"]))[:WORST]


def _group(src: str) -> str:
    """``special:eos`` -> ``special``; ``fallback:no-pieces`` -> ``fallback``; methods stay as they are."""
    head = str(src).split(":")[0]
    return "special" if head in ("special", "added-special") else head
