"""What heal's output head costs a step: the (positions x vocabulary) product, the next-token
log-probabilities and their backward pass, the reference way (a float32 cross-entropy) against
the blocked one (``tokengraft.heal.target_logp``), under the bf16 autocast heal uses on a CPU
that computes bf16 natively (float32 elsewhere). Prints the median of ``--repeats`` runs of each,
alternating, and the largest differences of values and gradients.

    python3 benchmarks/logprob_probe.py                       # SmolLM2's width, the German 32k vocabulary
    python3 benchmarks/logprob_probe.py --vocab 262144        # Gemma-3's vocabulary
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--width", type=int, default=576)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()

    from tokengraft.heal.target_logp import token_logprobs, token_logprobs_reference
    from tokengraft.lm.precision import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16()
    torch.manual_seed(0)
    head = torch.nn.Parameter(torch.randn(args.vocab, args.width) * 0.02)
    states = torch.randn(args.batch, args.length, args.width)
    ids = torch.randint(0, args.vocab, (args.batch, args.length))

    def step(fn):
        h = states.clone().requires_grad_(True)
        head.grad = None
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = F.linear(h, head)
        logp = fn(logits, ids)
        (-logp.sum()).backward()
        return time.perf_counter() - start, logp.detach(), h.grad, head.grad.clone()

    ways = {"reference (float32 cross-entropy)": token_logprobs_reference, "blocked (target_logp)": token_logprobs}
    for fn in ways.values():
        step(fn)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, fn in ways.items():
            times[name].append(step(fn)[0])
    print(f"head of {args.batch} x {args.length} positions, width {args.width}, vocabulary {args.vocab}, "
          f"bf16 autocast: {bf16}, threads: {torch.get_num_threads()}, median of {args.repeats}")
    print("| way | forward + backward (ms) | ratio |\n|---|---|---|")
    base = statistics.median(times[next(iter(ways))])
    for name, xs in times.items():
        print(f"| {name} | {statistics.median(xs) * 1000:.1f} | {statistics.median(xs) / base:.3f} |")
    ref, new = step(token_logprobs_reference)[1:], step(token_logprobs)[1:]
    for label, a, b in zip(("log-probabilities", "state gradient", "head gradient"), ref, new):
        print(f"{label}: largest difference {(a - b).abs().max().item():.2e}, relative norm {((a - b).norm() / a.norm()).item():.2e}")


if __name__ == "__main__":
    main()
