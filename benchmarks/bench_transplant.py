"""Zero-shot transplant benchmark: bits per byte of every init method on held-out text (a table, not a test).

    python3 benchmarks/bench_transplant.py --pair a                       # every method, 30,000 bytes per corpus
    python3 benchmarks/bench_transplant.py --pair b --methods fvt,mean,omp   # omp at k=8 (the pair's default)
    python3 benchmarks/bench_transplant.py --pair c --methods fvt,mean --json out/bench/pair-c.json
    python3 benchmarks/bench_transplant.py --pair b --methods omp --option omp:k=64

Pairs (base model -> new tokenizer): (a) smollm2-135m -> out/tok-fr-bpe32k, (b) smollm2-135m ->
gemma3-270m's tokenizer with gemma3-270m as donor, (c) smollm2-135m -> out/tok-fr-superbpe32k,
each scored on the first ``--max-bytes`` of libreoffice fr and en held-out text; (d) gemma3-270m
(a base with 262k ids) -> the 32k German BPE, scored on de and en held-out text.

Every method runs in a fresh subprocess of this script (``--one METHOD``) so that its peak RSS
(ru_maxrss, per process) is its own. The original model with its own tokenizer is scored once
per pair (``--one original``) on the same bytes; ratio = method BPB / original BPB.
Columns: tok/B = tokens per byte; time = seconds in ``transplant_model`` after loading
(auxiliary vectors computed there are included, donor loading is not, as in
``tokengraft transplant``); RSS load = peak after loading the model, tokenizers and inputs;
RSS peak = peak at the end of the transplant (before scoring); aux = whether auxiliary
vectors were computed or read from tokengraft's cache (``--cold-aux`` forces computing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 30_000          # per eval corpus; a whole pair-a run stays within ~15 min on 2 cores
DEFAULT_CORPUS_BYTES = 1_000_000    # target text for focus / wechsel (libreoffice:fr:train, first bytes)
AUX_EMBEDDER = "minilm-l6"          # the embedder of methods that read one (tokenadapt, graft, omp without a donor)
OUT_DIR = Path("out/bench")


@dataclass(frozen=True)
class Pair:
    name: str
    model: str
    tokenizer: str
    evals: tuple[str, ...]
    corpus: str                                  # target-language text for focus / wechsel
    donor: str | None = None                     # offered to every method; the input plan decides who reads it
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method defaults of this pair


PAIRS = {
    "a": Pair("a", "smollm2-135m", "out/tok-fr-bpe32k", ("libreoffice:fr:heldout", "libreoffice:en:heldout"),
              "libreoffice:fr:train"),
    # OMP over 216k Gemma tokens at the reference k=64 takes hours on 2 CPU cores; k=8 by default here
    "b": Pair("b", "smollm2-135m", "gemma3-270m", ("libreoffice:en:heldout", "libreoffice:fr:heldout"),
              "libreoffice:fr:train", donor="gemma3-270m", options={"omp": {"k": 8}}),
    "c": Pair("c", "smollm2-135m", "out/tok-fr-superbpe32k", ("libreoffice:fr:heldout", "libreoffice:en:heldout"),
              "libreoffice:fr:train"),
    # Gemma-3-270M as the *base*: 262k multilingual SentencePiece -> a 32k German byte-level BPE
    "d": Pair("d", "gemma3-270m", "out/tok-de-bpe32k", ("libreoffice:de:heldout", "libreoffice:en:heldout"),
              "libreoffice:de:train"),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def method_options(pair: Pair, method: str, overrides: list[str]) -> dict[str, Any]:
    """The pair's defaults for ``method`` with ``--option METHOD:KEY=VALUE`` applied."""
    opts = dict(pair.options.get(method, {}))
    for item in overrides:
        name, _, assignment = item.partition(":")
        key, _, value = assignment.partition("=")
        if not key or not value:
            raise SystemExit(f"--option {item!r}: expected METHOD:KEY=VALUE, e.g. omp:k=8")
        if name == method:
            opts[key] = parse_value(value)
    return opts


# --- one method in this process ----------------------------------------------------------

def eval_corpora(pair: Pair, max_bytes: int) -> list[Any]:
    from tokengraft.assets import load_corpora

    return load_corpora(list(pair.evals), max_bytes=max_bytes)


def score(model: Any, tokenizer: Any, corpora: list[Any]) -> dict[str, dict[str, float]]:
    from tokengraft.measure import EvalOptions, bits_per_byte

    total = bits_per_byte(model, tokenizer, corpora, EvalOptions())  # corpora are already cut to max_bytes
    parts = total.parts or [total]
    return {p.name: {"bpb": p.bpb, "tokens_per_byte": p.tokens_per_byte, "bytes": p.bytes, "tokens": p.tokens,
                     "eval_seconds": p.seconds} for p in parts}


def run_original(pair: Pair, args: argparse.Namespace) -> dict[str, Any]:
    from tokengraft.assets import load_model, load_tokenizer

    model, tok = load_model(pair.model), load_tokenizer(pair.model)
    rss_load = peak_rss_mb()
    return {"status": "ok", "rss_load_mb": rss_load, "rss_peak_mb": rss_load,
            "model_mb": model_mb(model), "evals": score(model, tok, eval_corpora(pair, args.max_bytes))}


def model_mb(model: Any) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def plan(pair: Pair, name: str, opts: dict[str, Any], args: argparse.Namespace) -> tuple[Any, Any]:
    """The CLI's own input plan for ``name`` on this pair (donor, embedder and corpus offered, the
    plan takes what the method reads), the corpus capped at ``--corpus-bytes``."""
    import dataclasses

    from tokengraft.transplant.options import TransplantOptions
    from tokengraft.transplant.plan import plan_transplant

    options = TransplantOptions(pair.model, pair.tokenizer, name, donor=pair.donor, aux=AUX_EMBEDDER,
                                corpus=pair.corpus, method_options=opts)
    planned = plan_transplant(options)
    if planned.reads_corpus and args.corpus_bytes:
        planned = dataclasses.replace(planned, corpus_bytes=min(planned.corpus_bytes or args.corpus_bytes,
                                                                args.corpus_bytes))
    return options, planned


def run_method(pair: Pair, name: str, args: argparse.Namespace) -> dict[str, Any]:
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.assets.cache import cache_dir
    from tokengraft.errors import TokengraftError
    from tokengraft.transplant.core import transplant_model
    from tokengraft.transplant.methods.base import DONOR
    from tokengraft.transplant.run import load_inputs

    opts = method_options(pair, name, args.option)
    try:  # the CLI's own check, before minutes of loading
        options, planned = plan(pair, name, opts, args)
    except TokengraftError as exc:
        return {"status": "skipped", "reason": str(exc), "options": opts}
    model = load_model(pair.model)
    old_tok, new_tok = load_tokenizer(pair.model), load_tokenizer(pair.tokenizer)
    inputs = load_inputs(planned, options, new_tok)
    rss_load = peak_rss_mb()
    aux_dir = cache_dir("aux")
    before = set(os.listdir(aux_dir)) if aux_dir.exists() else set()
    start = time.perf_counter()
    model, new_tok, diag = transplant_model(model, old_tok, new_tok, plan=planned, inputs=inputs,
                                            seed=args.seed, copy_tokenizer=False)
    seconds = time.perf_counter() - start
    rss_peak = peak_rss_mb()
    fresh = (set(os.listdir(aux_dir)) if aux_dir.exists() else set()) - before
    uses_aux = planned.space not in (None, DONOR)
    s = diag.summary
    return {
        "status": "ok", "options": opts, "transplant_seconds": seconds, "rss_load_mb": rss_load,
        "rss_peak_mb": rss_peak, "model_mb": model_mb(model),
        "aux": ("computed" if fresh or args.cold_aux else "cached") if uses_aux else "-",
        "new_vocab": s.new_vocab, "copied_share": s.copied_share, "fallback_share": s.fallback_share,
        "residual_median": s.residual_median, "evals": score(model, new_tok, eval_corpora(pair, args.max_bytes)),
    }


def one(args: argparse.Namespace) -> None:
    pair = PAIRS[args.pair]
    from tokengraft.errors import TokengraftError

    try:
        result = run_original(pair, args) if args.one == "original" else run_method(pair, args.one, args)
    except TokengraftError as exc:
        result = {"status": "failed", "reason": str(exc)}
    Path(args.json).write_text(json.dumps(result, indent=1))


# --- the parent: one subprocess per method -----------------------------------------------

def child_env(args: argparse.Namespace, scratch: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if args.cold_aux:
        # a cache root whose aux folder is empty and whose other folders are the real ones
        from tokengraft.assets.cache import cache_dir

        root = scratch / "cache"
        root.mkdir(exist_ok=True)
        for entry in cache_dir().iterdir():
            if entry.name != "aux" and not (root / entry.name).exists():
                (root / entry.name).symlink_to(entry)
        env["TOKENGRAFT_CACHE"] = str(root)
    return env


def spawn(name: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Run ``--one name`` in a fresh process; a crash becomes a row with the last line of its log."""
    out, log = scratch / f"{name}.json", OUT_DIR / "logs" / f"pair-{args.pair}-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--pair", args.pair, "--one", name, "--json", str(out),
           "--max-bytes", str(args.max_bytes), "--corpus-bytes", str(args.corpus_bytes), "--seed", str(args.seed)]
    cmd += [x for item in args.option for x in ("--option", item)] + (["--cold-aux"] if args.cold_aux else [])
    if args.cold_aux:
        for stale in (scratch / "cache" / "aux").glob("*"):
            stale.unlink()
    start = time.perf_counter()
    with log.open("w") as handle:
        try:
            proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=child_env(args, scratch),
                                  timeout=args.timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    wall = time.perf_counter() - start
    if out.exists():
        result = json.loads(out.read_text())
    else:
        result = {"status": "failed", "reason": failure_reason(code, log, args.timeout)}
    if name != "original":
        result.setdefault("options", method_options(PAIRS[args.pair], name, args.option))
    result.update(method=name, wall_seconds=wall, log=str(log))
    print(f"  {name}: {result['status']} in {wall:.0f} s"
          + (f" ({result['reason']})" if result.get("reason") else ""), file=sys.stderr, flush=True)
    return result


def failure_reason(code: int | None, log: Path, timeout: int) -> str:
    """One line: the timeout, the signal, or the exception line of the child's traceback."""
    if code is None:
        return f"timed out after {timeout} s"
    if code < 0:
        return f"killed by signal {-code}"
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    errors = [x for x in lines if "Error" in x or x.startswith("error")]
    return (errors or [f"exit {code}"])[-1][:300]


def fmt(x: Any, spec: str) -> str:
    return "-" if x is None or x != x else format(x, spec)


def table(pair: Pair, args: argparse.Namespace, original: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    evals = [e.split(":")[1] for e in pair.evals]
    head = ["method", "options"] + [f"{e} {c}" for e in evals for c in ("BPB", "ratio", "tok/B")]
    head += ["time s", "RSS load MB", "RSS peak MB", "aux", "copied", "status"]
    model = original.get("model_mb")
    lines = [f"### pair {pair.name}: {pair.model} -> {pair.tokenizer}"
             + (f" (donor {pair.donor})" if pair.donor else ""),
             "",
             f"{args.max_bytes:,} bytes of each of {', '.join(pair.evals)}; focus/wechsel corpus: first "
             f"{args.corpus_bytes:,} bytes of {pair.corpus}; seed {args.seed}; model weights "
             f"{fmt(model, ',.0f')} MB float32; {os.cpu_count()} CPUs (shared)",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = original.get("evals", {})
    for r in [dict(original, method="original (own tokenizer)")] + rows:
        cells = [r["method"], ",".join(f"{k}={v}" for k, v in (r.get("options") or {}).items()) or "-"]
        for spec in pair.evals:
            got, ref = r.get("evals", {}).get(spec), base.get(spec)
            ratio = got["bpb"] / ref["bpb"] if got and ref else None
            cells += [fmt(got and got["bpb"], ".4f"), fmt(ratio, ".3f"), fmt(got and got["tokens_per_byte"], ".4f")]
        cells += [fmt(r.get("transplant_seconds"), ".1f"), fmt(r.get("rss_load_mb"), ",.0f"),
                  fmt(r.get("rss_peak_mb"), ",.0f"), r.get("aux", "-"), fmt(r.get("copied_share"), ".1%"),
                  r["status"] + (f": {r['reason']}" if r.get("reason") else "")]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", choices=sorted(PAIRS), required=True)
    parser.add_argument("--methods", default=None, help="comma-separated names (default: every registered method)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="bytes scored per eval corpus")
    parser.add_argument("--corpus-bytes", type=int, default=DEFAULT_CORPUS_BYTES,
                        help="bytes of target text for focus/wechsel (0: the whole corpus)")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="a method option, e.g. omp:k=8 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per method subprocess")
    parser.add_argument("--cold-aux", action="store_true", help="compute auxiliary vectors, never read the cache")
    parser.add_argument("--json", default=None, help="result file (default out/bench/transplant-pair-P.json)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)
    import tokengraft.transplant.methods  # noqa: F401  registers every method
    from tokengraft.transplant.methods.base import METHODS

    pair = PAIRS[args.pair]
    names = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    out = Path(args.json or OUT_DIR / f"transplant-pair-{pair.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-transplant-") as tmp:
        scratch = Path(tmp)
        print(f"pair {pair.name}: original, then {', '.join(names)}", file=sys.stderr, flush=True)
        original = spawn("original", args, scratch)
        rows: list[dict[str, Any]] = []
        for name in names:  # the record is rewritten after each method, so a stopped run keeps what it has
            rows.append(spawn(name, args, scratch))
            write_record(out, pair, args, original, rows, complete=len(rows) == len(names))
        if not names:
            write_record(out, pair, args, original, rows, complete=True)
    print(table(pair, args, original, rows))
    print(f"\nwrote {out}", file=sys.stderr)


def write_record(out: Path, pair: Pair, args: argparse.Namespace, original: dict[str, Any],
                 rows: list[dict[str, Any]], complete: bool) -> None:
    record = {"pair": pair.__dict__, "max_bytes": args.max_bytes, "corpus_bytes": args.corpus_bytes,
              "seed": args.seed, "cold_aux": args.cold_aux, "complete": complete, "original": original,
              "methods": rows, "table": table(pair, args, original, rows)}
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(out)


if __name__ == "__main__":
    main()
