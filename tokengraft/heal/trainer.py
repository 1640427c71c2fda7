"""``heal(options)``: the training loop, evaluation, checkpoints and the output folder.

Every process builds the same global batch from the same seeded stream and trains on its
own slice, so the data order, and with it a resumed run, does not depend on the number
of processes; losses are normalised by global counts (see :mod:`tokengraft.heal.steps`).
"""
from __future__ import annotations

import contextlib
import logging
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from tokengraft.assets.outputs import check_output_dir, output_dir
from tokengraft.assets.tokenizer_checks import verify_saved_tokenizer
from tokengraft.errors import TokengraftError
from tokengraft.heal import checkpoint, compat, modes, reads, report, sources
from tokengraft.heal.losses import collate_alm
from tokengraft.heal.options import HealOptions, HealResult
from tokengraft.heal.budget import Clock
from tokengraft.heal.continuation import target_weights
from tokengraft.heal.frozen import FrozenLinears
from tokengraft.heal.setup import Run, build_run, make_accelerator, make_schedule
from tokengraft.heal.steps import Counts, alm_micro, lm_micro, step_losses, teacher_chunk_logps

logger = logging.getLogger(__name__)


def heal(options: HealOptions) -> HealResult:
    """Train a (transplanted) model on text; write the healed model folder and its record.

    >>> heal(HealOptions(model="out/fr", corpus=["libreoffice:fr:train"], steps=100))  # doctest: +SKIP
    """
    clock = Clock(options.budget)
    if options.budget is not None:
        report.preload()  # seconds of imports, paid now rather than when the budget is nearly spent
    accelerator = make_accelerator(options)
    options.validate(accelerator.num_processes)
    out, root = options.out_dir(), options.checkpoint_dir()
    _check_paths(options, out, root)
    run = build_run(options, accelerator, clock)
    if options.resume:
        _restore(run, checkpoint.checkpoints(root)[-1])
    elif options.mode == "fit":
        _fit_phases(run)
    t0 = time.perf_counter()
    train_seconds = _train(run, root)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_output(run, out, time.perf_counter() - t0, train_seconds)
        if not run.stopped_by_budget:
            shutil.rmtree(root, ignore_errors=True)  # the finished folder supersedes them
    accelerator.wait_for_everyone()
    return HealResult(out=out, steps=run.step, tokens_seen=run.tokens_seen,
                      final_loss=run.loss_curve[-1]["loss"] if run.loss_curve else float("nan"),
                      loss_curve=run.loss_curve, eval_curve=run.eval_curve,
                      tokens_per_second=run.tokens_per_second, peak_memory_bytes=_peak_memory(run),
                      seconds=time.perf_counter() - t0, budget_seconds=clock.used(),
                      stopped_by_budget=run.stopped_by_budget)


def _check_paths(options: HealOptions, out: Path, root: Path) -> None:
    check_output_dir(out, overwrite=options.overwrite, inputs={"input model": options.model, "teacher": options.teacher})
    checkpoint.check_resume(root, options.resume)


def _fingerprint(options: HealOptions) -> dict[str, Any]:
    # What must not change between a run and its resumption for the result to be the same.
    keep = ("model", "corpus", "mode", "teacher", "seq_len", "batch_size", "grad_accum", "lr", "warmup",
            "weight_decay", "max_grad_norm", "tau", "alm_lm_weight", "alm_params", "only_new", "sparse_rows",
            "sparse_negatives", "share_pieces", "data_order", "rows", "lora_r", "lora_alpha", "seed", "fit_input",
            "fit_output", "fit_layer", "fit_loss", "fit_lr", "fit_output_lr", "fit_anchor", "fit_seq_len")
    data = {k: getattr(options, k) for k in keep}
    data["total_steps"] = options.total_steps()
    return data


def _payload(run: Run) -> dict[str, Any]:
    from accelerate.utils import gather_object

    return {
        "trainable": modes.trainable_state(run.accelerator.unwrap_model(run.model)),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": gather_object([checkpoint.rng_state()]),  # one per process, in process order
        "data": run.stream.state_dict(),
        "step": run.step,
        "tokens_seen": run.tokens_seen,
        "loss_curve": run.loss_curve,
        "eval_curve": run.eval_curve,
        "fit": run.fit_record,
        "reads": run.reads,
        "fingerprint": _fingerprint(run.options),
    }


def _restore(run: Run, path: Path) -> None:
    state = checkpoint.load(path)
    if state.get("fingerprint") != _fingerprint(run.options):
        changed = sorted(k for k, v in _fingerprint(run.options).items() if state.get("fingerprint", {}).get(k) != v)
        raise TokengraftError(f"checkpoint {path} was made with other options ({', '.join(changed)}); "
                              "resume with the options of the interrupted run")
    modes.load_trainable_state(run.accelerator.unwrap_model(run.model), state["trainable"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    if len(rng) != run.accelerator.num_processes:
        raise TokengraftError(f"checkpoint {path} was made with {len(rng)} processes; resume with as many")
    checkpoint.set_rng_state(rng[run.accelerator.process_index])
    run.stream.load_state_dict(state["data"])
    run.step, run.tokens_seen = int(state["step"]), int(state["tokens_seen"])
    run.loss_curve, run.eval_curve = list(state["loss_curve"]), list(state["eval_curve"])
    run.fit_record = dict(state.get("fit") or {})
    if state.get("reads") is not None:  # checkpoints before rows_read have none: count from here on
        run.reads = state["reads"]
    if run.options.budget is not None:
        # a new budget: a fresh warm-up and decay over it, from the restored weights and moments
        schedule = make_schedule(run.options, run.clock, run.step)
        run.scheduler.lr_lambdas = [schedule] * len(run.optimizer.param_groups)
        for group, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs):
            group["lr"] = base * schedule(run.step)
    logger.info("resumed from %s (step %d, %d tokens seen)", path, run.step, run.tokens_seen)


def _fit_phases(run: Run) -> None:
    """Fit mode: input rows, then output rows, each for its share of the training time."""
    model = run.accelerator.unwrap_model(run.model)
    if run.step == 0:
        _evaluate(run)  # the zero-shot point, before the rows move
    left = max(0.0, run.clock.left())
    with run.accelerator.autocast():  # bf16 under --precision bf16, as the LM phase
        _run_fit_phases(run, model, left)
    model.train()


def _run_fit_phases(run: Run, model: Any, left: float) -> None:
    from tokengraft.heal import fitting

    o = run.options
    if o.fit_input > 0 and run.teacher is not None:
        frozen = run.frozen[0] if run.frozen is not None else None
        run.fit_record["input"] = fitting.fit_inputs(model, run.tokenizer, run.teacher, run.teacher_tokenizer,
                                                     run.texts, o, o.fit_input * left, frozen)
    run.teacher = None  # the LM phase needs no teacher: free its memory
    if o.fit_output > 0:
        frozen = run.frozen[1] if run.frozen is not None else None
        run.fit_record["output"] = fitting.fit_outputs(model, run.tokenizer, run.texts, o, o.fit_output * left,
                                                       run.accelerator.device, frozen)


def _optimizer_step(run: Run) -> dict[str, float]:
    """One optimizer step on the next global batch; returns its logged losses."""
    o, acc = run.options, run.accelerator
    world, rank = acc.num_processes, acc.process_index
    per = o.batch_size // world
    rows = run.stream.next_batch(o.batch_size)
    alm = o.mode == "alm"
    if alm:
        counts = Counts(tokens=sum(len(r.student) - 1 for r in rows), chunks=sum(len(r.chunks) for r in rows), world=world)
        tokens = sum(len(r.student) for r in rows)
    else:
        counts = Counts(tokens=o.batch_size * (o.seq_len - 1), world=world)
        tokens = o.batch_size * o.seq_len
    reads.count(run.reads, torch.cat([torch.as_tensor(r.student) for r in rows]) if alm else rows)
    local = rows[rank * per:(rank + 1) * per]
    micro = per // o.grad_accum
    sums = torch.zeros(2, dtype=torch.float64, device=acc.device)
    for i in range(o.grad_accum):
        part = local[i * micro:(i + 1) * micro]
        sync = contextlib.nullcontext() if i == o.grad_accum - 1 else acc.no_sync(run.model)
        with sync:
            if alm:
                batch = collate_alm(part).to(acc.device)
                with acc.autocast():
                    teacher_logp = teacher_chunk_logps(run.teacher, batch)
                objective, part_sums = alm_micro(run.model, teacher_logp, batch, counts, o.tau, o.alm_lm_weight)
            else:
                weights = None if run.letters is None else target_weights(part, *run.letters, o.continuation_weight)
                objective, part_sums = lm_micro(run.model, part.to(acc.device), counts, weights)
            acc.backward(objective)
        sums += part_sums
    if run.sparse is not None:
        run.sparse.mask(rows)
    if run.shared is not None:
        run.shared.gradients()
    if o.max_grad_norm > 0:
        acc.clip_grad_norm_(run.model.parameters(), o.max_grad_norm)
    run.optimizer.step()
    if run.sparse is not None:
        run.sparse.restore()
    if run.shared is not None:
        run.shared.apply()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    run.tokens_seen += tokens
    losses = step_losses(acc.reduce(sums, "sum").cpu(), counts, alm, o.alm_lm_weight)
    return {"step": run.step, "tokens": run.tokens_seen, **losses, "lr": run.scheduler.get_last_lr()[0]}


def _evaluate(run: Run) -> None:
    if not run.eval_corpora:
        return
    t0 = time.perf_counter()
    try:
        _score(run)
    finally:
        run.clock.exclude(time.perf_counter() - t0)  # measuring is not part of the budget


def _score(run: Run) -> None:
    if run.accelerator.is_main_process:
        model = run.accelerator.unwrap_model(run.model)
        # A peft model's ``base_model`` is not the decoder body the meter expects; the model
        # it wraps has the LoRA layers injected in place, so scoring it scores the adapters.
        _score_model(run, modes.unwrap(model))
        model.train()
    run.accelerator.wait_for_everyone()


def _score_model(run: Run, scored: Any, **extra: Any) -> None:
    """Append the held-out BPB of ``scored`` (this process only) to the eval curve."""
    device = str(run.accelerator.device)
    entry: dict[str, Any] = {"step": run.step, "tokens": run.tokens_seen, **extra, "bpb": {}, "tokens_per_byte": {}}
    for spec, corpus in run.eval_corpora:
        bpb, tpb = compat.bits_per_byte(scored, run.tokenizer, corpus, device=device,
                                        max_bytes=run.options.eval_max_bytes,
                                        bf16=run.accelerator.mixed_precision == "bf16")
        entry["bpb"][spec], entry["tokens_per_byte"][spec] = bpb, tpb
    logger.info("step %d%s: held-out BPB %s", run.step, "".join(f", {k} {v}" for k, v in extra.items()),
                ", ".join(f"{k} {v:.4f}" for k, v in entry["bpb"].items()))
    run.eval_curve.append(entry)


def _train(run: Run, root: Path) -> float:
    """Run the remaining steps; returns the seconds spent in optimizer steps."""
    o, acc, clock = run.options, run.accelerator, run.clock
    total = o.total_steps()
    if run.step == 0 and not (o.mode == "fit" and run.eval_curve):
        _evaluate(run)
    bar = tqdm(total=total, initial=run.step, unit="step", disable=not (o.progress and acc.is_main_process))
    seconds, tokens_at_start, last_saved = 0.0, run.tokens_seen, None
    clock.write_bytes = _write_bytes(run)
    if o.budget is not None:
        if clock.reserve > 0.5 * o.budget:
            logger.warning("a budget of %g s leaves little time to train: writing the result takes ~%.0f s",
                        o.budget, clock.reserve)
    clock.begin_training()
    low = FrozenLinears(run.model) if acc.mixed_precision == "bf16" else None
    if low is not None:
        low.cast()
    try:
        while total is None or run.step < total:
            if not _agree(acc, clock.can_step()):
                run.stopped_by_budget = True
                break
            t0 = time.perf_counter()
            entry = _optimizer_step(run)
            seconds += time.perf_counter() - t0
            clock.record_step(time.perf_counter() - t0)
            run.loss_curve.append(entry)
            tps = (run.tokens_seen - tokens_at_start) / max(seconds, 1e-9)
            bar.set_postfix(loss=f"{entry['loss']:.4f}", tok_s=f"{tps:,.0f}")
            bar.update(1)
            more = total is None or run.step < total
            if o.eval_every and run.step % o.eval_every == 0 and more:
                with low.exact() if low is not None else contextlib.nullcontext():
                    _evaluate(run)
            if o.save_every and run.step % o.save_every == 0 and more:
                last_saved = _save(run, root)
        if run.stopped_by_budget:
            # the budget ran out first: keep the state, so that --resume can train on
            planned = f" of {total}" if total is not None else ""
            logger.info("budget of %.0f s spent after %d%s steps (%.1f s used)", o.budget, run.step, planned,
                     clock.used())
            if last_saved is None or not last_saved.name.endswith(f"{run.step:08d}"):
                _save(run, root)
    except torch.OutOfMemoryError:
        kept = f"; checkpoint {last_saved} is intact, continue with --resume" if last_saved else ""
        per = o.batch_size // (acc.num_processes * o.grad_accum)
        raise TokengraftError(
            f"out of memory on {acc.device} with {per} rows of {o.seq_len} tokens per micro-step; pass a smaller "
            f"--batch-size, a larger --grad-accum or a smaller --seq-len{kept}") from None
    finally:
        bar.close()
        if low is not None:
            low.restore()
    _evaluate(run)
    run.tokens_per_second = (run.tokens_seen - tokens_at_start) / max(seconds, 1e-9)
    return seconds


def _save(run: Run, root: Path) -> Path | None:
    payload = _payload(run)
    saved = None
    if run.accelerator.is_main_process:
        saved = checkpoint.save(root, run.step, payload, run.options.keep_checkpoints)
    run.accelerator.wait_for_everyone()
    return saved


def _write_bytes(run: Run) -> int:
    """Bytes the end of a run writes: the model, plus a checkpoint of the trained weights and Adam's moments."""
    model = run.accelerator.unwrap_model(run.model)
    params = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() * p.element_size() for p in params)
    return total + 3 * sum(p.numel() * p.element_size() for p in params if p.requires_grad)


def _agree(acc: Any, flag: bool) -> bool:
    """True on every process only if true on all (processes must stop at the same step)."""
    if acc.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=acc.device)
    return bool(acc.reduce(value, "min").item() > 0.5)


def _peak_memory(run: Run) -> int:
    if run.accelerator.device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(run.accelerator.device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _write_output(run: Run, out: Path, seconds: float, train_seconds: float) -> None:
    from tokengraft.publish.card import write_card
    from tokengraft.publish.hub import push_folder

    o = run.options
    model = modes.finalize(run.accelerator.unwrap_model(run.model))
    if o.keep_share < 1:
        modes.interpolate(model, compat.load_model(o.model, dtype=torch.float32).state_dict(), o.keep_share)
        if run.eval_corpora:  # the curve ends with the model the folder holds
            _score_model(run, model, interpolate=o.keep_share)
    record = {
        "tokengraft": "heal", "options": o.to_json(), "teacher": run.teacher_spec,
        "steps": run.step, "tokens_seen": run.tokens_seen, "trainable_parameters": run.trainable,
        "processes": run.accelerator.num_processes, "device": str(run.accelerator.device),
        "precision": run.accelerator.mixed_precision, "seconds": round(seconds, 3),
        "train_seconds": round(train_seconds, 3), "max_seconds": o.budget, "fit": run.fit_record,
        "rows_read": reads.summary(run.reads, run.copied),
        "budget_seconds": round(run.clock.used(), 3), "stopped_by_budget": run.stopped_by_budget,
        "interpolate": o.keep_share,
        "tokens_per_second": run.tokens_per_second,
        "peak_memory_bytes": _peak_memory(run), "loss_curve": run.loss_curve, "eval_curve": run.eval_curve,
    }
    logger.info("%s", reads.describe(record["rows_read"]))
    t0 = time.perf_counter()
    saved = checkpoint.checkpoints(o.checkpoint_dir())
    fix = (f"and continue from checkpoint {saved[-1].name} with --resume" if saved
           else "or choose another --out")
    need = sum(p.numel() * p.element_size() for p in {id(p): p for p in model.parameters()}.values())
    with output_dir(out, overwrite=o.overwrite, need_bytes=need + (8 << 20), fix=fix) as tmp:
        model.save_pretrained(tmp)
        run.tokenizer.save_pretrained(tmp)
        problem = verify_saved_tokenizer(tmp, run.tokenizer)  # transformers may swap in a class of its own
        if problem:
            logger.warning("%s", problem)
            record["warnings"] = [*record.get("warnings", []), problem]
        for name in (sources.TRANSPLANT_FILE, sources.TOKENS_FILE):  # keep the transplant's record beside it
            if (Path(o.model) / name).is_file():
                shutil.copy2(Path(o.model) / name, tmp / name)
        report.write_record(tmp, record)
        report.plot_curves(tmp, run.loss_curve, run.eval_curve, f"heal {o.mode}: {Path(o.model).name}")
        write_card(tmp, name=out.name)
    logger.info("wrote %s (%d steps, %d tokens) in %.1f s", out, run.step, run.tokens_seen, time.perf_counter() - t0)
    if o.push_to_hub:
        push_folder(out, o.push_to_hub, public=o.public)
