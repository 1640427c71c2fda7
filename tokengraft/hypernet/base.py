"""The frozen base model as the hypernetwork sees it: its rows, its tokenizer, its fingerprint.

A hypernetwork belongs to one base model: it reads that model's rows and predicts rows
for it. The saved folder records the base's :func:`fingerprint` (SHA-256 of its embedding
matrices) and a :func:`probe` (every ``PROBE_STRIDE``-th input row); applying it to a
model whose rows differ from the probe (another model, or the same model after training)
is refused with :func:`check_probe`. The probe, unlike the hash, also accepts the same
model loaded in another dtype.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from tokengraft.errors import TokengraftError


def fingerprint(old_in: torch.Tensor, old_out: torch.Tensor | None) -> str:
    """Hex SHA-256 of the rows (float32, row-major), with ``tied`` marked by a missing output matrix."""
    digest = hashlib.sha256()
    for matrix in (old_in, old_out):
        if matrix is None:
            digest.update(b"tied")
            continue
        data = matrix.detach().float().cpu().contiguous()
        digest.update(str(tuple(data.shape)).encode())
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Base:
    """A loaded base model, frozen, with the views of it every objective uses."""

    spec: str
    model: Any                      # causal LM, eval mode, no gradients
    tokenizer: Any
    old_in: torch.Tensor            # (V_old, d) float32 input rows on the model's device
    old_out: torch.Tensor           # (V_old, d) output rows (the same tensor when tied)
    tied: bool
    start_id: int                   # the token every document starts with (as the BPB meter chooses it)
    token_bytes: list[bytes | None]  # (V_old) exact bytes of each id
    fingerprint: str
    _by_bytes: dict[bytes, int] = field(default_factory=dict, repr=False)
    _pieces: dict[bytes, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_model(cls, spec: str, model: Any, tokenizer: Any) -> "Base":
        from tokengraft.lm.start import resolve_start_token
        from tokengraft.transplant.embedding import check_old_vocab, embedding_modules
        from tokengraft.vocab import byte_vocab

        emb, head, tied = embedding_modules(model)
        n_old = check_old_vocab(tokenizer, emb.weight.shape[0])
        model.requires_grad_(False)
        old_in = emb.weight[:n_old].detach().float()
        old_out = old_in if tied else head.weight[:n_old].detach().float()  # type: ignore[union-attr]
        view = byte_vocab(tokenizer)
        tokens = list(view.tokens[:n_old])
        by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(tokens):
            if b is not None:
                by_bytes.setdefault(b, i)
        return cls(spec, model, tokenizer, old_in, old_out, tied, resolve_start_token(tokenizer)[1], tokens,
                   fingerprint(old_in, None if tied else old_out), by_bytes)

    @property
    def d_model(self) -> int:
        return int(self.old_in.shape[1])

    def copied(self, token_bytes: Sequence[bytes]) -> np.ndarray:
        """(V,) int64: the base id with exactly these bytes, -1 where none."""
        return np.array([self._by_bytes.get(b, -1) for b in token_bytes], dtype=np.int64)

    def pieces(self, items: Sequence[bytes]) -> list[list[int]]:
        """Base-tokenizer decomposition of each byte string (the transplant's convention), cached."""
        from tokengraft.transplant.correspondence import encode_pieces

        todo = sorted({b for b in items if b not in self._pieces})
        if todo:
            for data, ids in zip(todo, encode_pieces(self.tokenizer, list(todo))[0]):
                self._pieces[data] = ids
        return [self._pieces[b] for b in items]


PROBE_STRIDE = 997  # a prime: the probe rows spread over the whole vocabulary
PROBE_TOLERANCE = 0.02  # relative to the largest probe entry: bfloat16 copies of the same rows pass


def probe(old_in: torch.Tensor) -> torch.Tensor:
    """(ceil(V / PROBE_STRIDE), d) float32: the rows that identify the base model."""
    return old_in[::PROBE_STRIDE].detach().float().cpu().clone()


def check_probe(expected: torch.Tensor, old_in: torch.Tensor, where: str, base_name: str) -> None:
    """A one-line error when ``old_in`` is not the matrix the hypernetwork was trained on."""
    found = probe(old_in)
    same = found.shape == expected.shape and bool(
        ((found - expected).abs().max() <= PROBE_TOLERANCE * expected.abs().max().clamp_min(1e-12)).item())
    if not same:
        raise TokengraftError(
            f"hypernetwork {where} belongs to base model {base_name!r}; the model given (embedding "
            f"{tuple(old_in.shape)}) is another one; train a hypernetwork for it with: "
            "tokengraft hypernet train --model SPEC --corpus CORPUS --out DIR")
