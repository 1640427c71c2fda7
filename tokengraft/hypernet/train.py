"""``train_hypernet(options)``: load the frozen base, train the hypernetwork, write its folder.

Each step draws everything random from a generator seeded by (seed, step), and the sampled
tokenizer of a block of ``tokenizer_every`` steps from (seed, block): a checkpoint needs no
random state, and a resumed run repeats exactly the steps an uninterrupted run takes. Under
``accelerate launch`` every process builds the same global batch, trains on its slice, and
the gradients are averaged over processes after each backward pass (by hand rather than by
DDP, because the network runs once per length bucket).
``max_seconds`` is the whole command's wall-clock budget: loading the base, caching hidden
states and writing the folder included. What is left after the set-up is the training
loop's budget (kept in checkpoints, so a resumed run finishes the same budget); the
learning-rate schedule then follows the loop's elapsed time instead of the step count.
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tokengraft.assets.cache import atomic_dir
from tokengraft.errors import TokengraftError
from tokengraft.heal import checkpoint
from tokengraft.hypernet import store
from tokengraft.hypernet.base import Base, probe
from tokengraft.hypernet.model import Hypernet, HypernetConfig, pad_pieces
from tokengraft.hypernet.objectives import Part, Reconstruction
from tokengraft.hypernet.options import HypernetTrainOptions
from tokengraft.hypernet.sampling import SamplerOptions, sample_tokenizer
from tokengraft.hypernet.textual import TokenizerView

log = logging.getLogger(__name__)
MIN_LR_SHARE = 0.1
WRITE_RESERVE = 5.0  # seconds of a --max-seconds budget kept for writing the folder
BUCKETS = ((0, 2), (2, 4), (4, 8), (8, 1 << 30))  # decomposition lengths predicted together
TOKENIZER_STREAM = 1_000_003  # separates the tokenizers' seeds from the steps' seeds


@dataclass
class Trainer:
    options: HypernetTrainOptions
    accelerator: Any
    base: Base
    net: Hypernet
    optimizer: Any
    texts: list[str]
    recon: Reconstruction | None = None
    head: Any = None
    lm: Any = None
    step: int = 0
    elapsed: float = 0.0                       # seconds spent in training steps (all runs together)
    budget: float | None = None                # seconds the loop may take (max_seconds minus the set-up)
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    part_seconds: dict[str, float] = field(default_factory=dict)
    _views: dict[int, TokenizerView] = field(default_factory=dict)

    @property
    def module(self) -> Hypernet:
        return self.net

    def view(self) -> TokenizerView:
        block = self.step // self.options.tokenizer_every
        if block not in self._views:
            o = self.options
            rng = np.random.default_rng([o.seed, TOKENIZER_STREAM, block])
            sampled = sample_tokenizer(self.texts, rng, SamplerOptions(min_vocab=o.min_vocab, max_vocab=o.max_vocab))
            self._views = {block: TokenizerView.build(self.base, sampled, o.max_pieces)}
        return self._views[block]

    def parts(self, rng: np.random.Generator) -> list[Part]:
        o, acc = self.options, self.accelerator
        rank, world = acc.process_index, acc.num_processes
        out: list[Part] = []
        if self.recon is not None:
            out.append(self._timed("recon", lambda: self.recon.part(rng, rank, world), o.recon_weight))
        if self.head is not None:
            out.append(self._timed("head", lambda: self.head.part(rng, rank, world, self.view()), o.head_weight))
        if self.lm is not None and self.step % o.lm_every == 0:
            out.append(self._timed("lm", lambda: self.lm.part(rng, rank, world, self.view()), o.lm_weight))
        return [p for p in out if p is not None]

    def _timed(self, name: str, make: Any, weight: float) -> Part | None:
        t0 = time.perf_counter()
        part = make()
        self.part_seconds[name] = self.part_seconds.get(name, 0.0) + time.perf_counter() - t0
        if part is not None:
            part.weight, part.name = weight, name
        return part

    def learning_rate(self) -> float:
        o = self.options
        if self.step < o.warmup:
            return o.lr * (self.step + 1) / (o.warmup + 1)
        progress = self.elapsed / self.budget if self.budget else self.step / o.steps
        return o.lr * (MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def done(self) -> bool:
        return self.elapsed >= self.budget if self.budget is not None else self.step >= self.options.steps

    def train_step(self) -> dict[str, float]:
        o, acc = self.options, self.accelerator
        t0 = time.perf_counter()
        rng = np.random.default_rng([o.seed, self.step])
        parts = self.parts(rng)
        rows_in, rows_out = self.predict([p for part in parts for p in part.pieces])
        total, logs, at = 0.0, {}, 0
        for part in parts:
            n = len(part.pieces)
            t1 = time.perf_counter()
            value, numbers = part.loss(rows_in[at:at + n], rows_out[at:at + n])
            self.part_seconds[part.name] += time.perf_counter() - t1
            total = total + part.weight * value
            logs.update(numbers)
            at += n
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        total.backward()
        self._average_gradients()
        if o.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), o.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.elapsed += time.perf_counter() - t0
        logs["loss"] = float(total.detach())
        entry = {"step": self.step, "seconds": round(self.elapsed, 3), "lr": self.optimizer.param_groups[0]["lr"],
                 **self._mean_over_processes(logs)}
        self.loss_curve.append(entry)
        return entry

    def predict(self, pieces: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of every decomposition, the network run once per length bucket (padding costs little)."""
        base, d = self.base, self.base.d_model
        std = self.net.out_std
        rows_in = base.old_in.new_zeros(len(pieces), d)
        rows_out = base.old_in.new_zeros(len(pieces), d)
        lengths = np.array([len(p) for p in pieces])
        for low, high in BUCKETS:
            which = np.nonzero((lengths > low) & (lengths <= high))[0]
            if not len(which):
                continue
            ids, mask = pad_pieces([pieces[i] for i in which.tolist()], self.options.max_pieces, base.old_in.device)
            with self.accelerator.autocast():
                delta = self.net(base.old_in, base.old_out, ids, mask).float()
            weight = mask.float()[..., None] / mask.sum(1).clamp_min(1)[:, None, None]
            mean_in = (base.old_in[ids] * weight).sum(1)
            mean_out = mean_in if base.tied else (base.old_out[ids] * weight).sum(1)
            where = torch.as_tensor(which, device=rows_in.device)
            rows_in = rows_in.index_put((where,), mean_in + delta[:, :d] * std[:d])
            rows_out = rows_out.index_put((where,), mean_out + delta[:, d:] * std[d:])
        return rows_in, rows_out

    def _average_gradients(self) -> None:
        """DDP's job by hand: the mean gradient over processes (the network runs once per bucket)."""
        world = self.accelerator.num_processes
        if world == 1:
            return
        import torch.distributed as dist

        for p in self.net.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= world

    def _mean_over_processes(self, logs: dict[str, float]) -> dict[str, float]:
        if self.accelerator.num_processes == 1:
            return logs
        keys = sorted(logs)
        values = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=self.accelerator.device)
        values = self.accelerator.reduce(values, "mean")
        return {k: float(v) for k, v in zip(keys, values.tolist())}


def train_hypernet(options: HypernetTrainOptions) -> Path:
    """Train a hypernetwork for ``options.model`` and write it to ``options.out``; returns the folder.

    >>> train_hypernet(HypernetTrainOptions("smollm2-135m", ["libreoffice:de:fit"], out="out/hn"))  # doctest: +SKIP
    """
    from tokengraft.heal.setup import make_accelerator

    start = time.perf_counter()
    options.validate()
    out, root = options.out_dir(), options.checkpoint_dir()
    _check_paths(options, out, root)
    accelerator = make_accelerator(options)
    trainer = build_trainer(options, accelerator)
    if options.max_seconds:
        trainer.budget = options.max_seconds - (time.perf_counter() - start) - WRITE_RESERVE
        if trainer.budget <= 0:
            raise TokengraftError(f"--max-seconds {options.max_seconds:g} is spent before training starts (loading and "
                                  f"caching took {time.perf_counter() - start:.0f} s); give more seconds")
    if options.resume:
        _restore(trainer, checkpoint.checkpoints(root)[-1])
    _loop(trainer, root)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write(trainer, out, time.perf_counter() - start)
        shutil.rmtree(root, ignore_errors=True)
    accelerator.wait_for_everyone()
    return out


def _check_paths(options: HypernetTrainOptions, out: Path, root: Path) -> None:
    if out.exists() and not options.overwrite:
        raise TokengraftError(f"output folder {out} already exists; choose another --out or pass --overwrite")
    checkpoint.check_resume(root, options.resume)


def build_trainer(options: HypernetTrainOptions, accelerator: Any) -> Trainer:
    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.hypernet.forest import MergeForest
    from tokengraft.hypernet.lm import LmObjective
    from tokengraft.hypernet.textual import HeadObjective, HiddenCache
    from tokengraft.lm.head import split_head

    o, device = options, accelerator.device
    texts = [d.text for c in load_corpora(o.corpus) for d in c.documents if d.text] if o.corpus else []
    if o.corpus and not texts:
        raise TokengraftError(f"the training corpus {' '.join(o.corpus)} has no text; check the --corpus specs")
    model = load_model(o.model, device=device)
    base = Base.from_model(o.model, model, load_tokenizer(o.model))
    torch.manual_seed(o.seed)
    net = Hypernet(HypernetConfig(base.d_model, untied=not base.tied, hidden=o.hidden, layers=o.layers,
                                  heads=o.heads, ffn=o.ffn, max_pieces=o.max_pieces))
    net.set_base_statistics(base.old_in, base.old_out)
    net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    if accelerator.num_processes > 1:  # every process starts from the same weights
        import torch.distributed as dist

        for tensor in net.state_dict().values():
            dist.broadcast(tensor, 0)
    trainer = Trainer(o, accelerator, base, net, optimizer, texts)
    std = net.out_std
    autocast = accelerator.mixed_precision == "bf16"
    head = split_head(model)
    if "recon" in o.objectives:
        trainer.recon = Reconstruction(base, MergeForest.from_tokenizer(base.tokenizer), o.recon_tokens,
                                       o.recon_k_min, o.max_pieces, o.recon_out_weight,
                                       std[:base.d_model], std[base.d_model:])
    if "head" in o.objectives:
        cache = HiddenCache.build(base, texts, o.head_tokens, o.head_chunk_len,
                                  np.random.default_rng([o.seed, 7]), device, autocast=autocast)
        trainer.head = HeadObjective(base, cache, o.head_chunks, o.negatives, head)
    if "lm" in o.objectives:
        trainer.lm = LmObjective(base, texts, o.lm_rows, o.lm_seq_len, o.negatives, autocast, head)
    if accelerator.is_main_process:
        params = sum(p.numel() for p in net.parameters())
        log.info("hypernetwork for %s: %d parameters, objectives %s, %d process(es) on %s",
                 o.model, params, ",".join(o.objectives), accelerator.num_processes, device)
    return trainer


def _fingerprint(options: HypernetTrainOptions) -> dict[str, Any]:
    # What must not change between a run and its resumption for the result to be the same.
    skip = {"out", "overwrite", "resume", "progress", "save_every", "keep_checkpoints", "device", "precision"}
    return {k: v for k, v in options.to_json().items() if k not in skip}


def _payload(trainer: Trainer) -> dict[str, Any]:
    return {"net": trainer.module.state_dict(), "optimizer": trainer.optimizer.state_dict(), "step": trainer.step,
            "elapsed": trainer.elapsed, "budget": trainer.budget, "loss_curve": trainer.loss_curve, "part_seconds": trainer.part_seconds,
            "fingerprint": _fingerprint(trainer.options), "base": trainer.base.fingerprint}


def _restore(trainer: Trainer, path: Path) -> None:
    state = checkpoint.load(path)
    expected = _fingerprint(trainer.options)
    if state.get("fingerprint") != expected or state.get("base") != trainer.base.fingerprint:
        changed = sorted(k for k, v in expected.items() if state.get("fingerprint", {}).get(k) != v)
        raise TokengraftError(f"checkpoint {path} was made with other options or another base model "
                              f"({', '.join(changed) or 'model weights'}); resume with the interrupted run's options")
    trainer.module.load_state_dict(state["net"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.step, trainer.elapsed = int(state["step"]), float(state["elapsed"])
    trainer.budget = state["budget"]  # the interrupted run's loop budget: the same schedule, finished
    trainer.loss_curve, trainer.part_seconds = list(state["loss_curve"]), dict(state["part_seconds"])
    log.info("resumed from %s (step %d, %.0f s trained)", path, trainer.step, trainer.elapsed)


def _loop(trainer: Trainer, root: Path) -> None:
    o, acc = trainer.options, trainer.accelerator
    total = None if trainer.budget else o.steps
    bar = tqdm(total=total, initial=trainer.step, unit="step", disable=not (o.progress and acc.is_main_process))
    try:
        while not trainer.done():
            entry = trainer.train_step()
            shown = {k: f"{v:.3f}" for k, v in entry.items() if k in ("recon_in", "recon_out", "head", "lm")}
            bar.set_postfix(**shown, s=f"{trainer.elapsed:.0f}")
            bar.update(1)
            if o.save_every and trainer.step % o.save_every == 0 and not trainer.done():
                payload = _payload(trainer)
                if acc.is_main_process:
                    checkpoint.save(root, trainer.step, payload, o.keep_checkpoints)
                acc.wait_for_everyone()
    finally:
        bar.close()


def _write(trainer: Trainer, out: Path, seconds: float) -> None:
    o, base = trainer.options, trainer.base
    record = {"base_model": o.model, "base_fingerprint": base.fingerprint, "base_rows": int(base.old_in.shape[0]),
              "base_tied": base.tied, "options": o.to_json(), "steps": trainer.step,
              "train_seconds": round(trainer.elapsed, 3), "loop_budget": trainer.budget,
              "seconds_before_write": round(seconds, 3), "processes": trainer.accelerator.num_processes,
              "device": str(trainer.accelerator.device), "precision": trainer.accelerator.mixed_precision,
              "part_seconds": {k: round(v, 3) for k, v in trainer.part_seconds.items()},
              "loss_curve": trainer.loss_curve}
    with atomic_dir(out, overwrite=o.overwrite) as tmp:
        store.write_folder(tmp, trainer.module, probe(base.old_in), record)
    log.info("wrote %s (%d steps, %.0f s)", out, trainer.step, trainer.elapsed)
