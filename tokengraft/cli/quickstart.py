"""``tokengraft quickstart``: the whole story on embedded defaults, offline.

Train a French tokenizer on LibreOffice help text, transplant SmolLM2-135M onto it with
the default method, and print bits per byte and tokens per byte before and after on
held-out French and English, plus a sample generation from the new model.
"""
from __future__ import annotations

import argparse
import logging
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
"""


@dataclass
class QuickstartOptions:
    model: str = "smollm2-135m"                   # base model
    language: str = "fr"                          # LibreOffice help language to adapt to
    vocab_size: int = TrainOptions.vocab_size     # of the tokenizer trained on libreoffice:<language>:train
    method: str = DEFAULT_METHOD                  # init method
    max_bytes: int = 20_000                       # held-out bytes scored per language (SmolLM2 scores ~100-300
                                                  # tokens/s on 2 CPU cores)
    out: str = "out/quickstart"                   # folder for the tokenizer and the model


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
    from tokengraft.assets import load_corpora, load_corpus, load_model, load_tokenizer
    from tokengraft.measure import EvalOptions, bits_per_byte
    from tokengraft.publish.evaluate import eval_entries, record_eval
    from tokengraft.report import write_report
    from tokengraft.tokenizer import train_to_folder
    from tokengraft.transplant import TransplantOptions, transplant

    o = options_from_args(args)
    out = Path(o.out)
    tok_dir, model_dir = out / f"tokenizer-{o.language}-{o.vocab_size}", out / f"model-{o.method}"
    train_spec = f"libreoffice:{o.language}:train"
    if not tok_dir.exists():  # idempotent: a second run reuses the tokenizer
        print(f"[1/4] training a {o.vocab_size}-token BPE on {train_spec} ...", flush=True)
        texts = load_corpus(train_spec).texts()
        train_to_folder(texts, TrainOptions(vocab_size=o.vocab_size, base=o.model), tok_dir,
                        corpus_names=(train_spec,))
    else:
        print(f"[1/4] reusing tokenizer {tok_dir}", flush=True)
    print(f"[2/4] transplanting {o.model} with method {o.method} ...", flush=True)
    t0 = time.perf_counter()
    # methods that read text get the tokenizer's own training corpus (the plan's default)
    result = transplant(TransplantOptions(model=o.model, tokenizer=str(tok_dir), method=o.method,
                                          out=str(model_dir), overwrite=True))
    print(f"      done in {time.perf_counter() - t0:.1f} s -> {model_dir}", flush=True)
    print(result.table())

    print("[3/4] bits per byte on held-out text (lower is better) ...", flush=True)
    held = load_corpora([f"libreoffice:{o.language}:heldout", "libreoffice:en:heldout"], max_bytes=o.max_bytes)
    options = EvalOptions()
    base = load_model(o.model)
    rows = []
    for corpus in held:
        before = bits_per_byte(base, load_tokenizer(o.model), corpus, options)
        after = bits_per_byte(result.model, result.tokenizer, corpus, options)
        rows.append((corpus.name, before, after))
    print(_table(o.model, rows))
    before = {name: {"bpb": b.bpb, "tokens_per_byte": b.tokens_per_byte, "bytes": b.bytes} for name, b, _ in rows}
    after = {name: {"bpb": a.bpb, "tokens_per_byte": a.tokens_per_byte, "bytes": a.bytes} for name, _, a in rows}
    record_eval(model_dir, eval_entries(before, after))  # into transplant.json and the model card
    print(f"      report: {write_report(model_dir)}", flush=True)

    print("[4/4] sample generation from the new model:", flush=True)
    print(_sample(result.model, result.tokenizer, _PROMPTS.get(o.language, "LibreOffice")))
    return 0


_PROMPTS = {"fr": "Pour insérer un tableau dans LibreOffice Writer,", "de": "Um eine Tabelle in LibreOffice Writer",
            "es": "Para insertar una tabla en LibreOffice Writer,", "en": "To insert a table in LibreOffice Writer,"}


def _table(model: str, rows: list[tuple[str, Any, Any]]) -> str:
    head = f"| corpus | bytes | BPB {model} | BPB transplanted | ratio | tokens/byte before | tokens/byte after |"
    lines = [head, "|" + "---|" * 7]
    for name, b, a in rows:
        lines.append(f"| {name} | {a.bytes} | {b.bpb:.4f} | {a.bpb:.4f} | {a.bpb / b.bpb:.3f} "
                     f"| {b.tokens_per_byte:.4f} | {a.tokens_per_byte:.4f} |")
    return "\n".join(lines)


def _sample(model: Any, tokenizer: Any, prompt: str, new_tokens: int = 40) -> str:
    import torch

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, repetition_penalty=1.2,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0], skip_special_tokens=True)
