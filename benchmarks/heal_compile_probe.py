"""Would ``torch.compile`` buy heal steps at a CPU budget? Times heal's default training step
(LoRA rank 16 on every projection plus both embedding matrices, 2 x 512 tokens, bf16 autocast
where the CPU computes it natively) eagerly or compiled: the first step (compilation included)
and the median of the next six.

    python3 benchmarks/heal_compile_probe.py out/de-graft eager
    python3 benchmarks/heal_compile_probe.py out/de-graft compile

Session 24 (2-core EPYC with AVX512-BF16, alone, German 32k graft of SmolLM2-135M), this script:
eager 4.58 and 4.60 s a step; compiled 3.77 s after a first step of 172 s with inductor's on-disk
cache empty, 4.21 s after 23 s with it filled by an earlier run. A draft of it (the same step, the
upper of the two middle step times): eager 5.10 s, compiled 4.47 s after 171 s. Compiling costs a
third of a 540-s budget to save 8-18% of a step: not adopted.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in ("eager", "compile"):
        print(__doc__)
        print("heal_compile_probe: give a model folder and eager|compile", file=sys.stderr)
        return 2
    from transformers import AutoModelForCausalLM

    from tokengraft.heal import modes
    from tokengraft.lm.precision import cpu_has_native_bf16

    path, how = sys.argv[1], sys.argv[2]
    model = modes.prepare(AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), "lora", None, 16, 32)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, model.config.vocab_size, (2, 512), generator=torch.Generator().manual_seed(0))
    forward = torch.compile(model) if how == "compile" else model
    bf16 = cpu_has_native_bf16()  # what heal's --precision auto does on a CPU

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    first = step()
    median = statistics.median(step() for _ in range(6))
    print(f"{how}: first step {first:.1f} s, median step {median:.2f} s ({ids.numel() / median:.0f} tokens/s), "
          f"bf16 autocast: {bf16}, threads: {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
