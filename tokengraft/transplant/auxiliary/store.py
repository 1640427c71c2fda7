"""Cached auxiliary vectors: one safetensors file per content hash under ``cache_dir("aux")``.

Vectors depend only on their inputs (tokenizer, texts, strings, options), so the file name is
a hash of those inputs: a changed input is a new file, never a stale hit.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable

import torch

logger = logging.getLogger(__name__)


def cache_file(cache: str | None, kind: str, parts: Iterable[str]) -> Path | None:
    """Path for vectors identified by ``parts``; None when ``cache == ""`` (caching off).

    ``cache``: a folder, or None for ``tokengraft.assets.cache.cache_dir("aux")``.
    """
    if cache == "":
        return None
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", errors="surrogatepass") + b"\x00")
    if cache is None:
        from tokengraft.assets.cache import cache_dir

        root = cache_dir("aux")
    else:
        root = Path(cache)
    return root / f"{kind}-{digest.hexdigest()[:20]}.safetensors"


def load_vectors(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    logger.info("auxiliary vectors: cached %s", path.name)
    return load_file(str(path))["vectors"]


def save_vectors(path: Path, vectors: torch.Tensor) -> None:
    """Write atomically: readers (and parallel runs) never see a half-written file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"vectors": vectors.contiguous()}, str(tmp))
    tmp.replace(path)
