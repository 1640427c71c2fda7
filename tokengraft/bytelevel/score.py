"""Byte-level bits per byte of a corpus, with the canonical token-level figure beside it.

Each document is scored like the token-level meter does it (same start token, same
sliding windows over its canonical tokens), so the canonical tokenization's log-prob
comes out of the same forward passes: the token-level BPB of exactly the same bytes.
Within each window the alternative tokenizations are evaluated in rounds on top of the
window's cache; every one of them branches off a canonical token scored in that window.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from tokengraft.assets.corpus import Corpus
from tokengraft.bytelevel.model import ByteModel
from tokengraft.bytelevel.options import ByteScore
from tokengraft.errors import TokengraftError

log = logging.getLogger(__name__)

def score_corpus(bm: ByteModel, corpus: Corpus) -> ByteScore:
    """Byte-level and canonical BPB of every non-empty document of ``corpus``."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    parts: list[np.ndarray] = []
    canonical_nats = pruned = merged = 0.0
    tokens = evaluated = branches = documents = 0
    lead = len(bm.lead)
    for doc in tqdm(corpus.documents, desc=f"{corpus.name} (bytes)", unit="doc", disable=None, leave=False):
        text = doc.text.encode("utf-8")
        if not text:
            continue
        run = bm.run(bm.lead + text, final=True)
        lattice, chain = run.lattice, run.chain
        kept, _ = lattice.prefix_logmass()
        parts.append(np.diff(kept)[lead:])
        canonical_nats -= lattice.canonical_logprob
        pruned += lattice.pruned_bits()
        merged += lattice.merged_bits()
        tokens += len(chain) - 1
        evaluated += lattice.stats.evaluated
        branches += lattice.stats.branches
        documents += 1
    if not documents:
        raise TokengraftError(f"corpus {corpus.name} is empty: it has no text to score; check the spec or its files")
    logprobs = np.concatenate(parts)
    num_bytes = len(logprobs)
    bpb = -float(logprobs.sum()) / math.log(2) / num_bytes
    result = ByteScore(corpus.name, num_bytes, documents, bpb, canonical_nats / math.log(2) / num_bytes, tokens,
                       pruned, merged, evaluated, branches, time.perf_counter() - t0, logprobs)
    log.info("%s: byte-level %.4f BPB, canonical %.4f; %d tokenizations run (%d off the canonical one), "
             "pruned %.2f bits, merged %.2f", corpus.name, result.bpb, result.token_bpb, evaluated, branches, pruned,
             merged)
    return result


def score_corpora(model: Any, tokenizer: Any, corpora: list[Corpus], options: Any = None,
                  byte_options: Any = None) -> list[ByteScore]:
    """Score each corpus; ``options`` is an EvalOptions (context, stride, device, dtype, start, max_bytes)."""
    from tokengraft.measure.inputs import as_corpora, check_vocab_fits
    from tokengraft.measure.options import EvalOptions
    from tokengraft.measure.runtime import scoring

    options = options or EvalOptions()
    check_vocab_fits(model, tokenizer)
    corpora = as_corpora(corpora, options.max_bytes)
    with scoring(model, options) as device:
        bm = ByteModel(model, tokenizer, byte_options, start=options.start, device=device,
                       context=options.context, stride=options.stride)
        return [score_corpus(bm, c) for c in corpora]


def combine_scores(scores: list[ByteScore]) -> dict[str, Any]:
    """One summary over several corpora's scores (sums of bytes, bits, tokens and time), as a dict."""
    logprobs = np.concatenate([s.byte_logprobs for s in scores])
    num_bytes = len(logprobs)
    seconds = sum(s.seconds for s in scores)
    total = ByteScore("total", num_bytes, sum(s.documents for s in scores), -float(logprobs.sum()) / math.log(2) / num_bytes,
                      sum(s.token_bpb * s.bytes for s in scores) / num_bytes, sum(s.tokens for s in scores),
                      sum(s.pruned_bits for s in scores), sum(s.merged_bits for s in scores),
                      sum(s.evaluated for s in scores), sum(s.branches for s in scores), seconds)
    return total.to_dict()
