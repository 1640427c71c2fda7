"""The batched bits-per-byte meter.

Bits per byte stays comparable when the vocabulary changes, which per-token perplexity
does not: BPB = total NLL in bits / UTF-8 bytes of exactly the text that was scored.
Every document is scored on its own, starting from one start token (see
:mod:`tokengraft.lm.start`); documents longer than the context slide a window whose
overlap is context only, so every token is scored exactly once. Windows are sorted by
length into batches under a token budget, so padding wastes little compute; the model
runs to hidden states and the output head only at scored positions (see ``scorer``).
:func:`tokengraft.measure.reference.bits_per_byte_reference` is the plain version it is tested against.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from tokengraft.assets.corpus import Corpus
from tokengraft.errors import TokengraftError
from tokengraft.measure.inputs import (as_corpora, check_vocab_fits, document_chunks, resolve_batch_tokens,
                                       resolve_context, tokenize_documents)
from tokengraft.measure.options import EvalOptions, EvalResult, combine, make_result
from tokengraft.measure.runtime import scoring
from tokengraft.measure.scorer import Scorer, build_batch
from tokengraft.lm.start import resolve_start_token
from tokengraft.measure.windows import plan_batches, sliding_windows

logger = logging.getLogger(__name__)

Texts = str | Corpus | Sequence[str] | Sequence[Corpus]

# Documents are tokenized and scored about this many characters at a time: on a GPU the
# next chunk is tokenized while the batches queued from the last one still run, and a
# chunk holds hundreds of documents, enough for length-sorting to leave little padding.
CHUNK_BYTES = 1 << 20


def bits_per_byte(model: Any, tokenizer: Any, texts_or_corpus: Texts, options: EvalOptions | None = None) -> EvalResult:
    """Bits per byte of a causal LM on texts; ``parts`` has one result per corpus.

    >>> r = bits_per_byte(model, tokenizer, ["Hello world.", "Bonjour."])  # doctest: +SKIP
    >>> r.bpb, r.tokens, r.bytes                                            # doctest: +SKIP
    """
    options = options or EvalOptions()
    options.validate()
    check_vocab_fits(model, tokenizer)
    context, stride = resolve_context(model, options)
    start_token, start_id = resolve_start_token(tokenizer, options.start)
    corpora = as_corpora(texts_or_corpus, options.max_bytes)
    with scoring(model, options) as device:
        budget = resolve_batch_tokens(options, device.type)
        logger.info("scoring %d corpora: context %d, stride %d, %d tokens a batch, documents start with %s (id %d)",
                 len(corpora), context, stride, budget, start_token, start_id)
        scorer = Scorer(model, device)
        results = [_score_corpus(scorer, tokenizer, c, (start_token, start_id), context, stride, budget) for c in corpora]
    logger.debug("scored through the %s path", scorer.path)
    return combine(results, name=results[0].name if len(results) == 1 else "total")


def _score_corpus(scorer: Scorer, tokenizer: Any, corpus: Corpus, start: tuple[str, int],
                  context: int, stride: int, batch_tokens: int) -> EvalResult:
    t0 = time.perf_counter()
    chunks: list[torch.Tensor] = []  # each chunk's per-document NLL, on the device: no host sync per batch
    ids: list[str] = []
    sizes: list[int] = []
    tokens = num_bytes = documents = 0
    tokenize_seconds = 0.0
    progress = tqdm(total=sum(len(d.text) for d in corpus.documents), desc=corpus.name, unit="char",
                    unit_scale=True, disable=None, leave=False)
    for i, docs in enumerate(document_chunks(corpus.documents, CHUNK_BYTES)):
        t = time.perf_counter()
        data = tokenize_documents(tokenizer, corpus.name, docs, start[1], check_roundtrip=i == 0)
        tokenize_seconds += time.perf_counter() - t
        chunks.append(_score_sequences(scorer, data.sequences, context, stride, batch_tokens))
        ids += data.ids
        sizes += data.sizes
        tokens, num_bytes, documents = tokens + data.num_tokens, num_bytes + data.num_bytes, documents + data.documents
        progress.update(sum(len(d.text) for d in docs))
    progress.close()
    if not documents:
        raise TokengraftError(f"corpus {corpus.name} is empty: it has no text to score; check the spec or its files")
    bits = (torch.cat(chunks) / math.log(2)).tolist()
    return make_result(corpus.name, math.fsum(bits), tokens, num_bytes, time.perf_counter() - t0, documents,
                       start_token=start[0], tokenize_seconds=tokenize_seconds,
                       document_ids=ids, document_bytes=sizes, document_bits=bits)


def _score_sequences(scorer: Scorer, sequences: list[torch.Tensor], context: int, stride: int,
                     batch_tokens: int) -> torch.Tensor:
    """NLL (nats) of each start-prefixed sequence: a (len(sequences),) float64 tensor on the device."""
    rows = [(s, seq, w) for s, seq in enumerate(sequences) for w in sliding_windows(len(seq) - 1, context, stride)]
    totals = torch.zeros(len(sequences), dtype=torch.float64, device=scorer.device)
    for idx in plan_batches([w.end - w.begin for *_, w in rows], batch_tokens):
        picked = [rows[i] for i in idx]
        # build_batch scores each row's labels in row order, so label j belongs to the row its count says
        owner = torch.repeat_interleave(torch.tensor([s for s, *_ in picked]),
                                        torch.tensor([w.end - w.score_from for *_, w in picked]))
        nll = scorer.nll(build_batch([(seq, w) for _, seq, w in picked]))
        totals.index_add_(0, owner.to(scorer.device), nll.double())
    return totals
