"""Trans-tokenization end to end: align LibreOffice pages with their English versions, transplant, score.

    PYTHONPATH=. python3 benchmarks/bench_transtok.py --lang de --eval libreoffice:de:heldout
    PYTHONPATH=. python3 benchmarks/bench_transtok.py --lang fr --corpus-split fit --eval libreoffice:fr:dev --fvt-share 0.5

The target side is ``libreoffice:<lang>:<corpus-split>`` (pages aligned line by line with
``libreoffice:en:<corpus-split>``), the base model SmolLM2-135M, the new tokenizer
``/work/artifacts/tok-<lang>-bpe32k``. Prints the line pairs, word links, aligner seconds,
coverage (share of non-copied new tokens with an aligned row) and bits per byte on ``--eval``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lang", required=True)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tokenizer", default=None, help="default /work/artifacts/tok-<lang>-bpe32k")
    p.add_argument("--corpus-split", default="train")
    p.add_argument("--eval", required=True)
    p.add_argument("--max-bytes", type=int, default=30_000)
    p.add_argument("--fvt-share", type=float, default=0.0)
    p.add_argument("--min-count", type=float, default=1.0)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from tokengraft.assets import load_corpora, load_corpus, load_model, load_tokenizer
    from tokengraft.measure import EvalOptions, bits_per_byte
    from tokengraft.transplant.auxiliary.alignment import page_line_pairs, token_alignment
    from tokengraft.transplant.core import transplant_model
    from tokengraft.transplant.inputs import Inputs
    from tokengraft.transplant.methods.transtok import EXTRA

    tokenizer = args.tokenizer or f"/work/artifacts/tok-{args.lang}-bpe32k"
    model, old_tok, new_tok = load_model(args.model), load_tokenizer(args.model), load_tokenizer(tokenizer)
    target = load_corpus(f"libreoffice:{args.lang}:{args.corpus_split}").by_id()
    source = load_corpus(f"libreoffice:en:{args.corpus_split}").by_id()
    pairs = page_line_pairs(source, target)
    start = time.perf_counter()
    old_size = model.get_input_embeddings().weight.shape[0]
    # chat markers are added to the new tokenizer by the transplant: count on its final size
    alignment = token_alignment(pairs, old_tok, new_tok, old_size, len(new_tok) + 8)
    total_seconds = time.perf_counter() - start
    inputs = Inputs(extras={EXTRA: alignment.counts})
    model, tok, diagnostics = transplant_model(
        model, old_tok, new_tok, "transtok", inputs=_resized(inputs, len(new_tok), old_tok, new_tok),
        method_options={"fvt_share": args.fvt_share, "min_count": args.min_count})
    counts = diagnostics.summary.counts
    aligned = counts.get("transtok", 0)
    wanted = aligned + counts.get("fvt", 0) + counts.get("fallback", 0)
    corpus = load_corpora([args.eval], max_bytes=args.max_bytes)
    bpb = bits_per_byte(model, tok, corpus, EvalOptions()).bpb
    record = {"lang": args.lang, "eval": args.eval, "line_pairs": alignment.pairs, "word_links": alignment.word_links,
              "aligner_seconds": round(alignment.seconds, 1), "alignment_seconds": round(total_seconds, 1),
              "coverage": round(aligned / max(wanted, 1), 4), "counts": counts, "bpb": round(bpb, 4),
              "fvt_share": args.fvt_share, "min_count": args.min_count}
    print(json.dumps(record))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)


def _resized(inputs, n_new, old_tok, new_tok):
    """The counts cut to the final new vocabulary (the tokenizer plus the chat markers the transplant adds)."""
    from tokengraft.transplant.core import prepare_new_tokenizer

    final, _ = prepare_new_tokenizer(old_tok, new_tok)
    counts = inputs.extras["transtok"].coalesce()
    keep = counts.indices()[0] < len(final)
    inputs.extras["transtok"] = torch.sparse_coo_tensor(
        counts.indices()[:, keep], counts.values()[keep], (len(final), counts.shape[1])).coalesce()
    return inputs


if __name__ == "__main__":
    main()
