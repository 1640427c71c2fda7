"""``tokengraft eval --bytes``: byte-level BPB of one model, or of a byte-level mixture of several.

Kept apart from ``cli/eval.py`` so that eval's own flags stay as they are: ``eval.py``
registers the flags below and hands the run over here when ``--bytes`` is given (or
several ``--model``).
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from typing import Any

log = logging.getLogger(__name__)

EPILOG = """byte level (--bytes):
  tokengraft eval --bytes --model smollm2-135m --text libreoffice:en:heldout --max-bytes 20000
  tokengraft eval --bytes --model smollm2-135m --model gemma3-270m --weights 0.3 0.7 --text libreoffice:de:heldout
  The byte-level BPB sums over every tokenization of the text (up to --byte-threshold pruning), shown beside the
  canonical token-level BPB of the same bytes. Several --model: their byte-level mixture (--weights, equal by
  default); in --json, total.bpb is what was scored (the mixture), each member's figures under "members".
"""


def register_flags(p: argparse.ArgumentParser) -> None:
    """Add the byte-level flags to eval's parser."""
    from tokengraft.bytelevel.options import ByteOptions
    from tokengraft.cli.flags import add_option_flags

    p.add_argument("--bytes", action="store_true",
                   help="score the byte-level model (all tokenizations) beside the canonical token-level BPB")
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="mixture weights, one per --model (default: equal); needs --bytes")
    add_option_flags(p, ByteOptions, only={"threshold"}, flags={"threshold": "--byte-threshold"})


def byte_options(args: argparse.Namespace) -> Any:
    from tokengraft.bytelevel.options import ByteOptions

    return ByteOptions(threshold=args.threshold)


def run_bytes(args: argparse.Namespace, options: Any) -> int:
    """Score every --model at byte level on every corpus, then their mixture; print and write JSON."""
    import gc

    import torch

    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.bytelevel.ensemble import check_weights
    from tokengraft.bytelevel.score import score_corpora
    from tokengraft.errors import TokengraftError
    from tokengraft.measure.runtime import resolve_device

    specs = list(args.model)
    tokenizers = list(args.tokenizer or [])
    if tokenizers and len(tokenizers) != len(specs):
        raise TokengraftError(f"{len(tokenizers)} --tokenizer for {len(specs)} --model; give one per model or none")
    weights = check_weights(args.weights, len(specs))
    resolve_device(options.device)
    corpora = load_corpora(args.text, max_bytes=options.max_bytes)
    bopts = byte_options(args)
    members = []
    for i, spec in enumerate(specs):
        tokenizer = load_tokenizer(tokenizers[i] if tokenizers else spec)
        model = load_model(spec, dtype=getattr(torch, options.dtype), device=options.device)
        members.append(score_corpora(model, tokenizer, corpora, options, bopts))
        del model
        gc.collect()
    report = build_report(specs, weights, members)
    print(format_report(report))
    if args.json:
        meta = {"model": specs, "tokenizer": tokenizers or specs, "bytes": True,
                "options": {**asdict(options), **asdict(bopts)}}
        write_json(args.json, {**meta, **report})
        log.info("wrote %s", args.json)
    return 0


def write_json(path: str, data: dict[str, Any]) -> None:
    import json
    from pathlib import Path

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)


def build_report(specs: list[str], weights: list[float], members: list[list[Any]]) -> dict[str, Any]:
    """``total`` and ``corpora`` of what was scored (the mixture when several), ``members`` beside them."""
    import numpy as np

    from tokengraft.bytelevel.ensemble import bits_per_byte, mix_logprobs
    from tokengraft.bytelevel.score import combine_scores
    from tokengraft.errors import TokengraftError

    corpora = []
    for c, first in enumerate(members[0]):
        parts = [m[c] for m in members]
        if len({p.bytes for p in parts}) != 1:
            raise TokengraftError(f"corpus {first.name}: the models scored different bytes; mix only models that "
                                  "spell every document")
        mixed = mix_logprobs([p.byte_logprobs for p in parts], weights) if len(parts) > 1 else parts[0].byte_logprobs
        corpora.append({"name": first.name, "bytes": first.bytes, "documents": first.documents,
                        "bpb": bits_per_byte(mixed), "logprobs": mixed})
    everything = np.concatenate([c.pop("logprobs") for c in corpora])
    total = {"name": "total", "bytes": len(everything), "documents": sum(c["documents"] for c in corpora),
             "bpb": bits_per_byte(everything)}
    if len(members) == 1:
        single = combine_scores(members[0])
        total.update(token_bpb=single["token_bpb"], pruned_bits=single["pruned_bits"], seconds=single["seconds"])
        for c, s in zip(corpora, members[0]):
            c.update(token_bpb=s.token_bpb, pruned_bits=s.pruned_bits, seconds=s.seconds)
    return {"weights": weights, "total": total, "corpora": corpora,
            "members": [{"model": spec, "weight": w, "total": combine_scores(m), "corpora": [s.to_dict() for s in m]}
                        for spec, w, m in zip(specs, weights, members)]}


def format_report(report: dict[str, Any]) -> str:
    """One row per member and corpus, then the mixture's rows when there are several members."""
    rows = [["model", "corpus", "bytes", "token BPB", "byte BPB", "pruned bits", "seconds", "bytes/s"]]
    for m in report["members"]:
        for s in m["corpora"] + ([m["total"]] if len(m["corpora"]) > 1 else []):
            rows.append([m["model"], s["name"], f"{s['bytes']:,}", f"{s['token_bpb']:.4f}", f"{s['bpb']:.4f}",
                         f"{s['pruned_bits']:.2f}", f"{s['seconds']:.1f}", f"{s['bytes_per_second']:,.0f}"])
    if len(report["members"]) > 1:
        name = "mixture " + "/".join(f"{w:.2f}" for w in report["weights"])
        for s in report["corpora"] + ([report["total"]] if len(report["corpora"]) > 1 else []):
            rows.append([name, s["name"], f"{s['bytes']:,}", "-", f"{s['bpb']:.4f}", "-", "-", "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)
