"""Time the byte view: load + ByteVocab of each built-in tokenizer, and encode_bytes_batch
on a whole vocabulary (what FVT does for every new token).

    HF_HUB_OFFLINE=1 python3 benchmarks/bench_vocab.py                         # all built-ins, gemma -> smollm2
    python3 benchmarks/bench_vocab.py --names gpt2 llama3 --source gemma3-270m --target smollm2-135m

Wall and CPU seconds both: on a shared machine the CPU time is the stable number.
Not a test: it prints a table.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Timer:
    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="*", default=None, help="tokenizers to time (default: all built-ins)")
    parser.add_argument("--source", default="gemma3-270m", help="vocabulary whose bytes are encoded")
    parser.add_argument("--target", default="smollm2-135m", help="tokenizer that encodes them")
    args = parser.parse_args()

    from tokengraft.assets import BUILTIN_TOKENIZERS, load_tokenizer
    from tokengraft.vocab import byte_vocab, encode_bytes_batch, token_bytes

    loaded = {}
    print(f"{'tokenizer':<14} {'ids':>8} {'kind':<14} {'lossless':<8} {'load s':>7} {'ByteVocab wall s':>16} {'cpu s':>6}")
    for name in args.names if args.names is not None else list(BUILTIN_TOKENIZERS):
        with Timer() as load:
            tok = load_tokenizer(name)
        with Timer() as build:
            view = byte_vocab(tok)
        loaded[name] = tok
        print(f"{name:<14} {len(view):>8} {view.kind:<14} {str(view.lossless):<8} {load.wall:>7.1f} {build.wall:>16.2f} {build.cpu:>6.2f}")

    source = loaded.get(args.source) or load_tokenizer(args.source)
    target = loaded.get(args.target) or load_tokenizer(args.target)
    items = [t for t in byte_vocab(source).tokens if t is not None]
    encode_bytes_batch(target, items[:10], errors="best")  # builds the raw copy once, outside the timing
    with Timer() as enc:
        out = encode_bytes_batch(target, items, errors="best")
    exact = sum(token_bytes(target, ids) == data for ids, data in zip(out, items))
    pieces = sum(map(len, out)) / len(out)
    print(f"\nencode_bytes_batch: {len(items)} byte strings of {args.source} with {args.target}: "
          f"{enc.wall:.1f} s wall ({len(items) / enc.wall:,.0f}/s), {enc.cpu:.1f} s CPU; "
          f"{exact} exact, {len(items) - exact} not spellable; {pieces:.2f} pieces per token")


if __name__ == "__main__":
    main()
