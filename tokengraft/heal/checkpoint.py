"""Checkpoints: everything a resumed run needs to continue bit for bit.

One folder per checkpoint, ``<out>.checkpoints/step-00000100/``, written through a
temporary sibling and renamed (a crash mid-write leaves the older checkpoints as they
were), with ``state.pt`` (trainable weights, optimizer, scheduler, RNG states of every
process, data position, curves so far) and ``manifest.json`` holding its SHA-256, so a
truncated or altered file is caught before anything is loaded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokengraft.assets.cache import atomic_dir
from tokengraft.assets.outputs import folder_bytes, write_error
from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

STATE_FILE, MANIFEST_FILE, FORMAT = "state.pt", "manifest.json", 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders under ``root``, oldest first (temporary siblings ignored)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def check_resume(root: Path, resume: bool) -> None:
    """Refuse --resume without a checkpoint under ``root``, and a fresh start over an earlier run's checkpoints."""
    found = checkpoints(root)
    if resume and not found:
        raise TokengraftError(f"--resume found no checkpoint in {root}; run without --resume to start from step 0")
    if found and not resume:
        raise TokengraftError(f"{root} holds checkpoints of an earlier run; pass --resume to continue it, "
                              "or delete that folder to start over")


def save(root: Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write ``payload`` as the checkpoint of ``step``; keep the newest ``keep`` checkpoints."""
    target = root / f"step-{step:08d}"
    earlier = checkpoints(root)
    try:
        with atomic_dir(target, overwrite=True) as tmp:
            torch.save(payload, tmp / STATE_FILE)
            manifest = {"format": FORMAT, "step": step, "sha256": _sha256(tmp / STATE_FILE)}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    except BaseException as exc:
        if not earlier and root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # nothing of this run is on disk: leave no empty folder either
        if not isinstance(exc, OSError):
            raise
        # a full disk must not cost the checkpoints already written
        kept = (f"checkpoint {earlier[-1].name} is intact" if earlier else "no checkpoint was kept")
        raise write_error(exc, target, need_bytes=folder_bytes(earlier[-1]) if earlier else None, kept=kept,
                          fix="and continue with --resume") from exc
    for old in checkpoints(root)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("checkpoint: %s", target)
    return target


def load(path: Path) -> dict[str, Any]:
    """The payload of checkpoint folder ``path``, after checking it against its manifest."""
    earlier = [p for p in checkpoints(path.parent) if p.name < path.name]
    fix = (f"delete {path} to resume from {earlier[-1].name}" if earlier
           else "delete it and start again without --resume")
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        intact = manifest.get("format") == FORMAT and _sha256(path / STATE_FILE) == manifest.get("sha256")
    except (OSError, ValueError, AttributeError):
        intact = False
    if not intact:
        raise TokengraftError(f"checkpoint {path} is corrupted or incomplete (checksum mismatch); {fix}")
    try:
        return torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # a file that matches its checksum but was written by another version
        raise TokengraftError(f"checkpoint {path} cannot be read ({type(exc).__name__}); {fix}") from None


def rng_state() -> dict[str, Any]:
    """This process's random states (numpy's as plain lists so the file loads weights-only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    # random.setstate wants tuples; a round trip through the file may give lists.
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
