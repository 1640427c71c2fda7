"""Time a 32k SuperBPE training on ~5 MB of text and print where the time goes.

    HF_HUB_OFFLINE=1 python3 benchmarks/bench_superbpe.py                     # libreoffice:fr:train, 5 MB
    python3 benchmarks/bench_superbpe.py --corpus my.txt --bytes 2000000 --vocab-size 16000

Target (issue 3): under 5 minutes on 2 CPU cores. Not a test: it prints a table.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="libreoffice:fr:train")
    parser.add_argument("--bytes", type=int, default=5_000_000)
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--transition", type=int, default=None)
    parser.add_argument("--base", default=None, help="e.g. smollm2-135m (default: GPT-2 conventions)")
    parser.add_argument("--out", default=None, help="save the tokenizer here (overwrites)")
    args = parser.parse_args()

    from tokengraft.assets import load_corpus
    from tokengraft.tokenizer import TrainOptions, save_tokenizer, train_tokenizer
    from tokengraft.vocab import byte_vocab

    corpus = load_corpus(args.corpus).truncate(args.bytes)
    texts = corpus.texts()
    options = TrainOptions(vocab_size=args.vocab_size, kind="superbpe", base=args.base,
                           transition=args.transition, show_progress=False)
    marks: list[tuple[str, float]] = [("start", time.perf_counter())]

    def progress(stage: str, done: int, total: int) -> None:
        if stage != "superword merges":
            marks.append((stage, time.perf_counter()))

    tok = train_tokenizer(texts, options, progress=progress)
    marks.append(("end", time.perf_counter()))
    print(f"corpus {args.corpus}: {corpus.num_bytes:,} bytes, {len(texts)} documents; "
          f"vocab {len(tok)}, transition {options.transition_size()}, cores {os.cpu_count()}")
    print(f"{'phase':<28}{'seconds':>9}")
    names = {"stage 1": "stage 1 (HF BPE)", "segmented": "stage-1 segmentation",
             "trained": "stage 2 (superword merges)", "end": "tokenizer assembly"}
    for (_, t0), (name, t1) in zip(marks, marks[1:]):
        print(f"{names.get(name, name):<28}{t1 - t0:>9.1f}")
    print(f"{'total':<28}{marks[-1][1] - marks[0][1]:>9.1f}")
    spans = [b for b in byte_vocab(tok).tokens[options.transition_size():] if b and len(b.split()) >= 2]
    print(f"tokens spanning 2+ words: {len(spans)}; e.g. {[b.decode('utf-8', 'replace') for b in spans[:8]]}")
    if args.out:
        save_tokenizer(tok, args.out, overwrite=True)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
