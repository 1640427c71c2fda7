"""``--mode fit``: fit the new rows to the base model with the body frozen, then train them.

Three phases share the training time (the wall-clock budget minus loading and writing):

1. **input rows** (``fit_input`` of the time): hidden-state matching against the base model
   at byte-aligned positions (:mod:`tokengraft.fit.hidden`);
2. **output rows** (``fit_output`` of the time): the body's final states on training text are
   cached once, then the rows are fitted to the next tokens there, many cheap passes with no
   backward through the body (:mod:`tokengraft.fit.output`);
3. the rest: ordinary next-token training of both embedding matrices (the trainer's loop,
   with its checkpoints, evaluation and ``--resume``).

A tied model is untied first: fitted output rows differ from the input rows. A resumed run
skips the phases (its checkpoint holds the fitted and trained rows).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import torch

from tokengraft.fit.hidden import Chunk, InputFitOptions, fit_input_rows
from tokengraft.fit.output import Head, OutputFitOptions, fit_output_rows
from tokengraft.fit.states import final_states
from tokengraft.heal import compat
from tokengraft.heal.data import AlignedStream, PackedStream
from tokengraft.heal.tokens import aligner, plain_encoder

logger = logging.getLogger(__name__)

# Of the output phase's time, this share collects final states; the rest fits the rows.
COLLECT_SHARE = 0.5
MAX_POSITIONS = 400_000  # cached states at most (float32: 0.9 GB at d = 576)
COLLECT_BATCH = 8        # rows per forward pass while collecting


def _aligned_batches(stream: AlignedStream, size: int) -> Iterator[tuple[list[list[int]], list[list[int]], list[list[Chunk]]]]:
    while True:
        rows = stream.next_batch(size)
        yield [r.student for r in rows], [r.teacher for r in rows], [r.chunks for r in rows]


def fit_inputs(model: Any, tokenizer: Any, teacher: Any, teacher_tok: Any, texts: list[str], options: Any,
               seconds: float, frozen: torch.Tensor | None) -> dict[str, Any]:
    """Phase 1: hidden-state matching of the input rows for ``seconds``."""
    stream = AlignedStream(texts, aligner(tokenizer, teacher_tok), compat.start_token_id(tokenizer),
                           compat.start_token_id(teacher_tok), options.fit_seq_len, 2 * options.fit_seq_len,
                           options.seed + 1)
    fit_options = InputFitOptions(layer=options.fit_layer, loss=options.fit_loss, lr=options.fit_lr)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()  # no dropout: the states must be comparable
    curve = fit_input_rows(model, teacher, _aligned_batches(stream, options.batch_size), fit_options,
                           deadline=t0 + seconds, frozen=frozen)
    model.train(was_training)
    done = time.perf_counter() - t0
    tail = curve[-5:] or [{"loss": float("nan")}]
    record = {"steps": len(curve), "seconds": round(done, 3), "tokens": sum(e["tokens"] for e in curve),
              "loss_first": curve[0]["loss"] if curve else None, "loss_last": sum(e["loss"] for e in tail) / len(tail),
              "curve": [{"step": e["step"], "loss": e["loss"]} for e in curve]}
    logger.info("input rows: %d hidden-state steps in %.0f s, loss %.4f -> %.4f", len(curve), done,
             record["loss_first"] or float("nan"), record["loss_last"])
    return record


def collect_states(model: Any, stream: PackedStream, seconds: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, d) final states and (N,) next tokens of packed training rows, for ``seconds``."""
    states, labels, t0, n = [], [], time.perf_counter(), 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        while (not states or time.perf_counter() - t0 < seconds) and n < MAX_POSITIONS:
            ids = stream.next_batch(COLLECT_BATCH).to(device)
            hidden = final_states(model, ids)[:, :-1]
            states.append(hidden.reshape(-1, hidden.shape[-1]).float())
            labels.append(ids[:, 1:].reshape(-1))
            n += labels[-1].numel()
    model.train(was_training)
    return torch.cat(states)[:MAX_POSITIONS], torch.cat(labels)[:MAX_POSITIONS]


def fit_outputs(model: Any, tokenizer: Any, texts: list[str], options: Any, seconds: float,
                device: torch.device, frozen: torch.Tensor | None = None) -> dict[str, Any]:
    """Phase 2: cache final states for part of ``seconds``, fit the output rows in the rest."""
    from tokengraft.lm.head import split_head

    head = split_head(model)
    if head is None:
        logger.warning("the model has no separable output head; the output rows are not fitted")
        return {"skipped": "no separable head"}
    t0 = time.perf_counter()
    stream = PackedStream(texts, plain_encoder(tokenizer), compat.start_token_id(tokenizer), options.seq_len,
                          options.seed + 2)
    hidden, labels = collect_states(model, stream, seconds * COLLECT_SHARE, device)
    collected = time.perf_counter() - t0
    weight = model.get_output_embeddings().weight
    fit = fit_output_rows(hidden, labels, weight.detach(), Head(head.bias, head.scale, head.softcap),
                          OutputFitOptions(lr=options.fit_output_lr, anchor=options.fit_anchor, seed=options.seed),
                          deadline=t0 + seconds, trainable=None if frozen is None else ~frozen)
    with torch.no_grad():
        weight.copy_(fit.rows.to(weight.dtype))
    logger.info("output rows: %d states cached in %.0f s, %d passes in %.0f s, held-out loss %.4f -> %.4f",
             hidden.shape[0], collected, fit.epochs, fit.seconds, fit.curve[0]["heldout"],
             min(c["heldout"] for c in fit.curve))
    return {"positions": int(hidden.shape[0]), "collect_seconds": round(collected, 3), "passes": fit.epochs,
            "fit_seconds": round(fit.seconds, 3), "curve": fit.curve}
