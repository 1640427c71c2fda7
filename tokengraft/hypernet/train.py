"""``train_hypernet(options)``: load the frozen base, train the hypernetwork, write its folder.

Each step draws everything random from a generator seeded by (seed, step), and the sampled
tokenizer of a block of ``tokenizer_every`` steps from (seed, block): a checkpoint needs no
random state, and a resumed run repeats exactly the steps an uninterrupted run takes. Under
``accelerate launch`` every process builds the same global batch and trains on its slice.
With ``max_seconds`` the learning-rate schedule follows the elapsed training time (kept in
checkpoints) instead of the step count, and training stops when the budget is spent.
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
TOKENIZER_STREAM = 1_000_003  # separates the tokenizers' seeds from the steps' seeds


@dataclass
class Trainer:
    options: HypernetTrainOptions
    accelerator: Any
    base: Base
    net: Any                                   # Hypernet, DDP-wrapped under accelerate launch
    optimizer: Any
    texts: list[str]
    recon: Reconstruction | None = None
    head: Any = None
    lm: Any = None
    step: int = 0
    elapsed: float = 0.0                       # seconds spent in training steps (all runs together)
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    part_seconds: dict[str, float] = field(default_factory=dict)
    _views: dict[int, TokenizerView] = field(default_factory=dict)

    @property
    def module(self) -> Hypernet:
        return self.accelerator.unwrap_model(self.net)

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
        progress = self.elapsed / o.max_seconds if o.max_seconds else self.step / o.steps
        return o.lr * (MIN_LR_SHARE + (1 - MIN_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def done(self) -> bool:
        o = self.options
        return self.elapsed >= o.max_seconds if o.max_seconds else self.step >= o.steps

    def train_step(self) -> dict[str, float]:
        o, acc = self.options, self.accelerator
        t0 = time.perf_counter()
        rng = np.random.default_rng([o.seed, self.step])
        parts = self.parts(rng)
        pieces = [p for part in parts for p in part.pieces]
        device = self.base.old_in.device
        ids, mask = pad_pieces(pieces, o.max_pieces, device)
        with acc.autocast():
            deltas = self.net(self.base.old_in, self.base.old_out, ids, mask).float()
        rows_in, rows_out = self._rows(ids, mask, deltas)
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
        acc.backward(total)
        if o.max_grad_norm > 0:
            acc.clip_grad_norm_(self.net.parameters(), o.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.elapsed += time.perf_counter() - t0
        entry = {"step": self.step, "seconds": round(self.elapsed, 3), "loss": float(total.detach()),
                 "lr": self.optimizer.param_groups[0]["lr"], **logs}
        self.loss_curve.append(entry)
        return entry

    def _rows(self, ids: torch.Tensor, mask: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """FVT means of the pieces plus the scaled deltas (every training decomposition fits ``max_pieces``)."""
        base, std = self.base, self.module.out_std
        weight = mask.float()[..., None] / mask.sum(1).clamp_min(1)[:, None, None]
        d = base.d_model
        mean_in = (base.old_in[ids] * weight).sum(1)
        mean_out = mean_in if base.tied else (base.old_out[ids] * weight).sum(1)
        return mean_in + deltas[:, :d] * std[:d], mean_out + deltas[:, d:] * std[d:]


def train_hypernet(options: HypernetTrainOptions) -> Path:
    """Train a hypernetwork for ``options.model`` and write it to ``options.out``; returns the folder.

    >>> train_hypernet(HypernetTrainOptions("smollm2-135m", ["libreoffice:de:fit"], out="out/hn"))  # doctest: +SKIP
    """
    from tokengraft.heal.setup import make_accelerator

    options.validate()
    out, root = options.out_dir(), options.checkpoint_dir()
    _check_paths(options, out, root)
    accelerator = make_accelerator(options)
    trainer = build_trainer(options, accelerator)
    if options.resume:
        _restore(trainer, checkpoint.checkpoints(root)[-1])
    _loop(trainer, root)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write(trainer, out)
        shutil.rmtree(root, ignore_errors=True)
    accelerator.wait_for_everyone()
    return out


def _check_paths(options: HypernetTrainOptions, out: Path, root: Path) -> None:
    if out.exists() and not options.overwrite:
        raise TokengraftError(f"output folder {out} already exists; choose another --out or pass --overwrite")
    found = checkpoint.checkpoints(root)
    if options.resume and not found:
        raise TokengraftError(f"--resume found no checkpoint in {root}; run without --resume to start from step 0")
    if found and not options.resume:
        raise TokengraftError(f"{root} holds checkpoints of an earlier run; pass --resume to continue it, "
                              "or delete that folder to start over")


def build_trainer(options: HypernetTrainOptions, accelerator: Any) -> Trainer:
    from tokengraft.assets import load_corpora, load_model, load_tokenizer
    from tokengraft.hypernet.forest import MergeForest
    from tokengraft.hypernet.lm import LmObjective
    from tokengraft.hypernet.textual import HeadObjective, HiddenCache
    from tokengraft.measure.scorer import split_head

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
    net, optimizer = accelerator.prepare(net, optimizer)
    trainer = Trainer(o, accelerator, base, net, optimizer, texts)
    std = accelerator.unwrap_model(net).out_std
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
            "elapsed": trainer.elapsed, "loss_curve": trainer.loss_curve, "part_seconds": trainer.part_seconds,
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
    trainer.loss_curve, trainer.part_seconds = list(state["loss_curve"]), dict(state["part_seconds"])
    log.info("resumed from %s (step %d, %.0f s trained)", path, trainer.step, trainer.elapsed)


def _loop(trainer: Trainer, root: Path) -> None:
    o, acc = trainer.options, trainer.accelerator
    total = None if o.max_seconds else o.steps
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


def _write(trainer: Trainer, out: Path) -> None:
    o, base = trainer.options, trainer.base
    record = {"base_model": o.model, "base_fingerprint": base.fingerprint, "base_rows": int(base.old_in.shape[0]),
              "base_tied": base.tied, "options": o.to_json(), "steps": trainer.step,
              "train_seconds": round(trainer.elapsed, 3), "processes": trainer.accelerator.num_processes,
              "device": str(trainer.accelerator.device), "precision": trainer.accelerator.mixed_precision,
              "part_seconds": {k: round(v, 3) for k, v in trainer.part_seconds.items()},
              "loss_curve": trainer.loss_curve}
    with atomic_dir(out, overwrite=o.overwrite) as tmp:
        store.write_folder(tmp, trainer.module, probe(base.old_in), record)
    log.info("wrote %s (%d steps, %.0f s)", out, trainer.step, trainer.elapsed)
