"""Everything a healing run holds before its first step: models, data, optimizer, devices.

Loading and wiring only; the loop lives in :mod:`tokengraft.heal.trainer`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.heal import compat, modes, sources
from tokengraft.heal.data import AlignedStream, PackedStream
from tokengraft.heal.options import HealOptions
from tokengraft.heal.tokens import aligner, plain_encoder

logger = logging.getLogger(__name__)

# ALM checks up front that both tokenizers rebuild the training text exactly, on at most
# this much of it, so that a bad teacher fails before training rather than hours into it.
ALM_CHECK_BYTES = 64 * 2**20
MIN_LR_SHARE = 0.1  # the cosine decay ends at this share of the peak learning rate


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
    precision = {"auto": "no" if cpu else "bf16", "fp32": "no", "bf16": "bf16"}[options.precision]
    if PartialState(cpu=cpu).num_processes == 1:
        # One process: let a later heal() in the same Python session choose another precision.
        AcceleratorState._reset_state()
    return Accelerator(cpu=cpu, mixed_precision=precision)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to MIN_LR_SHARE at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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


def build_run(options: HealOptions, accelerator: Any) -> Run:
    """Load and wire everything; ``options`` must be validated already."""
    torch.manual_seed(options.seed)
    # Cheap checks first, so that a bad option fails before any model is loaded.
    teacher_spec = (options.teacher or sources.default_teacher(options.model)) if options.mode == "alm" else None
    texts = [d.text for c in _texts(options.corpus, "training") for d in c.documents if d.text]
    eval_corpora = list(zip(options.eval, _texts(options.eval, "evaluation"))) if options.eval else []
    model, tokenizer = _load_student(options)
    frozen = None
    if options.only_new:
        frozen = sources.copied_rows(options.model, model.get_input_embeddings().weight.shape[0])
    model = modes.prepare(model, options.trains, frozen, options.lora_r, options.lora_alpha)
    model.train()
    trainable = sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values())
    optimizer = torch.optim.AdamW(modes.param_groups(model, options.weight_decay), lr=options.learning_rate)
    total = options.total_steps()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, options.warmup, total))
    start_student = compat.start_token_id(tokenizer)
    teacher = None
    if teacher_spec is not None:
        teacher, teacher_tok = _teacher(teacher_spec, accelerator.device)
        align = aligner(tokenizer, teacher_tok)
        _check_alignable(texts, align)
        stream: PackedStream | AlignedStream = AlignedStream(
            texts, align, start_student, compat.start_token_id(teacher_tok), options.seq_len, options.teacher_len,
            options.seed)
    else:
        stream = PackedStream(texts, plain_encoder(tokenizer), start_student, options.seq_len, options.seed)
    model, optimizer = accelerator.prepare(model, optimizer)
    if accelerator.is_main_process:
        logger.info("healing %s: mode %s, %d trainable parameters, %d steps, %d process(es) on %s",
                 options.model, options.mode, trainable, total, accelerator.num_processes, accelerator.device)
    return Run(options, accelerator, model, tokenizer, optimizer, scheduler, stream, eval_corpora,
               teacher=teacher, teacher_spec=teacher_spec, trainable=trainable)
