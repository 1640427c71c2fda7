"""The FOCUS reference (PyPI ``deepfocus`` 1.0.1) on the same transplant, scored like tokengraft's methods.

    python3 -m venv --system-site-packages .venvs/deepfocus
    .venvs/deepfocus/bin/pip install --no-deps deepfocus==1.0.1 entmax fastdist print-on-steroids numba
    PYTHONPATH=. .venvs/deepfocus/bin/python benchmarks/bench_deepfocus.py --lang de --eval libreoffice:de:heldout

(deepfocus pins old versions of its dependencies; ``--no-deps`` plus what it imports works, with the
system's torch, transformers, datasets and fasttext-wheel.) deepfocus trains its fastText CBOW on
``libreoffice:<lang>:<corpus-split>`` (written to a text file, one line per paragraph) with its
defaults (dim 100, 3 epochs, minCount 10, exact matches only, random rows for rare tokens) and returns
the new embedding matrix; the rows are installed into SmolLM2 (tied) and scored on ``--eval``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lang", required=True)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--corpus-split", default="train")
    p.add_argument("--eval", required=True)
    p.add_argument("--max-bytes", type=int, default=30_000)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from deepfocus import FOCUS

    from tokengraft.assets import load_corpora, load_corpus, load_model, load_tokenizer
    from tokengraft.measure import EvalOptions, bits_per_byte
    from tokengraft.transplant.core import transplant_model

    tokenizer = args.tokenizer or f"out/tok-{args.lang}-bpe32k"
    model, old_tok, new_tok = load_model(args.model), load_tokenizer(args.model), load_tokenizer(tokenizer)
    text = Path(f"out/deepfocus-{args.lang}-{args.corpus_split}.txt")
    text.parent.mkdir(parents=True, exist_ok=True)
    lines = [line for doc in load_corpus(f"libreoffice:{args.lang}:{args.corpus_split}").texts()
             for line in doc.split("\n") if line.strip()]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    start = time.perf_counter()
    old = model.get_input_embeddings().weight.detach().float()
    rows = FOCUS(target_tokenizer=new_tok, source_tokenizer=old_tok, source_embeddings=old,
                 target_training_data_path=str(text), processes=1, verbosity="silent")
    seconds = time.perf_counter() - start
    # the transplant gives the model the new vocabulary (and the base's chat markers); then
    # deepfocus's rows replace the method's rows for every id deepfocus covers
    model, tok, _ = transplant_model(model, old_tok, new_tok, "mean")
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[: rows.shape[0]] = rows.to(weight.dtype)
        bpb = bits_per_byte(model, tok, load_corpora([args.eval], max_bytes=args.max_bytes), EvalOptions()).bpb
    record = {"lang": args.lang, "method": "deepfocus 1.0.1", "eval": args.eval, "bpb": round(bpb, 4),
              "focus_seconds": round(seconds, 1), "tied": model.get_output_embeddings().weight is weight}
    print(json.dumps(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
