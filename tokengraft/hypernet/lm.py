"""ZeTT's objective: the frozen base model's next-token loss on text in a sampled tokenizer's tokens.

Rows of ``seq_len`` tokens are packed from random documents, each document led by the
base model's start token. The base model reads them with the batch's rows installed in its
own embedding module (``torch.func.functional_call``, so an architecture's embedding scale,
e.g. Gemma's, applies as usual), the body stays frozen and gradients flow through it into
the predicted input rows; the logits use the predicted output rows (see
:mod:`~tokengraft.hypernet.textual` for the softmax). Documents that hold a token the base
cannot spell are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from tokengraft.hypernet.base import Base
from tokengraft.hypernet.objectives import Part, local_slice, sampled_cross_entropy
from tokengraft.hypernet.textual import START, BatchVocab, TokenizerView


@dataclass
class LmObjective:
    base: Base
    texts: Sequence[str]
    rows: int                          # sequences per step (global)
    seq_len: int                       # tokens per sequence, start tokens included
    negatives: int
    autocast: bool = False             # bf16 autocast of the body (CUDA)
    head: object = field(default=None, repr=False)

    def pack(self, rng: np.random.Generator, view: TokenizerView) -> list[list[int]]:
        """``rows`` sequences of exactly ``seq_len`` positions (START or sampled ids)."""
        out: list[list[int]] = []
        tries = 0
        while len(out) < self.rows:
            docs = rng.integers(0, len(self.texts), size=4 * self.rows)
            encoded = view.sampled.encode_batch([self.texts[i][: self.seq_len * 12] for i in docs.tolist()])
            row: list[int] = []
            for ids, _ in encoded:
                if not ids or not bool(view.valid[np.asarray(ids)].all()):
                    continue
                row += [START, *ids]
                if len(row) >= self.seq_len:
                    out.append(row[: self.seq_len])
                    row = []
                    if len(out) == self.rows:
                        break
            tries += 1
            if tries > 50 and not out:
                raise RuntimeError("no document of the training text can be read by the sampled tokenizer")
        return out

    def part(self, rng: np.random.Generator, rank: int, world: int, view: TokenizerView) -> Part:
        rows = self.pack(rng, view)
        rows = rows[local_slice(len(rows), rank, world)]
        flat = [t for r in rows for t in r[1:] if t != START]
        device = self.base.old_in.device
        vocab = BatchVocab.build(view, flat, rng, self.negatives, device)
        n_fixed = len(vocab.fixed_base)
        start_index = n_fixed + len(vocab.new_ids)  # the input table has the start row last
        table_ids = torch.tensor([[start_index if t == START else vocab.local[t] for t in r] for r in rows],
                                 device=device)
        inputs, labels = table_ids[:, :-1], table_ids[:, 1:].clone()
        labels[labels == start_index] = -100  # a document boundary is not predicted
        keep = labels.reshape(-1) >= 0
        base = self.base
        fixed_in, fixed_out = base.old_in[vocab.fixed_base], base.old_out[vocab.fixed_base]
        start_row = base.old_in[base.start_id][None]
        n_needed = len(np.unique([t for t in flat if view.copied[t] < 0]))

        def loss(rows_in: torch.Tensor, rows_out: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            table = torch.cat([fixed_in, rows_in.to(fixed_in.dtype), start_row])
            # negatives' input rows are in the table too; no input position points at them
            embeds = torch.func.functional_call(base.model.get_input_embeddings(), {"weight": table}, (inputs,))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast):
                hidden = base.model.base_model(inputs_embeds=embeds, use_cache=False)[0]
            h = hidden.reshape(-1, hidden.shape[-1])[keep]
            value = sampled_cross_entropy(h, fixed_out, rows_out, vocab.offsets, labels.reshape(-1)[keep], self.head)
            return value, {"lm": float(value.detach()), "lm_new_tokens": float(n_needed)}

        return Part([view.pieces[s] for s in vocab.new_ids.tolist()], loss, name="lm")
