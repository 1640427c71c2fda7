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
from typing import Any

logger = logging.getLogger(__name__)

EPILOG = """examples:
  tokengraft quickstart
  tokengraft quickstart --language de --vocab-size 16000 --max-bytes 50000 --out out/quickstart-de
"""


def register(sub: Any) -> None:
    from tokengraft.transplant.options import DEFAULT_METHOD

    p = sub.add_parser("quickstart", help="train a tokenizer, transplant SmolLM2, report bits per byte before/after",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="base model (default: smollm2-135m)")
    p.add_argument("--language", default="fr", help="LibreOffice help language to adapt to (default: fr)")
    p.add_argument("--vocab-size", type=int, default=32000, help="default: 32000")
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"init method (default: {DEFAULT_METHOD})")
    p.add_argument("--max-bytes", type=int, default=20000,
                   help="held-out bytes scored per language (default: 20000; SmolLM2 scores ~100-300 tokens/s on 2 CPU cores)")
    p.add_argument("--out", default="out/quickstart", help="folder for the tokenizer and model (default: out/quickstart)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tokengraft.assets import load_corpora, load_corpus, load_model, load_tokenizer
    from tokengraft.measure import EvalOptions, bits_per_byte
    from tokengraft.tokenizer import TrainOptions, train_to_folder
    from tokengraft.transplant import TransplantOptions, transplant
    from tokengraft.transplant.core import get_method

    out = Path(args.out)
    tok_dir, model_dir = out / f"tokenizer-{args.language}-{args.vocab_size}", out / f"model-{args.method}"
    train_spec = f"libreoffice:{args.language}:train"
    if not tok_dir.exists():  # idempotent: a second run reuses the tokenizer
        print(f"[1/4] training a {args.vocab_size}-token BPE on {train_spec} ...", flush=True)
        texts = load_corpus(train_spec).texts()
        train_to_folder(texts, TrainOptions(vocab_size=args.vocab_size, base=args.model), tok_dir,
                        corpus_names=(train_spec,))
    else:
        print(f"[1/4] reusing tokenizer {tok_dir}", flush=True)
    print(f"[2/4] transplanting {args.model} with method {args.method} ...", flush=True)
    t0 = time.perf_counter()
    needs = get_method(args.method).needs
    corpus = train_spec if {"corpus", "aux", "model"} & set(needs) else None  # the tokenizer's own training text
    result = transplant(TransplantOptions(model=args.model, tokenizer=str(tok_dir), method=args.method,
                                          corpus=corpus, out=str(model_dir), overwrite=True))
    print(f"      done in {time.perf_counter() - t0:.1f} s -> {model_dir}", flush=True)
    print(result.table())

    print("[3/4] bits per byte on held-out text (lower is better) ...", flush=True)
    held = load_corpora([f"libreoffice:{args.language}:heldout", "libreoffice:en:heldout"], max_bytes=args.max_bytes)
    options = EvalOptions()
    base = load_model(args.model)
    rows = []
    for corpus in held:
        before = bits_per_byte(base, load_tokenizer(args.model), corpus, options)
        after = bits_per_byte(result.model, result.tokenizer, corpus, options)
        rows.append((corpus.name, before, after))
    print(_table(args.model, rows))

    print("[4/4] sample generation from the new model:", flush=True)
    print(_sample(result.model, result.tokenizer, _PROMPTS.get(args.language, "LibreOffice")))
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
