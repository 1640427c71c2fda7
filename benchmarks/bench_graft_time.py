"""How long ``graft`` takes after loading, split into its inputs' providers and the rest (a table row, not a test).

    heavy -x python3 benchmarks/bench_graft_time.py --model smollm2-135m --tokenizer out/tok-fr-bpe32k \\
        --corpus libreoffice:fr:fit --out out/graft-fr
    PYTHONPATH=../old-checkout heavy -x python3 benchmarks/bench_graft_time.py ...   # the same on older code

Prints one JSON line: seconds after loading (as ``tokengraft transplant`` counts them), each
provider's seconds (``continuation``, the MiniLM strings: ``vocab-strings`` or ``strings`` on
older code) and the rest (correspondence, neighbour search, rows, install). MiniLM vectors are
never read from tokengraft's cache: ``TOKENGRAFT_CACHE`` points at a fresh folder whose other
entries (models, corpora, tokenizers) link to the real ones. Quote times from a machine running
nothing else (``heavy -x``) and say how loaded it was.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time


def fresh_aux_cache() -> str:
    """A cache folder like tokengraft's, without its ``aux`` entry (so nothing auxiliary is cached)."""
    real = os.environ.get("TOKENGRAFT_CACHE", os.path.expanduser("~/.cache/tokengraft"))
    fresh = tempfile.mkdtemp(prefix="tokengraft-cache-")
    for entry in os.listdir(real) if os.path.isdir(real) else []:
        if entry != "aux":
            os.symlink(os.path.join(real, entry), os.path.join(fresh, entry))
    return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--out", default=None, help="write the transplant here (not timed)")
    parser.add_argument("--method-option", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    os.environ["TOKENGRAFT_CACHE"] = fresh_aux_cache()

    import torch

    from tokengraft.cli.transplant import parse_method_options
    from tokengraft.transplant.auxiliary.registry import PROVIDERS
    from tokengraft.transplant.options import TransplantOptions
    from tokengraft.transplant.run import transplant

    seconds: dict[str, float] = {}
    for name, spec in list(PROVIDERS.items()):
        def timed(request, options, _fn=spec.fn, _name=name):
            start = time.perf_counter()
            try:
                return _fn(request, options)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - start
        PROVIDERS[name] = dataclasses.replace(spec, fn=timed)
    options = TransplantOptions(args.model, args.tokenizer, method="graft", corpus=args.corpus, out=args.out,
                                overwrite=True, method_options=parse_method_options(args.method_option))
    result = transplant(options)
    row = {"model": args.model, "tokenizer": args.tokenizer, "threads": torch.get_num_threads(),
           "after_load_s": round(result.seconds, 1), **{f"{k}_s": round(v, 1) for k, v in seconds.items()},
           "rest_s": round(result.seconds - sum(seconds.values()), 1), "method_options": args.method_option}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
