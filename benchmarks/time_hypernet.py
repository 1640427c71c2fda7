"""Seconds to apply a hypernetwork to a new vocabulary, after loading (a timing, not a test).

    python3 benchmarks/time_hypernet.py --hypernet out/hn --tokenizer out/tok-de-bpe32k --repeat 3
    python3 benchmarks/time_hypernet.py --hypernet out/hn --tokenizer out/tok-de-bpe32k --load-only

Loads the base model, both tokenizers and the network (the CLI's own plan and inputs), then
runs the transplant (decompositions, FVT means, the network, copied rows) ``--repeat`` times
on fresh copies of the base, printing each one's seconds and the median. ``--load-only``
stops after loading: timing the whole process with and without it (``/usr/bin/time``, or
any process timer) gives the transplant's share of a cold command.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--hypernet", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.transplant.core import transplant_model
    from tokengraft.transplant.options import TransplantOptions
    from tokengraft.transplant.plan import plan_transplant
    from tokengraft.transplant.run import load_inputs

    t0 = time.perf_counter()
    options = TransplantOptions(args.model, args.tokenizer, "hypernet", hypernet=args.hypernet)
    plan = plan_transplant(options)
    base, old_tok, new_tok = load_model(args.model), load_tokenizer(args.model), load_tokenizer(args.tokenizer)
    inputs = load_inputs(plan, options, new_tok)
    load_s = time.perf_counter() - t0
    seconds = []
    for _ in range(0 if args.load_only else args.repeat):
        model = copy.deepcopy(base)
        start = time.perf_counter()
        transplant_model(model, old_tok, new_tok, plan=plan, inputs=inputs, copy_tokenizer=False)
        seconds.append(time.perf_counter() - start)
    report = {"tokenizer": args.tokenizer, "new_vocab": len(new_tok), "threads": torch.get_num_threads(),
              "load_seconds": round(load_s, 3), "apply_seconds": [round(s, 3) for s in seconds],
              "apply_median": round(statistics.median(seconds), 3) if seconds else None}
    print(json.dumps(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
