"""Byte-level probabilities on real models: BPB tables, ensembles, prompt boundaries, speed (tables, not tests).

    python benchmarks/bench_bytes.py bpb --model smollm2-135m --text libreoffice:en:heldout --max-bytes 20000
    python benchmarks/bench_bytes.py ensemble --models smollm2-135m gemma3-270m --text libreoffice:de:heldout \
        --tune libreoffice:de:dev
    python benchmarks/bench_bytes.py boundary --model smollm2-135m --text libreoffice:en:heldout --prompts 200
    python benchmarks/bench_bytes.py speed --model smollm2-135m --text libreoffice:en:heldout --max-bytes 4000

``bpb`` scores a corpus at byte level (and, from the same forward passes, the canonical
tokenization) and saves every byte's log-prob under ``--out`` (default out/bytes), so that
``ensemble`` mixes saved scores without running a model again; weights tuned with
``--tune`` come from that slice's saved scores (a dev slice, never the reported one).
``boundary`` cuts held-out text at random byte offsets and compares the log-prob of the
next 10 bytes as is, with token healing and at byte level. ``speed`` times token-level
and byte-level scoring of the same bytes in one process, alternating, and prints the
median ratio.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tokengraft.assets import load_corpora, load_model, load_tokenizer
from tokengraft.bytelevel import ByteModel, ByteOptions, score_corpora
from tokengraft.bytelevel.boundary import SCHEMES, continuation_logprobs
from tokengraft.bytelevel.ensemble import bits_per_byte, mix_logprobs, tune_weights
from tokengraft.measure import EvalOptions, bits_per_byte as token_bits_per_byte


def saved(out: Path, model: str, text: str, max_bytes: int | None) -> Path:
    return out / f"{model.replace('/', '_')}--{text.replace(':', '_')}--{max_bytes or 'all'}.npz"


def cmd_bpb(args: argparse.Namespace) -> None:
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    options = EvalOptions(max_bytes=args.max_bytes)
    for spec in args.text:
        corpora = load_corpora([spec], max_bytes=args.max_bytes)
        (score,) = score_corpora(model, tokenizer, corpora, options, ByteOptions(threshold=args.threshold,
                                                                                 merge=not args.no_merge))
        path = saved(Path(args.out), args.model, spec, args.max_bytes)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, logprobs=score.byte_logprobs, summary=json.dumps(score.to_dict()))
        gain = 100 * (score.token_bpb - score.bpb) / score.token_bpb
        print(f"{args.model}  {spec}  bytes {score.bytes:,}  token BPB {score.token_bpb:.4f}  byte BPB {score.bpb:.4f}"
              f"  ({gain:.2f}% lower)  pruned {score.pruned_bits:.1f} bits  merged {score.merged_bits:.1f} bits"
              f"  run {score.evaluated:,} for {score.tokens:,} tokens  {score.seconds:.0f} s", flush=True)


def load_saved(out: Path, model: str, text: str, max_bytes: int | None) -> tuple[np.ndarray, dict]:
    data = np.load(saved(out, model, text, max_bytes))
    return data["logprobs"], json.loads(str(data["summary"]))


def cmd_ensemble(args: argparse.Namespace) -> None:
    out = Path(args.out)
    members = [load_saved(out, m, args.text, args.max_bytes) for m in args.models]
    rows = [(m, s["token_bpb"], bits_per_byte(lp)) for m, (lp, s) in zip(args.models, members)]
    weightings = {"equal": [1 / len(members)] * len(members)}
    if args.tune:
        dev = [load_saved(out, m, args.tune, args.max_bytes)[0] for m in args.models]
        weightings[f"tuned on {args.tune}"] = tune_weights(dev)
    for name, w in weightings.items():
        mixed = bits_per_byte(mix_logprobs([lp for lp, _ in members], w))
        rows.append((f"mixture {name} ({', '.join(f'{x:.3f}' for x in w)})", float("nan"), mixed))
    best = min(r[2] for r in rows[:len(members)])
    print(f"{args.text}, {len(members[0][0]):,} bytes")
    for name, token, byte in rows:
        tok = "" if math.isnan(token) else f"token {token:.4f}  "
        print(f"  {name:60s} {tok}byte {byte:.4f}  ({100 * (byte - best) / best:+.2f}% vs best single)")


def prompts(text: str, count: int, seed: int, context: int, target: int) -> list[tuple[bytes, bytes]]:
    """``count`` (prompt, next ``target`` bytes) pairs cut at random byte offsets of the corpus's documents;
    a prompt holds up to ``context`` bytes before the cut, starting after a newline where one is in reach."""
    docs = [d.text.encode("utf-8") for d in load_corpora([text])[0].documents]
    docs = [d for d in docs if len(d) > target + 16]
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        doc = rng.choice(docs)
        cut = rng.randrange(8, len(doc) - target)
        start = max(0, cut - context)
        newline = doc.find(b"\n", start, cut - 8)
        if start > 0 and newline >= 0:
            start = newline + 1
        out.append((doc[start:cut], doc[cut:cut + target]))
    return out


def cmd_boundary(args: argparse.Namespace) -> None:
    tokenizer, model = load_tokenizer(args.model), load_model(args.model).eval()
    pairs = prompts(args.text, args.prompts, args.seed, args.context, args.target)
    totals = {s: [] for s in SCHEMES}
    mid = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        bm = ByteModel(model, tokenizer, ByteOptions(threshold=args.threshold))
        for i, (prompt, target) in enumerate(pairs):
            got = continuation_logprobs(bm, prompt, target)
            for s in SCHEMES:
                totals[s].append(got[s])
            ids = bm.canonical(prompt + target)
            ends = set(np.cumsum([len(bm.vocab.tokens[t] or b"") for t in ids]).tolist())
            mid.append(len(prompt) not in ends)
            if (i + 1) % 20 == 0:
                logging.info("%d/%d prompts, %.0f s", i + 1, len(pairs), time.perf_counter() - t0)
    result = {"model": args.model, "text": args.text, "prompts": len(pairs), "target_bytes": args.target,
              "mid_token": int(sum(mid)), "seconds": time.perf_counter() - t0,
              "mean_logprob": {s: float(np.mean(v)) for s, v in totals.items()},
              "mean_logprob_mid_token": {s: float(np.mean([x for x, m in zip(v, mid) if m])) for s, v in totals.items()},
              "mean_logprob_at_boundary": {s: float(np.mean([x for x, m in zip(v, mid) if not m]))
                                           for s, v in totals.items()}}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**result, "per_prompt": totals}, indent=1) + "\n")


def cmd_speed(args: argparse.Namespace) -> None:
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    corpora = load_corpora([args.text], max_bytes=args.max_bytes)
    options = EvalOptions(max_bytes=args.max_bytes)
    token_s, byte_s = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        token = token_bits_per_byte(model, tokenizer, corpora, options)
        token_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        (score,) = score_corpora(model, tokenizer, corpora, options, ByteOptions(threshold=args.threshold))
        byte_s.append(time.perf_counter() - t)
    ratios = [b / t for b, t in zip(byte_s, token_s)]
    print(f"{args.model} on {args.text}: {score.bytes:,} bytes, {token.tokens:,} tokens, threads {torch.get_num_threads()}")
    print(f"  token-level  median {statistics.median(token_s):.2f} s  {score.bytes / statistics.median(token_s):,.0f} bytes/s"
          f"  (runs {', '.join(f'{x:.2f}' for x in token_s)})")
    print(f"  byte-level   median {statistics.median(byte_s):.2f} s  {score.bytes / statistics.median(byte_s):,.0f} bytes/s"
          f"  (runs {', '.join(f'{x:.2f}' for x in byte_s)}); {score.evaluated:,} tokenizations run")
    print(f"  byte-level / token-level time: median {statistics.median(ratios):.2f}x"
          f"  (runs {', '.join(f'{x:.2f}' for x in ratios)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/bytes", help="folder of saved per-byte scores")
    parser.add_argument("--threshold", type=float, default=ByteOptions.threshold)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bpb")
    p.add_argument("--model", required=True)
    p.add_argument("--text", nargs="+", required=True)
    p.add_argument("--max-bytes", type=int, default=20000)
    p.add_argument("--no-merge", action="store_true", help="exact kept set: no merging into the canonical tokens")
    p.set_defaults(func=cmd_bpb)
    p = sub.add_parser("ensemble")
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--tune", help="tune the weights on this slice's saved scores (a dev slice)")
    p.add_argument("--max-bytes", type=int, default=20000)
    p.set_defaults(func=cmd_ensemble)
    p = sub.add_parser("boundary")
    p.add_argument("--model", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--prompts", type=int, default=200)
    p.add_argument("--target", type=int, default=10)
    p.add_argument("--context", type=int, default=512, help="prompt bytes before the cut at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.set_defaults(func=cmd_boundary)
    p = sub.add_parser("speed")
    p.add_argument("--model", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--max-bytes", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=cmd_speed)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
