"""Objectives on text tokenized by a sampled tokenizer: ``lm`` (ZeTT's) and its cheap cousin ``head``.

Both score the tokens of a sampled tokenizer ``S`` with a softmax over ``S``'s vocabulary:
tokens whose bytes are a base token keep the base row (copied, as a transplant copies
them), the others get predicted rows. Only the new tokens that occur in the batch and
``negatives`` uniformly drawn others are predicted; each drawn negative's logit is raised
by log(others / drawn), a sampled-softmax estimate of the full partition function.

* ``lm`` (ZeTT): the frozen base model reads the text in ``S``'s tokens (predicted input
  rows) and the loss is its next-token cross-entropy (predicted output rows); gradients
  reach the input rows through the frozen body. The faithful objective, and the costly one.
* ``head``: the base model reads the text once with its *own* tokenizer and its final hidden
  states are cached; wherever an ``S`` token starts on a byte where a base token ends, the
  hidden state there must predict that ``S`` token. No body in the loop: it trains output
  rows (and the competition between copied and new tokens) for the price of a matmul.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from tokengraft.hypernet.base import Base
from tokengraft.hypernet.objectives import Part, local_slice, negative_offset, sampled_cross_entropy
from tokengraft.hypernet.sampling import SampledTokenizer

log = logging.getLogger(__name__)
START = -1  # a row position holding the base model's start token


@dataclass
class TokenizerView:
    """A sampled tokenizer seen from the base: copied ids, decompositions, usable ids."""

    sampled: SampledTokenizer
    copied: np.ndarray                 # (V_s,) base id with the same bytes, -1 for new tokens
    pieces: list[list[int]]            # (V_s) base decomposition of each new token ([] for copied)
    valid: np.ndarray                  # (V_s,) bool: copied, or new with 1..max_pieces pieces
    new_ids: np.ndarray                # ids of the valid new tokens
    fixed: np.ndarray                  # ids of the copied tokens (their rows come first in the softmax)

    @classmethod
    def build(cls, base: Base, sampled: SampledTokenizer, max_pieces: int) -> "TokenizerView":
        copied = base.copied(sampled.token_bytes)
        new = [i for i, c in enumerate(copied.tolist()) if c < 0 and sampled.token_bytes[i]]
        found = base.pieces([sampled.token_bytes[i] for i in new])
        pieces: list[list[int]] = [[] for _ in sampled.token_bytes]
        for i, p in zip(new, found):
            pieces[i] = p
        lengths = np.array([len(p) for p in pieces])
        valid = (copied >= 0) | ((lengths >= 1) & (lengths <= max_pieces))
        new_ids = np.nonzero(valid & (copied < 0))[0]
        return cls(sampled, copied, pieces, valid, new_ids, np.nonzero(copied >= 0)[0])


@dataclass
class BatchVocab:
    """The softmax of one step: copied rows, then the batch's new tokens, then drawn negatives."""

    fixed_base: torch.Tensor           # (F,) base ids of the copied tokens
    new_ids: np.ndarray                # (M,) sampled-tokenizer ids whose rows are predicted
    offsets: torch.Tensor              # (F + M,) logit offsets (negatives' sampling correction)
    local: dict[int, int]              # sampled id -> index in the softmax

    @classmethod
    def build(cls, view: TokenizerView, targets: Sequence[int], rng: np.random.Generator, negatives: int,
              device: torch.device) -> "BatchVocab":
        needed = np.unique(np.asarray([t for t in targets if view.copied[t] < 0], dtype=np.int64))
        rest = np.setdiff1d(view.new_ids, needed, assume_unique=True)
        drawn = rng.choice(rest, size=min(negatives, len(rest)), replace=False) if len(rest) else rest
        n_fixed = len(view.fixed)
        new_ids = np.concatenate([needed, np.sort(drawn)]).astype(np.int64)
        offsets = torch.zeros(n_fixed + len(new_ids), device=device)
        offsets[n_fixed + len(needed):] = negative_offset(len(rest), len(drawn))
        local = {int(s): i for i, s in enumerate(view.fixed.tolist())}
        local.update({int(s): n_fixed + i for i, s in enumerate(new_ids.tolist())})
        fixed_base = torch.as_tensor(view.copied[view.fixed], dtype=torch.long, device=device)
        return cls(fixed_base, new_ids, offsets, local)


@dataclass
class HiddenCache:
    """Base hidden states on text read with the base's own tokenizer, for the ``head`` objective."""

    texts: list[str]                   # chunk texts (exactly the bytes of the chunk's base tokens)
    ends: list[np.ndarray]             # per chunk (n,): byte offset reached after each position (start = 0)
    hidden: list[torch.Tensor]         # per chunk (n, d): final hidden state at each position

    @property
    def positions(self) -> int:
        return sum(len(e) for e in self.ends)

    @classmethod
    def build(cls, base: Base, texts: Sequence[str], tokens: int, chunk_len: int, rng: np.random.Generator,
              device: torch.device, batch: int = 8, autocast: bool = False) -> "HiddenCache":
        chunks: list[tuple[str, np.ndarray, list[int]]] = []
        used = 0
        for i in rng.permutation(len(texts)).tolist():
            if used >= tokens:
                break
            ids = base.tokenizer(texts[i][: chunk_len * 16], add_special_tokens=False)["input_ids"][: chunk_len - 1]
            spans = [base.token_bytes[t] for t in ids]
            while spans and (spans[-1] is None or not _decodes(b"".join(s or b"" for s in spans))):
                spans.pop()  # a chunk ends on a whole character, so its text is exact
            if len(spans) < 8 or any(s is None for s in spans):
                continue
            ends = np.concatenate([[0], np.cumsum([len(s) for s in spans])]).astype(np.int64)
            chunks.append((b"".join(spans).decode("utf-8"), ends, [base.start_id, *ids[: len(spans)]]))
            used += len(spans) + 1
        hidden: list[torch.Tensor] = []
        body = base.model.base_model
        for start in range(0, len(chunks), batch):
            group = chunks[start:start + batch]
            width = max(len(c[2]) for c in group)
            ids = torch.zeros(len(group), width, dtype=torch.long)
            mask = torch.zeros(len(group), width, dtype=torch.long)
            for r, (_, _, row) in enumerate(group):
                ids[r, :len(row)], mask[r, :len(row)] = torch.tensor(row), 1
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = body(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)[0]
            hidden += [out[r, :len(row)].float() for r, (_, _, row) in enumerate(group)]
        log.info("head objective: base hidden states at %d positions of %d chunks", used, len(chunks))
        return cls([c[0] for c in chunks], [c[1] for c in chunks], hidden)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class HeadObjective:
    base: Base
    cache: HiddenCache
    chunks: int                        # cached chunks read per step (global)
    negatives: int
    head: object = field(default=None, repr=False)  # the base's OutputHead (softcap, scale)

    def part(self, rng: np.random.Generator, rank: int, world: int, view: TokenizerView) -> Part | None:
        which = rng.choice(len(self.cache.texts), size=min(self.chunks, len(self.cache.texts)), replace=False)
        which = which[local_slice(len(which), rank, world)]
        encoded = view.sampled.encode_batch([self.cache.texts[c] for c in which])
        hidden, targets = [], []
        for c, (ids, spans) in zip(which.tolist(), encoded):
            ends = self.cache.ends[c]
            starts = np.array([s for s, _ in spans], dtype=np.int64)
            pos = np.minimum(np.searchsorted(ends, starts), len(ends) - 1)
            ok = (ends[pos] == starts) & view.valid[np.asarray(ids, dtype=np.int64)]
            hidden.append(self.cache.hidden[c][torch.as_tensor(pos[ok])])
            targets += np.asarray(ids)[ok].tolist()
        if not targets:
            return None
        device = self.base.old_out.device
        vocab = BatchVocab.build(view, targets, rng, self.negatives, device)
        h = torch.cat(hidden).to(device)
        labels = torch.tensor([vocab.local[t] for t in targets], device=device)
        fixed = self.base.old_out[vocab.fixed_base]

        def loss(rows_in: torch.Tensor, rows_out: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            value = sampled_cross_entropy(h, fixed, rows_out, vocab.offsets, labels, self.head)
            return value, {"head": float(value.detach()), "head_positions": float(len(targets))}

        return Part([view.pieces[s] for s in vocab.new_ids.tolist()], loss, name="head")
