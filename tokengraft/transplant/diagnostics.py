"""What a transplant did to each token, and the warnings worth reading before using it.

Per token: how its row was made (``copied``, ``special:<how>``, ``added-special``, the
method's name, ``fallback:<reason>``, ``padding``), how many old pieces it decomposes
into, and the method's reconstruction residual where it has one. The summary counts
those and warns about what usually hurts a transplanted model: numbers grouped
differently than the base tokenizer grouped them, chat markers that had to be added,
many fallback rows, a small overlap.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

FALLBACK_WARN_SHARE = 0.05   # above this share of fallback rows the method saw too little
OVERLAP_WARN_SHARE = 0.10    # below this share of copied rows most rows are estimates
_DIGITS = re.compile(rb"[0-9]+")


@dataclass
class TokenDiagnostics:
    source: list[str]                       # (V_new) how each input row was made
    pieces: list[int]                       # (V_new) old-tokenizer decomposition length
    residual: torch.Tensor                  # (V_new,) float, NaN where the method has none
    source_output: list[str] | None = None  # (V_new) output rows, only when untied


@dataclass
class Summary:
    old_vocab: int
    new_vocab: int
    rows: int                               # new matrix rows (new_vocab, or padded)
    method: str
    counts: dict[str, int]                  # source -> number of tokens (input matrix)
    copied_share: float
    fallback_share: float
    added_markers: list[str] = field(default_factory=list)
    missing_roles: list[str] = field(default_factory=list)
    digit_tokens: int = 0
    digit_regrouped: int = 0
    number_example: str = ""
    inexact_pieces: int = 0                 # tokens whose old decomposition only approximates their bytes
    residual_median: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnostics:
    """Everything a transplant reports: the summary, per-token records, and the config ids written."""
    summary: Summary
    tokens: TokenDiagnostics
    texts: list[str]                        # (rows) exact readable form of each new token
    config_ids: dict[str, Any]              # bos/eos/pad ids written into config and generation_config


def digit_regrouped(new_bytes: bytes, piece_bytes: Iterable[bytes]) -> bool:
    """True when the old pieces cut a run of digits that the new token keeps together.

    >>> digit_regrouped(b"2024", [b"2", b"0", b"2", b"4"]), digit_regrouped(b" a1", [b" a", b"1"])
    (True, False)
    """
    cuts, pos = set(), 0
    for piece in piece_bytes:
        pos += len(piece)
        cuts.add(pos)
    return any(any(m.start() < c < m.end() for c in cuts) for m in _DIGITS.finditer(new_bytes))


def digit_counts(new_bytes: list[bytes | None], old_bytes: list[bytes | None], pieces: list[list[int]]) -> tuple[int, int]:
    """(tokens containing a digit, of those how many the base tokenizer groups differently)."""
    total = regrouped = 0
    for b, p in zip(new_bytes, pieces):
        if not b or not _DIGITS.search(b):
            continue
        total += 1
        regrouped += digit_regrouped(b, [old_bytes[i] or b"" for i in p])
    return total, regrouped


def number_example(old_tok: Any, new_tok: Any, text: str = "In 2024, 12345 + 678 = 13023.") -> str:
    """How each tokenizer splits the numbers of a probe sentence, ``""`` if alike.

    e.g. ``"2024: base 2|0|2|4 new 2024; 12345: base 1|2|3|4|5 new 123|45"`` (numbers that differ only).
    """
    def split(tok: Any) -> list[str]:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        spans = enc["offset_mapping"]
        out = []
        for m in re.finditer(r"[0-9]+", text):
            cuts = sorted({min(max(a, m.start()), m.end()) for a, _ in spans} | {m.start(), m.end()})
            out.append("|".join(text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a))
        return out
    numbers = re.findall(r"[0-9]+", text)
    pairs = [(n, o, w) for n, o, w in zip(numbers, split(old_tok), split(new_tok)) if o != w]
    return "; ".join(f"{n}: base {o} new {w}" for n, o, w in pairs)


def summarize(
    diag: TokenDiagnostics, *, old_vocab: int, new_vocab: int, method: str,
    added_markers: list[str], missing_roles: list[str], digits: tuple[int, int], example: str, inexact: int = 0,
) -> Summary:
    counts: dict[str, int] = {}
    for s in diag.source[:new_vocab]:
        key = "fallback" if s.startswith("fallback") else ("special" if s.startswith("special:") else s)
        counts[key] = counts.get(key, 0) + 1
    fallback = counts.get("fallback", 0)
    finite = diag.residual[torch.isfinite(diag.residual)]
    summary = Summary(
        old_vocab=old_vocab, new_vocab=new_vocab, rows=len(diag.source), method=method, counts=counts,
        copied_share=counts.get("copied", 0) / max(new_vocab, 1), fallback_share=fallback / max(new_vocab, 1),
        added_markers=list(added_markers), missing_roles=list(missing_roles),
        digit_tokens=digits[0], digit_regrouped=digits[1], number_example=example, inexact_pieces=inexact,
        residual_median=float(finite.median()) if finite.numel() else None,
    )
    summary.warnings = _warnings(summary)
    return summary


def _warnings(s: Summary) -> list[str]:
    out = []
    if s.digit_regrouped:
        share = s.digit_regrouped / max(s.digit_tokens, 1)
        out.append(f"{share:.0%} of new tokens with digits group them differently than the base tokenizer"
                   f" ({s.number_example or 'see transplant_tokens.jsonl'}); arithmetic suffers until healed")
    if s.added_markers:
        out.append(f"chat markers missing from the new tokenizer were added and copied: {', '.join(s.added_markers)}")
    if "eos" in s.missing_roles:  # other missing roles (bos, pad, unk) are recorded, rarely harmful
        out.append("the new tokenizer has no eos token (the base tokenizer has one); generation will not stop on its own")
    if s.inexact_pieces:
        out.append(f"{s.inexact_pieces} new tokens have only approximate old decompositions"
                   " (the base tokenizer cannot spell their bytes, e.g. WordPiece drops spaces and case)")
    if s.fallback_share > FALLBACK_WARN_SHARE:
        out.append(f"{s.fallback_share:.1%} of rows are fallbacks (no estimate from the method)")
    if s.copied_share < OVERLAP_WARN_SHARE:
        out.append(f"only {s.copied_share:.1%} of new tokens exist in the base vocabulary;"
                   " expect a large loss before healing")
    return out


def format_table(s: Summary) -> str:
    """A short plain-text table of the summary, then the warnings."""
    lines = [f"transplant with {s.method}: {s.old_vocab} -> {s.new_vocab} tokens"
             + (f" ({s.rows} rows, padded)" if s.rows != s.new_vocab else "")]
    for key, n in sorted(s.counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {key:<16} {n:>8}  {n / max(s.new_vocab, 1):6.1%}")
    if s.residual_median is not None:
        lines.append(f"  {'residual median':<16} {s.residual_median:>8.4f}")
    lines += [f"warning: {w}" for w in s.warnings]
    return "\n".join(lines)


def write_token_lines(path: Path, diag: TokenDiagnostics, texts: list[str]) -> None:
    """One JSON object per token: ``{"id", "text", "src", "n", "res"?, "src_out"?}``."""
    with open(path, "w", encoding="utf-8") as fh:
        for t, src in enumerate(diag.source):
            row: dict[str, Any] = {"id": t, "text": texts[t] if t < len(texts) else "", "src": src,
                                   "n": diag.pieces[t] if t < len(diag.pieces) else 0}
            res = float(diag.residual[t])
            if math.isfinite(res):
                row["res"] = round(res, 6)
            if diag.source_output is not None and diag.source_output[t] != src:
                row["src_out"] = diag.source_output[t]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
