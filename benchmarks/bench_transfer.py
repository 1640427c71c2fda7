"""Language transfer end to end: SmolLM2-135M -> a 32k BPE of one language, one method, bits per byte.

    PYTHONPATH=. python3 benchmarks/bench_transfer.py --lang de --eval libreoffice:de:heldout \\
        --methods original,fvt,mean,focus,wechsel,transtok \\
        --choose "focus,focus@static=fasttext;transtok,transtok@fvt_share=0.5"

``--choose`` groups are run first with text ``:fit`` and scored on ``:dev``; the best of each group
is then run on ``--eval`` with text ``:<corpus-split>`` (options are never chosen on held-out text).
Each method runs on a fresh copy of the model loaded once.

The target text is ``libreoffice:<lang>:<corpus-split>`` (FOCUS's static vectors, WECHSEL's
target word vectors, trans-tokenization's target side); English is ``libreoffice:en:<corpus-split>``
(WECHSEL's source words; trans-tokenization aligns each page with its English version line by
line). The new tokenizer is ``out/tok-<lang>-bpe32k`` unless ``--tokenizer``. Prints a
JSON line per run: BPB (first ``--max-bytes`` of the scored corpus), the rows' sources, seconds, and
for transtok the alignment figures (line pairs, word links, aligner seconds, coverage of the
non-copied tokens: the share that got an aligned row).
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch


def aux_inputs(args: argparse.Namespace, old_tok: Any, new_tok: Any, n_old: int) -> tuple[Any, dict]:
    """The method's inputs computed here with the chosen options, and facts to report."""
    from tokengraft.assets import load_corpus
    from tokengraft.transplant.core import prepare_new_tokenizer
    from tokengraft.transplant.provide import Inputs
    from tokengraft.vocab import byte_vocab

    final, _ = prepare_new_tokenizer(old_tok, new_tok)  # the vocabulary after the chat markers are added
    target_corpus = load_corpus(f"libreoffice:{args.lang}:{args.corpus_split}")
    source_corpus = load_corpus(f"libreoffice:en:{args.corpus_split}")
    old_bytes = list(byte_vocab(old_tok).tokens)[:n_old]
    new_bytes = list(byte_vocab(final).tokens)
    start = time.perf_counter()
    if args.method == "focus":
        from tokengraft.transplant.auxiliary import StaticOptions, static_token_embeddings

        vectors = static_token_embeddings(final, target_corpus.texts(), StaticOptions(algorithm=args.static),
                                          len(new_bytes), args.cache)
        return Inputs(aux_new=vectors), {"aux_seconds": round(time.perf_counter() - start, 1)}
    if args.method == "wechsel":
        from tokengraft.transplant.auxiliary.bilingual import load_dictionary
        from tokengraft.transplant.auxiliary.wordvectors import WordVectorOptions, cached_word_space

        dictionary = load_dictionary("en", args.lang)
        old, new, facts = cached_word_space(old_bytes, new_bytes, source_corpus.texts(), target_corpus.texts(),
                                            dictionary, args.cache, WordVectorOptions(**args.words), (old_tok, final))
        return Inputs(aux_new=new, aux_old=old), {**facts, "aux_seconds": round(time.perf_counter() - start, 1)}
    if args.method == "transtok":
        from tokengraft.transplant.auxiliary.alignment import page_line_pairs, token_alignment
        from tokengraft.transplant.methods.transtok import EXTRA

        pairs = page_line_pairs(source_corpus.by_id(), target_corpus.by_id())
        alignment = token_alignment(pairs, old_tok, final, n_old, len(new_bytes))
        facts = {"line_pairs": alignment.pairs, "word_links": alignment.word_links,
                 "aligner_seconds": round(alignment.seconds, 1),
                 "alignment_seconds": round(time.perf_counter() - start, 1)}
        return Inputs(extras={EXTRA: alignment.counts}), facts
    return Inputs(), {}


def parse_spec(spec: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """``wechsel@static=fasttext@paper=true@words.epochs=20`` -> ("wechsel", {"paper": True}, "fasttext",
    {"epochs": 20}): method options, FOCUS's static algorithm, WECHSEL's word-vector options."""
    name, *parts = spec.split("@")
    options, static, words = {}, "ppmi", {}
    for part in parts:
        key, value = part.split("=", 1)
        parsed = json.loads(value) if value[:1] in "0123456789-[{tf" else value
        if key == "static":
            static = value
        elif key.startswith("words."):
            words[key.removeprefix("words.")] = parsed
        else:
            options[key] = parsed
    return name, options, static, words


def run_one(args: argparse.Namespace, spec: str, split: str, evaluate: str, loaded: dict) -> dict:
    """One method on a fresh copy of the base model: transplant, score ``evaluate``; a result record."""
    import copy

    from tokengraft.assets import load_corpora
    from tokengraft.measure import EvalOptions, bits_per_byte
    from tokengraft.transplant.core import transplant_model

    name, options, static, words = parse_spec(spec)
    corpus = load_corpora([evaluate], max_bytes=args.max_bytes)
    model, old_tok = copy.deepcopy(loaded["model"]), loaded["old_tok"]
    if name == "original":
        with torch.no_grad():
            bpb = bits_per_byte(model, old_tok, corpus, EvalOptions()).bpb
        return {"spec": spec, "eval": evaluate, "bpb": round(bpb, 4)}
    run_args = argparse.Namespace(**{**vars(args), "method": name, "static": static, "words": words,
                                     "corpus_split": split})
    start = time.perf_counter()
    key = (name, static, repr(sorted(words.items())), split)  # specs of one method share their inputs (e.g. transtok's alignment)
    cached = key in loaded["inputs"]
    if not cached:
        loaded["inputs"][key] = aux_inputs(run_args, old_tok, loaded["new_tok"],
                                           model.get_input_embeddings().weight.shape[0])
    inputs, facts = loaded["inputs"][key]
    facts = {**facts, "inputs_reused": True} if cached else dict(facts)
    model, tok, diagnostics = transplant_model(model, old_tok, loaded["new_tok"], name, inputs=inputs,
                                               method_options=options)
    seconds = time.perf_counter() - start
    counts = diagnostics.summary.counts
    if name == "transtok":
        estimated = sum(v for k, v in counts.items() if k != "copied" and not k.startswith("special"))
        facts["coverage"] = round(counts.get("transtok", 0) / max(estimated, 1), 4)
    with torch.no_grad():
        bpb = bits_per_byte(model, tok, corpus, EvalOptions()).bpb
    return {"spec": spec, "corpus": f"libreoffice:{args.lang}:{split}", "eval": evaluate, "bpb": round(bpb, 4),
            "transplant_seconds": round(seconds, 1), "sources": counts, **facts}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lang", required=True)
    p.add_argument("--methods", required=True,
                   help="comma-separated specs: fvt, focus@static=fasttext, transtok@fvt_share=0.5, original")
    p.add_argument("--choose", default="",
                   help="semicolon-separated groups of specs compared on :dev (text :fit) first; the best of each"
                        " group replaces the group's first spec in --methods")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tokenizer", default=None, help="default out/tok-<lang>-bpe32k")
    p.add_argument("--corpus-split", default="train")
    p.add_argument("--eval", required=True)
    p.add_argument("--max-bytes", type=int, default=30_000)
    p.add_argument("--json", default=None)
    p.add_argument("--cache", default="", help="folder for auxiliary vectors (static, WECHSEL's space); '' = none")
    args = p.parse_args()

    from tokengraft.assets import load_model, load_tokenizer

    tokenizer = args.tokenizer or f"out/tok-{args.lang}-bpe32k"
    loaded = {"model": load_model(args.model), "old_tok": load_tokenizer(args.model),
              "new_tok": load_tokenizer(tokenizer), "inputs": {}}
    records, methods = [], args.methods.split(",")
    for group in filter(None, args.choose.split(";")):
        specs = group.split(",")
        dev = [run_one(args, spec, "fit", f"libreoffice:{args.lang}:dev", loaded) for spec in specs]
        for record in dev:
            record["role"] = "dev"
            print(json.dumps(record), flush=True)
        records += dev
        best = min(dev, key=lambda r: r["bpb"])["spec"]
        methods = [best if m == specs[0] else m for m in methods]
    for spec in methods:
        record = run_one(args, spec, args.corpus_split, args.eval, loaded)
        record["role"] = "result"
        print(json.dumps(record), flush=True)
        records.append(record)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
