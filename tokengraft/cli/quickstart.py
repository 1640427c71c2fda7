"""``tokengraft quickstart``: the whole story on embedded defaults, offline.

Train a French tokenizer on LibreOffice help text, transplant SmolLM2-135M onto it with
the default method, heal it for a few minutes in heal's default mode, and print bits per
byte and tokens per byte on held-out French and English for the original model, the
zero-shot transplant and the healed one, plus a sample generation from each.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from tokengraft.tokenizer.options import TrainOptions
from tokengraft.transplant.options import DEFAULT_METHOD

logger = logging.getLogger(__name__)

EPILOG = """examples:
  tokengraft quickstart
  tokengraft quickstart --language de --vocab-size 16000 --max-bytes 50000 --out out/quickstart-de
  tokengraft quickstart --heal-seconds 540   # nine minutes of healing instead of three
"""


@dataclass
class QuickstartOptions:
    model: str = "smollm2-135m"                   # base model
    language: str = "fr"                          # LibreOffice help language to adapt to
    vocab_size: int = TrainOptions.vocab_size     # of the tokenizer trained on libreoffice:<language>:train
    method: str = DEFAULT_METHOD                  # init method
    max_bytes: int = 20_000                       # held-out bytes scored per language (SmolLM2 scores ~100-300
                                                  # tokens/s on 2 CPU cores)
    heal_seconds: float = 180.0                   # wall-clock budget of the healing step (0: skip it)
    out: str = "out/quickstart"                   # folder for the tokenizer and the models


def register(sub: Any) -> None:
    from tokengraft.cli.flags import add_option_flags

    p = sub.add_parser("quickstart", help="train a tokenizer, transplant SmolLM2, report bits per byte before/after",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_option_flags(p, QuickstartOptions, metavars={"model": "SPEC", "language": "LANG", "method": "NAME",
                                                     "out": "DIR"})
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> QuickstartOptions:
    from tokengraft.cli.flags import options_from_args as build

    return build(args, QuickstartOptions)


def run(args: argparse.Namespace) -> int:
    from tokengraft.assets import load_corpus
    from tokengraft.tokenizer import train_to_folder
    from tokengraft.transplant import TransplantOptions, transplant

    o = options_from_args(args)
    out = Path(o.out)
    tok_dir, model_dir = out / f"tokenizer-{o.language}-{o.vocab_size}", out / f"model-{o.method}"
    train_spec = f"libreoffice:{o.language}:train"
    if not tok_dir.exists():  # idempotent: a second run reuses the tokenizer
        print(f"[1/5] training a {o.vocab_size}-token BPE on {train_spec} ...", flush=True)
        texts = load_corpus(train_spec).texts()
        train_to_folder(texts, TrainOptions(vocab_size=o.vocab_size, base=o.model), tok_dir,
                        corpus_names=(train_spec,))
    else:
        print(f"[1/5] reusing tokenizer {tok_dir}", flush=True)
    print(f"[2/5] transplanting {o.model} with method {o.method} ...", flush=True)
    t0 = time.perf_counter()
    # methods that read text get the tokenizer's own training corpus (the plan's default)
    result = transplant(TransplantOptions(model=o.model, tokenizer=str(tok_dir), method=o.method,
                                          out=str(model_dir), overwrite=True))
    print(f"      done in {time.perf_counter() - t0:.1f} s -> {model_dir}", flush=True)
    print(result.table())
    healed_dir = _heal(o, model_dir, train_spec)
    models = {"original": o.model, "zero-shot": str(model_dir)}
    if healed_dir is not None:
        models["healed"] = str(healed_dir)
    print("[4/5] bits per byte on held-out text (lower is better) ...", flush=True)
    scores = _score(o, models)
    print(_table(scores))
    _record(model_dir, scores)
    print("[5/5] sample generations (greedy):", flush=True)
    prompt = _PROMPTS.get(o.language, "LibreOffice")
    for label, spec in models.items():
        print(f"  {label}: {_sample(spec, prompt)!r}", flush=True)
    return 0


def _heal(o: QuickstartOptions, model_dir: Path, train_spec: str) -> Path | None:
    """Heal the transplant for ``o.heal_seconds`` in heal's default mode; None when skipped."""
    from tokengraft.heal import HealOptions, heal

    if o.heal_seconds <= 0:
        print("[3/5] healing skipped (--heal-seconds 0)", flush=True)
        return None
    options = HealOptions(model=str(model_dir), corpus=[train_spec], max_seconds=o.heal_seconds, device="cpu",
                          out=str(model_dir) + "-healed", overwrite=True, save_every=0, progress=False)
    print(f"[3/5] healing for {o.heal_seconds:g} s (mode {options.mode}, on {train_spec}) ...", flush=True)
    # A budget stop leaves checkpoints for --resume; an earlier quickstart's belong to the transplant
    # that step 2 has just rewritten, so they are stale (and heal would refuse to start over them).
    shutil.rmtree(options.checkpoint_dir(), ignore_errors=True)
    result = heal(options)
    print(f"      {result.steps} steps in {result.budget_seconds:.0f} s -> {result.out}", flush=True)
    return Path(result.out)


def _score(o: QuickstartOptions, models: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{corpus: {label: EvalResult}} for every model on the held-out texts."""
    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.measure import EvalOptions, bits_per_byte

    held = load_corpora([f"libreoffice:{o.language}:heldout", "libreoffice:en:heldout"], max_bytes=o.max_bytes)
    scores: dict[str, dict[str, Any]] = {c.name: {} for c in held}
    for label, spec in models.items():
        model, tok = load_model(spec), load_tokenizer(spec)
        for corpus in held:
            scores[corpus.name][label] = bits_per_byte(model, tok, corpus, EvalOptions())
        del model
    return scores


def _record(model_dir: Path, scores: dict[str, dict[str, Any]]) -> None:
    """The zero-shot figures into the transplant's record and model card, and its report."""
    from tokengraft.publish.evaluate import eval_entries, record_eval
    from tokengraft.report import write_report

    def part(label: str) -> dict[str, dict[str, float]]:
        return {name: {"bpb": r[label].bpb, "tokens_per_byte": r[label].tokens_per_byte, "bytes": r[label].bytes}
                for name, r in scores.items()}

    record_eval(model_dir, eval_entries(part("original"), part("zero-shot")))
    print(f"      report: {write_report(model_dir)}", flush=True)


_PROMPTS = {"fr": "Pour insérer un tableau dans LibreOffice Writer,", "de": "Um eine Tabelle in LibreOffice Writer",
            "es": "Para insertar una tabla en LibreOffice Writer,", "en": "To insert a table in LibreOffice Writer,"}


def _table(scores: dict[str, dict[str, Any]]) -> str:
    """Markdown: BPB of each model, its ratio to the original, and tokens per byte."""
    labels = list(next(iter(scores.values())))
    head = "| corpus | bytes | " + " | ".join(f"BPB {label}" for label in labels) + " | " + \
        " | ".join(f"ratio {label}" for label in labels[1:]) + " | tokens/byte before | after |"
    lines = [head, "|" + "---|" * (2 + 2 * len(labels) - 1 + 2)]
    for name, by_label in scores.items():
        base = by_label["original"]
        cells = [f"{r.bpb:.4f}" for r in by_label.values()]
        ratios = [f"{by_label[label].bpb / base.bpb:.3f}" for label in labels[1:]]
        last = by_label[labels[-1]]
        lines.append(f"| {name} | {base.bytes} | " + " | ".join(cells + ratios)
                     + f" | {base.tokens_per_byte:.4f} | {last.tokens_per_byte:.4f} |")
    return "\n".join(lines)


def _sample(spec: str, prompt: str, new_tokens: int = 40) -> str:
    import torch

    from tokengraft.assets import load_model, load_tokenizer

    model, tokenizer = load_model(spec), load_tokenizer(spec)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, repetition_penalty=1.2,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0], skip_special_tokens=True)
