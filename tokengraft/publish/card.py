"""The ``README.md`` model card of an output folder, made from the records in it.

Sources, whichever the folder has: ``transplant.json`` (base model, tokenizer, method, options,
row summary, and the before/after measurement when the transplant measured one), ``heal.json``
(options, the held-out BPB curve: its first and last points are before and after healing), and
``eval*.json`` files written by ``tokengraft eval --json``. The exact command is rebuilt from
the recorded options: every option that differs from its default becomes its flag.

>>> # write_card(Path("out/smollm2-fr"))   # -> out/smollm2-fr/README.md
"""
from __future__ import annotations

import json
import logging
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CARD = "README.md"
NO_FLAG = {"progress", "out", "overwrite"}  # not part of what made the weights, or spelled otherwise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def command_line(subcommand: str, options: dict[str, Any], options_class: Any, out: str | None) -> str:
    """``tokengraft SUBCOMMAND --flag value ...`` for the options that differ from their defaults."""
    defaults = {}
    for f in fields(options_class):
        if f.default is not MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            defaults[f.name] = f.default_factory()  # type: ignore[misc]
    parts = ["tokengraft", subcommand]
    for name, value in options.items():
        if name in NO_FLAG or (name in defaults and value == defaults[name]) or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if name == "method_options":
            parts += [x for k, v in value.items() for x in ("--method-option", f"{k}={json.dumps(v)}")]
        elif value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts += [flag, *map(_quote, map(str, value))]
        else:
            parts += [flag, _quote(str(value))]
    if out:
        parts += ["--out", _quote(out)]
    return " ".join(parts)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def measurements(folder: Path) -> list[dict[str, Any]]:
    """Rows ``{corpus, stage, before, after, tpb_before, tpb_after}`` from every record in the folder."""
    rows = []
    transplant = read_json(folder / "transplant.json") or {}
    for item in transplant.get("eval") or []:
        rows.append({"corpus": item["corpus"], "stage": "transplant", "before": item["before"]["bpb"],
                     "after": item["after"]["bpb"], "tpb_before": item["before"].get("tokens_per_byte"),
                     "tpb_after": item["after"].get("tokens_per_byte")})
    heal = read_json(folder / "heal.json") or {}
    curve = heal.get("eval_curve") or []
    if curve:
        first, last = curve[0], curve[-1]
        for corpus, after in last.get("bpb", {}).items():
            rows.append({"corpus": corpus, "stage": "heal", "before": first["bpb"].get(corpus), "after": after,
                         "tpb_before": (first.get("tokens_per_byte") or {}).get(corpus),
                         "tpb_after": (last.get("tokens_per_byte") or {}).get(corpus)})
    for path in sorted(folder.glob("eval*.json")):
        record = read_json(path) or {}
        for part in record.get("corpora") or []:
            rows.append({"corpus": part.get("name"), "stage": f"eval ({path.name})", "before": None,
                         "after": part.get("bpb"), "tpb_before": None, "tpb_after": part.get("tokens_per_byte")})
    return rows


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else "?"


def _fmt(x: Any, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def _languages(*specs: Any) -> list[str]:
    from tokengraft.assets.corpora import corpus_language

    found = []
    for spec in specs:
        for item in spec if isinstance(spec, (list, tuple)) else [spec]:
            lang = corpus_language(item) if item else None
            if lang and lang not in found:
                found.append(lang)
    return found


def model_card(folder: str | Path, name: str | None = None) -> str:
    """The card's markdown for ``folder`` (see the module docstring); ``name``: the model's name
    (default: the folder's; a writer filling a temporary folder passes the final one)."""
    from tokengraft.heal.options import HealOptions
    from tokengraft.transplant.options import TransplantOptions

    folder = Path(folder)
    transplant = read_json(folder / "transplant.json") or {}
    heal = read_json(folder / "heal.json")
    t_opts = transplant.get("options") or {}
    base, tokenizer = transplant.get("base_model") or t_opts.get("model"), transplant.get("tokenizer")
    method = transplant.get("method")
    summary = transplant.get("summary") or {}
    kind = t_opts.get("kind", "causal")
    langs = _languages(t_opts.get("corpus"), *[r["corpus"] for r in measurements(folder)],
                       (heal or {}).get("options", {}).get("corpus"))
    front = ["---", "library_name: transformers", "tags:", "- tokengraft", "- tokenizer-transplant",
             f"pipeline_tag: {'text-generation' if kind == 'causal' else 'feature-extraction'}"]
    if base and "/" in str(base) and not Path(str(base)).exists():
        front.append(f"base_model: {base}")
    if langs:
        front += ["language:"] + [f"- {lang}" for lang in langs]
    front.append("---")
    title = name or folder.name
    lines = front + ["", f"# {title}", ""]
    if transplant:
        lines.append(f"**{base}** with a new tokenizer (**{tokenizer}**, {_count(summary.get('new_vocab'))} tokens; "
                     f"the base had {_count(summary.get('old_vocab'))}), transplanted by tokengraft with the method "
                     f"**{method}**.")
    if heal:
        h = heal.get("options") or {}
        lines.append(f"Then healed (mode **{h.get('mode')}**, {heal.get('steps')} steps, "
                     f"{_count(heal.get('tokens_seen'))} training tokens on {', '.join(h.get('corpus') or [])}).")
    lines += ["", "## Bits per byte", ""] + _bpb_table(folder)
    if summary:
        counts = ", ".join(f"{k} {_count(v)}" for k, v in (summary.get("counts") or {}).items())
        lines += ["", "## Where the new rows came from", "",
                  f"{summary.get('copied_share', 0):.1%} of the new tokens were copied (same bytes in the old"
                  f" vocabulary); counts: {counts}. Per token: `transplant_tokens.jsonl`."]
        for warning in [*(summary.get("warnings") or []), *(transplant.get("warnings") or [])]:
            lines.append(f"- warning: {warning}")
    lines += ["", "## How it was made", "", "```bash"]
    if t_opts:
        lines.append(command_line("transplant", t_opts, TransplantOptions, t_opts.get("out")))
    if heal:
        lines.append(command_line("heal", heal.get("options") or {}, HealOptions, (heal.get("options") or {}).get("out")))
    lines += ["```", "", "## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer"
              if kind == "causal" else "from transformers import AutoModel, AutoTokenizer", "",
              f"model = {'AutoModelForCausalLM' if kind == 'causal' else 'AutoModel'}.from_pretrained({str(title)!r})",
              f"tokenizer = AutoTokenizer.from_pretrained({str(title)!r})", "```", ""]
    return "\n".join(lines)


def _bpb_table(folder: Path) -> list[str]:
    rows = measurements(folder)
    if not rows:
        return ["Not measured in this folder. Measure it with `tokengraft eval --model DIR --text CORPUS --json "
                "DIR/eval.json` (lower is better; BPB stays comparable across tokenizers)."]
    out = ["BPB = bits per UTF-8 byte of held-out text (lower is better; comparable across tokenizers). "
           "*Before*: the base model with its own tokenizer (transplant) or the model before healing (heal).", "",
           "| corpus | stage | BPB before | BPB after | ratio | tokens/byte before | tokens/byte after |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["after"] / r["before"] if r["before"] and r["after"] is not None else None
        out.append(f"| {r['corpus']} | {r['stage']} | {_fmt(r['before'])} | {_fmt(r['after'])} | {_fmt(ratio, '.3f')} "
                   f"| {_fmt(r['tpb_before'])} | {_fmt(r['tpb_after'])} |")
    return out


def write_card(folder: str | Path, name: str | None = None) -> Path:
    """Write (or refresh) ``folder/README.md``; return its path."""
    path = Path(folder) / CARD
    path.write_text(model_card(folder, name), encoding="utf-8")
    return path
