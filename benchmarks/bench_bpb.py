"""Tokens per second of the bits-per-byte meter on real held-out text (a table, not a test).

    python benchmarks/bench_bpb.py                          # CPU float32, and CUDA bfloat16 when a GPU is present
    python benchmarks/bench_bpb.py --cpu-bytes 20000 --cpu-budgets 4096,16384 --no-cuda

Rows: the batched meter at several token budgets, the plain one-document-at-a-time
reference, and "plain rows": transformers scoring full 512-token rows cut from the same
token stream (no documents, no padding, full logits), the usual yardstick for a GPU.
tokens/s counts scored tokens over wall time, tokenizing included; "model tok/s"
leaves tokenizing out.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tokengraft.assets import Corpus, Document, load_corpus, load_model, load_tokenizer
from tokengraft.measure import EvalOptions, bits_per_byte, bits_per_byte_reference


@dataclass
class Row:
    device: str
    dtype: str
    what: str
    budget: str
    tokens: int
    seconds: float
    model_seconds: float
    bpb: float

    def cells(self) -> list[str]:
        return [self.device, self.dtype, self.what, self.budget, f"{self.tokens:,}", f"{self.seconds:.2f}",
                f"{self.tokens / self.seconds:,.0f}", f"{self.tokens / self.model_seconds:,.0f}",
                "-" if self.bpb != self.bpb else f"{self.bpb:.4f}"]


HEADER = ["device", "dtype", "what", "budget", "tokens", "seconds", "tokens/s", "model tok/s", "BPB"]


def print_table(rows: list[Row]) -> None:
    table = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    for line in table:
        print("  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))


def repeat_to_bytes(corpus: Corpus, min_bytes: int) -> Corpus:
    """The corpus's documents repeated (as new documents) until there are ``min_bytes``."""
    docs, n = [], 0
    while n < min_bytes:
        for d in corpus.documents:
            docs.append(Document(f"{d.id}#{len(docs)}", d.text))
            n += len(d.text.encode("utf-8"))
    return Corpus(corpus.name, docs)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_rows(model, tokenizer, corpus: Corpus, device: str, dtype: str, batch: int, row_len: int = 512) -> Row:
    """transformers on full rows of one token stream: the yardstick the meter should match."""
    ids = [i for doc in tokenizer(corpus.texts(), add_special_tokens=False)["input_ids"] for i in doc]
    rows = torch.tensor(ids[: len(ids) // row_len * row_len]).view(-1, row_len)
    auto = dtype == "bfloat16" and next(model.parameters()).dtype == torch.float32
    total = torch.zeros((), dtype=torch.float64, device=device)
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=auto):
        for i in range(0, len(rows), batch):
            x = rows[i:i + batch].to(device)
            logits = model(input_ids=x, use_cache=False).logits[:, :-1]
            total += F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten(), reduction="sum").double()
    sync(device)
    seconds = time.perf_counter() - t0
    scored = rows.shape[0] * (row_len - 1)
    return Row(device, dtype, f"plain rows x{batch}", f"{batch * row_len}", scored, seconds, seconds, float("nan"))


def meter_row(model, tokenizer, corpus: Corpus, device: str, dtype: str, budget: int | None, reference: bool = False) -> Row:
    options = EvalOptions(device=device, dtype=dtype, batch_tokens=budget)
    fn = bits_per_byte_reference if reference else bits_per_byte
    r = fn(model, tokenizer, corpus, options)
    return Row(device, dtype, "reference" if reference else "meter", "-" if reference else str(budget),
               r.tokens, r.seconds, r.seconds - r.tokenize_seconds, r.bpb)


def bench(model_spec: str, tokenizer, corpus: Corpus, device: str, dtype: str, budgets: list[int],
          ref_bytes: int, plain_batches: list[int]) -> list[Row]:
    model = load_model(model_spec, dtype=getattr(torch, dtype), device=device)
    meter_row(model, tokenizer, corpus.truncate(4000), device, dtype, budgets[0])  # warm-up
    rows = [meter_row(model, tokenizer, corpus, device, dtype, b) for b in budgets]
    rows.append(meter_row(model, tokenizer, corpus.truncate(ref_bytes), device, dtype, None, reference=True))
    rows += [plain_rows(model, tokenizer, corpus, device, dtype, b) for b in plain_batches]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--text", default="libreoffice:en:heldout")
    p.add_argument("--cpu-bytes", type=int, default=60_000, help="bytes of text scored on the CPU")
    p.add_argument("--cpu-budgets", default="1024,4096,16384")
    p.add_argument("--cpu-reference-bytes", type=int, default=15_000)
    p.add_argument("--cuda-bytes", type=int, default=8_000_000, help="documents are repeated up to this many bytes")
    p.add_argument("--cuda-budgets", default="32768,131072,262144")
    p.add_argument("--cuda-reference-bytes", type=int, default=200_000)
    p.add_argument("--no-cuda", action="store_true")
    p.add_argument("--no-cpu", action="store_true")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)

    tokenizer = load_tokenizer(args.model)
    corpus = load_corpus(args.text)
    rows: list[Row] = []
    if not args.no_cpu:
        budgets = [int(b) for b in args.cpu_budgets.split(",")]
        rows += bench(args.model, tokenizer, corpus.truncate(args.cpu_bytes), "cpu", "float32", budgets,
                      args.cpu_reference_bytes, plain_batches=[8])
    if torch.cuda.is_available() and not args.no_cuda:
        budgets = [int(b) for b in args.cuda_budgets.split(",")]
        rows += bench(args.model, tokenizer, repeat_to_bytes(corpus, args.cuda_bytes), "cuda", "bfloat16", budgets,
                      args.cuda_reference_bytes, plain_batches=[32, 128])
    print(f"{args.model} on {args.text} ({torch.get_num_threads()} CPU threads"
          f"{', ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''})")
    print_table(rows)


if __name__ == "__main__":
    main()
