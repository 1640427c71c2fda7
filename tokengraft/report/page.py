"""``write_report(folder)``: one self-contained HTML page per run (PNG plots embedded as data
URIs, no scripts, no external files), written to ``folder/report.html`` by default."""
from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

from tokengraft.report import plots
from tokengraft.report.data import RunData, read_run

log = logging.getLogger(__name__)

REPORT = "report.html"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1120px;margin:2em auto;padding:0 1em;
color:#1d1d1d;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left}th{background:#f3f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.tok{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f4f4f4;padding:0 .25em}
code{white-space:pre-wrap;overflow-wrap:anywhere}.tok{white-space:pre}
.muted{color:#666}.grid{display:flex;gap:1.5em;flex-wrap:wrap}img{max-width:100%;border:1px solid #eee}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _n(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else "?"


def _num(x: Any, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def _table(head: list[str] | None, rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    cells = "".join(f"<th>{_esc(h)}</th>" for h in head or [])
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{cells}</tr>' if cells else ''}{body}</table>"


def _token(text: str) -> str:
    return f'<span class="tok">{_esc(text)}</span>'


def _summary(run: RunData) -> str:
    t, h = run.transplant or {}, run.heal or {}
    items = []
    if t:
        s = t.get("summary") or {}
        items += [("base model", t.get("base_model")), ("new tokenizer", t.get("tokenizer")),
                  ("method", t.get("method")),
                  ("vocabulary", f"{_n(s.get('old_vocab'))} → {_n(s.get('new_vocab'))} tokens"),
                  ("copied rows", f"{s.get('copied_share', 0):.1%}"), ("transplant time", f"{t.get('seconds', 0):.1f} s")]
    if h:
        o = h.get("options") or {}
        items += [("heal mode", o.get("mode")), ("heal steps", h.get("steps")),
                  ("training tokens", _n(h.get("tokens_seen"))), ("heal time", f"{h.get('seconds', 0):.1f} s")]
    rows = [[_esc(k), _esc(v)] for k, v in items if v is not None]
    warnings = (t.get("summary") or {}).get("warnings") or []
    notes = "".join(f"<p class=muted>warning: {_esc(w)}</p>" for w in warnings)
    return _table(None, rows) + notes


def _bpb(run: RunData) -> str:
    if not run.bpb:
        return ("<p class=muted>No bits-per-byte measurement in this folder. Add one with <code>tokengraft eval "
                f"--model {_esc(run.folder)} --text CORPUS --json {_esc(run.folder)}/eval.json</code>.</p>")
    rows = []
    for r in run.bpb:
        ratio = r["after"] / r["before"] if r["before"] and r["after"] is not None else None
        rows.append([_esc(r["corpus"]), _esc(r["stage"]), _num(r["before"]), _num(r["after"]), _num(ratio, ".3f"),
                     _num(r["tpb_before"]), _num(r["tpb_after"])])
    head = ["corpus", "stage", "BPB before", "BPB after", "ratio", "tokens/byte before", "tokens/byte after"]
    return _table(head, rows, {2, 3, 4, 5, 6}) + _img(plots.bpb_plot(run.bpb), "bits per byte before and after")


def _sources(run: RunData) -> str:
    if not run.sources:
        return "<p class=muted>No transplant_tokens.jsonl in this folder.</p>"
    rows = [[_esc(name), f"{count:,}", f"{count / run.tokens:.1%}"] for name, count in run.sources.most_common()]
    return (f"<p>{run.tokens:,} rows. <i>copied</i>: the same bytes were a token of the old vocabulary; "
            "<i>special</i>: matched by content or role; a method's name: computed by it; <i>fallback</i>: "
            "no estimate (the mean row).</p>" + '<div class="grid">' + _table(["source", "tokens", "share"], rows, {1, 2})
            + _img(plots.sources_plot(run.sources, run.sources_out), "row sources") + "</div>"
            + _img(plots.pieces_plot(run.pieces), "old pieces per new token"))


def _worst(run: RunData) -> str:
    parts = []
    if run.worst_residual:
        rows = [[str(r["id"]), _token(r.get("text", "")), _esc(r.get("src")), str(r.get("n", 0)), _num(r["res"])]
                for r in run.worst_residual]
        parts.append("<h3>Largest residual (the method's own misfit)</h3>"
                     + _table(["id", "token", "source", "pieces", "residual"], rows, {0, 3, 4}))
    if run.fallbacks:
        rows = [[str(r["id"]), _token(r.get("text", "")), _esc(r.get("src")), str(r.get("n", 0))] for r in run.fallbacks]
        parts.append("<h3>No estimate (fallback rows)</h3>" + _table(["id", "token", "source", "pieces"], rows, {0, 3}))
    if run.most_pieces:
        rows = [[str(r["id"]), _token(r.get("text", "")), _esc(r.get("src")), str(r.get("n", 0))]
                for r in run.most_pieces]
        parts.append("<h3>Built from the most old pieces (hardest to compose)</h3>"
                     + _table(["id", "token", "source", "pieces"], rows, {0, 3}))
    return "".join(parts) or "<p class=muted>No per-token diagnostics in this folder.</p>"


def _heal(run: RunData) -> str:
    if not run.heal:
        return "<p class=muted>Not healed (no heal.json): <code>tokengraft heal --model DIR ...</code> is the next step.</p>"
    return _img(plots.heal_plot(run.heal), "heal curve")


def render(run: RunData) -> str:
    """The page's HTML for one run."""
    title = f"tokengraft report: {run.folder.name}"
    sections = [("Summary", _summary(run)), ("Bits per byte before and after", _bpb(run)),
                ("Where the new rows came from", _sources(run)), ("Tokens with the worst diagnostics", _worst(run)),
                ("Heal curve", _heal(run))]
    body = "".join(f"<h2>{_esc(name)}</h2>{content}" for name, content in sections)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p class=muted>{_esc(run.folder)}</p>{body}</body></html>\n")


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``folder`` to ``out`` (default ``folder/report.html``); return its path."""
    from tokengraft.assets.outputs import write_text

    run = read_run(folder)
    path = Path(out) if out is not None else Path(folder) / REPORT
    write_text(path, render(run), flag="--out")
    log.info("wrote %s", path)
    return path
