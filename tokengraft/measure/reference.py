"""The plain, obviously-correct bits-per-byte meter that the batched one is tested against.

One document and one window at a time, no padding, the model's own full forward and a
log_softmax over the whole vocabulary. Slow on purpose: nothing here is clever.
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from tokengraft.measure.bpb import Texts
from tokengraft.measure.inputs import as_corpora, check_vocab_fits, resolve_context
from tokengraft.measure.options import EvalOptions, EvalResult, combine, make_result
from tokengraft.measure.runtime import scoring
from tokengraft.lm.start import resolve_start_token


def document_nll_nats(model: Any, seq: list[int], context: int, stride: int, device: torch.device) -> float:
    """NLL (nats) of ``seq[1:]`` given ``seq[0]`` as the start token, window by window.

    The first window scores up to ``context`` tokens; each later one scores the next
    ``stride`` tokens and feeds the tokens before them (up to ``context`` in all) as context.
    """
    n = len(seq) - 1            # tokens to score: seq[1], ..., seq[n]
    nll = 0.0
    done = 0                    # tokens scored so far
    while done < n:
        end = min(n, done + (context if done == 0 else stride))
        begin = max(0, end - context)
        inputs = torch.tensor([seq[begin:end]], device=device)
        logprobs = torch.log_softmax(model(input_ids=inputs).logits[0].float(), dim=-1)
        positions = torch.arange(done, end)    # input position j predicts seq[j + 1]
        targets = torch.tensor(seq[done + 1:end + 1], device=device)
        nll -= logprobs[positions - begin, targets].sum().item()
        done = end
    return nll


def bits_per_byte_reference(model: Any, tokenizer: Any, texts_or_corpus: Texts,
                            options: EvalOptions | None = None) -> EvalResult:
    """Same contract and result as :func:`tokengraft.measure.bits_per_byte` (``batch_tokens`` unused)."""
    options = options or EvalOptions()
    check_vocab_fits(model, tokenizer)
    context, stride = resolve_context(model, options)
    start_token, start_id = resolve_start_token(tokenizer, options.start)
    results = []
    with scoring(model, options) as device:
        for corpus in as_corpora(texts_or_corpus, options.max_bytes):
            t0 = time.perf_counter()
            nll = 0.0
            tokens = num_bytes = documents = 0
            for doc in corpus.documents:
                ids = tokenizer(doc.text, add_special_tokens=False)["input_ids"] if doc.text else []
                if not ids:
                    continue
                nll += document_nll_nats(model, [start_id, *ids], context, stride, device)
                tokens += len(ids)
                num_bytes += len(doc.text.encode("utf-8"))
                documents += 1
            results.append(make_result(corpus.name, nll / math.log(2), tokens, num_bytes,
                                       time.perf_counter() - t0, documents, start_token))
    return combine(results, name=results[0].name if len(results) == 1 else "total")
