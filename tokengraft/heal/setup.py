"""Everything a healing run holds before its first step: models, data, optimizer, devices.

Loading and wiring only; the loop lives in :mod:`tokengraft.heal.trainer`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from tokengraft.errors import TokengraftError
from tokengraft.heal import compat, modes, reads, sources
from tokengraft.heal.budget import Clock
from tokengraft.heal.continuation import letter_edges
from tokengraft.heal.coverage import coverage_first_epoch
from tokengraft.heal.data import AlignedStream, PackedStream
from tokengraft.heal.options import HealOptions
from tokengraft.heal.row_adam import RowAdamW
from tokengraft.heal.shared_pieces import SharedPieces
from tokengraft.heal.sparse_rows import SparseRows
from tokengraft.heal.tokens import aligner, plain_encoder

logger = logging.getLogger(__name__)

# ALM checks up front that both tokenizers rebuild the training text exactly, on at most
# this much of it, so that a bad teacher fails before training rather than hours into it.
ALM_CHECK_BYTES = 64 * 2**20
MIN_LR_SHARE = 0.1  # the cosine decay ends at this share of the peak learning rate
# Under a wall-clock budget the warm-up also ends once this share of the training time is
# spent: a short CPU budget may allow fewer steps than ``--warmup``, and a run that never
# leaves its warm-up never trains at its learning rate.
WARMUP_BUDGET_SHARE = 0.1


def make_accelerator(options: HealOptions) -> Any:
    """An ``accelerate.Accelerator`` for the options: under ``accelerate launch`` it runs DDP."""
    try:
        from accelerate import Accelerator, PartialState
        from accelerate.state import AcceleratorState
    except ImportError:
        raise TokengraftError("healing needs accelerate; install it with: pip install 'tokengraft[heal]'") from None
    if options.device == "cuda" and not torch.cuda.is_available():
        raise TokengraftError("--device cuda was asked but torch sees no CUDA GPU here; pass --device cpu")
    cpu = options.device == "cpu" or not torch.cuda.is_available()
    precision = {"auto": _auto_precision(cpu), "fp32": "no", "bf16": "bf16"}[options.precision]
    if PartialState(cpu=cpu).num_processes == 1:
        # One process: let a later heal() in the same Python session choose another precision.
        AcceleratorState._reset_state()
    return Accelerator(cpu=cpu, mixed_precision=precision)


def _auto_precision(cpu: bool) -> str:
    """bf16 autocast where the device computes bfloat16 natively (GPUs that support it; CPUs with
    AVX512-BF16 or AMX: one thread of the SmolLM2-135M transplant trains at ~165 instead of ~107
    tokens/s on this project's EPYC cores), float32 where it would be emulated."""
    from tokengraft.lm.precision import compute_dtype

    return "bf16" if compute_dtype("auto", "cpu" if cpu else "cuda") == torch.bfloat16 else "no"


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to MIN_LR_SHARE at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return cosine((step - warmup) / max(1, total - warmup))


def cosine(progress: float) -> float:
    """Cosine decay from 1 at progress 0 to MIN_LR_SHARE at progress >= 1."""
    return MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def make_schedule(options: HealOptions, clock: Clock, first_step: int) -> Callable[[int], float]:
    """The LR factor of each step: over ``total_steps``, or under a wall-clock budget over the
    share of the training time spent (warm-up counted from ``first_step``, where this run's
    training starts: a run resumed under a budget warms up again and decays over its own budget).
    Under a budget the warm-up ends after ``warmup`` steps or WARMUP_BUDGET_SHARE of the
    training time, whichever comes first, and ramps with whichever of the two is further on."""
    total = options.total_steps()
    if options.budget is None:
        return lambda step: lr_factor(step, options.warmup, total)

    def factor(step: int) -> float:
        done, progress = step - first_step, clock.progress()
        if done < options.warmup and progress < WARMUP_BUDGET_SHARE:
            return max((done + 1) / (options.warmup + 1), progress / WARMUP_BUDGET_SHARE)
        return cosine(progress)

    return factor


@dataclass
class Run:
    options: HealOptions
    accelerator: Any
    model: Any                      # prepared (DDP-wrapped under accelerate launch)
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    stream: PackedStream | AlignedStream
    eval_corpora: list[tuple[str, Any]]   # (spec as given, Corpus): curves are keyed by the spec
    teacher: Any = None
    teacher_spec: str | None = None
    trainable: int = 0              # trainable parameters
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    eval_curve: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    tokens_seen: int = 0
    tokens_per_second: float = 0.0  # training throughput of this run (evaluation excluded)
    clock: Clock = field(default_factory=Clock)
    teacher_tokenizer: Any = None
    texts: list[str] = field(default_factory=list)  # the training documents
    frozen: tuple[torch.Tensor, torch.Tensor] | None = None  # --only-new: (input, output) rows kept
    fit_record: dict[str, Any] = field(default_factory=dict)  # what the fit phases did (fit mode)
    sparse: SparseRows | None = None  # --sparse-rows: keeps the rows a step does not use
    shared: SharedPieces | None = None  # --share-pieces: moves rows with their old-tokenizer pieces
    stopped_by_budget: bool = False  # training ended because --max-seconds was spent
    reads: torch.Tensor | None = None  # times each row's token was read (heal.json's rows_read, :mod:`.reads`)
    copied: torch.Tensor | None = None  # input rows the transplant copied (None: the model is no transplant)
    letters: tuple[torch.Tensor, torch.Tensor] | None = None  # --continuation-weight: tokens starting / ending
                                                              # with a letter (:mod:`.continuation`)


def _load_student(options: HealOptions) -> tuple[Any, Any]:
    model = compat.load_model(options.model, dtype=torch.float32)
    tokenizer = compat.load_tokenizer(options.model)
    rows = model.get_input_embeddings().weight.shape[0]
    largest = max(len(tokenizer) - 1, compat.max_token_id(tokenizer))
    if largest >= rows:
        raise TokengraftError(f"the tokenizer of {options.model} has ids up to {largest} but the model only {rows} "
                              "embedding rows; heal a transplant output folder")
    return model, tokenizer


def _texts(specs: list[str], what: str) -> list[Any]:
    corpora = compat.load_corpora(specs)
    for corpus in corpora:
        if corpus.num_bytes == 0:
            raise TokengraftError(f"{what} corpus {corpus.name} is empty: it has no text; check the spec or its files")
        if not any(d.text.strip() for d in corpus.documents):
            raise TokengraftError(f"{what} corpus {corpus.name} holds only whitespace ({corpus.num_bytes:,} bytes); "
                                  "check the spec or its files")
    return corpora


def _teacher(spec: str, device: torch.device) -> tuple[Any, Any]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    logger.info("ALM teacher: %s", spec)
    teacher = compat.load_model(spec, dtype=dtype).to(device).eval()
    teacher.requires_grad_(False)
    return teacher, compat.load_tokenizer(spec)


def _check_alignable(texts: list[str], align: Any) -> None:
    t0, used, batch = time.perf_counter(), 0, []
    for text in texts:
        batch.append(text)
        used += len(text.encode("utf-8"))
        if len(batch) == 64 or used >= ALM_CHECK_BYTES:
            align(batch)
            batch = []
        if used >= ALM_CHECK_BYTES:
            break
    if batch:
        align(batch)
    logger.info("both tokenizers rebuild %.1f MB of training text exactly (%.1f s)", used / 1e6,
                time.perf_counter() - t0)


def _shared_pieces(options: HealOptions, model: Any, tokenizer: Any, frozen: tuple[torch.Tensor, torch.Tensor] | None,
                   device: torch.device) -> SharedPieces | None:
    """--share-pieces: None for a model that is no transplant (no old pieces) or whose input matrix does not share."""
    info = sources.read_transplant(options.model)
    base = sources.base_model_spec(info) if info else None
    if base is None or not SharedPieces.shares(model):
        why = "is not a transplant (no old tokenizer)" if base is None else "has no trained, untied input matrix"
        logger.info("no shared piece changes: %s %s", options.model, why)
        return None
    t0 = time.perf_counter()
    pieces = compat.old_pieces(compat.load_tokenizer(base), tokenizer)
    model.to(device)  # the shadow is made where the matrix trains
    shared = SharedPieces.of(model, pieces, None if frozen is None else ~frozen[0])
    logger.info("shared piece changes: %d new tokens spelled by old pieces of %s (%.1f s)",
                sum(1 for p in pieces if p), base, time.perf_counter() - t0)
    return shared


def build_run(options: HealOptions, accelerator: Any, clock: Clock) -> Run:
    """Load and wire everything; ``options`` must be validated already."""
    torch.manual_seed(options.seed)
    # Cheap checks first, so that a bad option fails before any model is loaded.
    teacher_spec = (options.teacher or sources.default_teacher(options.model)) if options.uses_teacher else None
    texts = [d.text for c in _texts(options.corpus, "training") for d in c.documents if d.text]
    eval_corpora = list(zip(options.eval, _texts(options.eval, "evaluation"))) if options.eval else []
    model, tokenizer = _load_student(options)
    frozen = None
    if options.only_new:
        frozen = sources.copied_rows(options.model, model.get_input_embeddings().weight.shape[0])
    if options.mode == "fit":
        from tokengraft.fit.rows import untie

        untie(model)  # fitted output rows differ from the input rows
    model = modes.prepare(model, options.trains, frozen, options.lora_r, options.lora_alpha)
    if options.rows != "both":
        modes.train_one_matrix(model, options.rows)
    model.train()
    trainable = sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())
    groups = modes.param_groups(model, options.weight_decay)
    shared = _shared_pieces(options, model, tokenizer, frozen, accelerator.device) if options.share_pieces else None
    if shared is not None:
        groups.append({"params": [shared.shadow], "weight_decay": 0.0,
                       "lr": options.share_pieces * options.learning_rate})
    rows = [p for p in modes.embedding_params(modes.unwrap(model)) if p.requires_grad] if options.sparse_rows else []
    optimizer = RowAdamW(groups, lr=options.learning_rate, row_params=rows)
    total = options.total_steps()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_schedule(options, clock, 0))
    start_student = compat.start_token_id(tokenizer)
    teacher = teacher_tok = None
    if teacher_spec is not None:
        teacher, teacher_tok = _teacher(teacher_spec, accelerator.device)
        align = aligner(tokenizer, teacher_tok)
        if options.mode == "alm":  # fit mode aligns from its first second on: no separate check
            _check_alignable(texts, align)
    first_epoch = coverage_first_epoch(texts, plain_encoder(tokenizer)) if options.data_order == "coverage" else None
    if options.mode == "alm":
        stream: PackedStream | AlignedStream = AlignedStream(
            texts, align, start_student, compat.start_token_id(teacher_tok), options.seq_len, options.teacher_len,
            options.seed, first_epoch)
    else:
        stream = PackedStream(texts, plain_encoder(tokenizer), start_student, options.seq_len, options.seed,
                              first_epoch)
    embedding_rows = accelerator.unwrap_model(model).get_input_embeddings().weight.shape[0]
    row_optimizer = optimizer
    model, optimizer = accelerator.prepare(model, optimizer)
    if accelerator.is_main_process:
        steps = f"{total} steps" if total is not None else f"{options.budget:g} s"
        logger.info("healing %s: mode %s, %d trainable parameters, %s, %d process(es) on %s",
                 options.model, options.mode, trainable, steps, accelerator.num_processes, accelerator.device)
    return Run(options, accelerator, model, tokenizer, optimizer, scheduler, stream, eval_corpora,
               teacher=teacher, teacher_spec=teacher_spec, trainable=trainable, clock=clock,
               teacher_tokenizer=teacher_tok, texts=texts, frozen=frozen,
               sparse=(SparseRows.of(accelerator.unwrap_model(model), options.sparse_negatives, row_optimizer)
                       if options.sparse_rows else None), shared=shared,
               reads=torch.zeros(embedding_rows, dtype=torch.long),
               copied=reads.copied_inputs(options.model, embedding_rows),
               letters=(letter_edges(compat.token_bytes(tokenizer)) if options.continuation_weight != 1 else None))
