"""Input rows fitted by hidden-state matching (Token Distillation; MATT for the early exit).

The body, reading the new tokens, should compute what it computed after reading the old
pieces of the same bytes. The same text is tokenized both ways; at every byte offset where
both tokenizations end a token (a chunk end of :mod:`tokengraft.heal.alignment`), the
student's hidden state after its token is compared with the teacher's after its own. Only
the student's input rows get gradients; the body stays frozen. Matching after the first
``k`` layers instead of all of them costs ``k / L`` of the forward and backward passes.

Two losses: ``mse`` on states scaled per dimension by the teacher's root mean square (so
the few huge residual dimensions do not drown the rest), and ``kl`` (final states only):
the teacher's next-token distribution over the OLD vocabulary against the student state
read through the old output head, i.e. "predict what the base model predicts here".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

Chunk = tuple[int, int, int, int]  # (s0, s1, t0, t1): student tokens s0:s1 cover teacher tokens t0:t1


def aligned_positions(chunks: Sequence[Sequence[Chunk]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, 2) student and (P, 2) teacher ``(row, position)`` pairs: the last token of every chunk
    on each side (``chunks[b]``: the chunks of row b), where both have read the same bytes.

    >>> [t.tolist() for t in aligned_positions([[(1, 2, 1, 3), (2, 3, 3, 4)]])]
    [[[0, 1], [0, 2]], [[0, 2], [0, 3]]]
    """
    student, teacher = [], []
    for b, row in enumerate(chunks):
        for _s0, s1, _t0, t1 in row:
            student.append((b, s1 - 1))
            teacher.append((b, t1 - 1))
    return torch.tensor(student, dtype=torch.long).view(-1, 2), torch.tensor(teacher, dtype=torch.long).view(-1, 2)


def pick(states: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """(P, d) rows of ``states`` (B, T, d) at ``where`` (P, 2)."""
    return states[where[:, 0], where[:, 1]]


def mse_loss(student: torch.Tensor, teacher: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mean over positions and dimensions of ((s - t) / scale)^2; ``scale`` (d,) > 0."""
    return (((student.float() - teacher.float()) / scale) ** 2).mean()


def kl_loss(student: torch.Tensor, teacher: torch.Tensor, old_head: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher || student) of next-token distributions over the old vocabulary, both
    read through the old head ``old_head`` (V_old, d) from final states (P, d)."""
    t = torch.log_softmax(F.linear(teacher.float(), old_head), dim=-1)
    s = torch.log_softmax(F.linear(student.float(), old_head), dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def rms_scale(teacher: torch.Tensor, floor: float = 1e-2) -> torch.Tensor:
    """(d,) per-dimension root mean square of teacher states (P, d), floored at ``floor`` times its mean."""
    rms = teacher.float().pow(2).mean(dim=0).sqrt()
    return rms.clamp(min=float(rms.mean()) * floor)


@dataclass
class InputFitOptions:
    layer: int | None = None       # match after this many layers (None: a third of them, MATT's choice)
    loss: str = "mse"              # mse | kl (kl: final states only, through the old head)
    lr: float = 3e-3               # Adam step size on the input rows
    only_new: bool = False         # leave the rows copied from the base model as they are


def pad_rows(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids right-padded with 0 and their (B, T) attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def match_layer(options: InputFitOptions, num_layers: int) -> int:
    return options.layer if options.layer is not None else max(1, round(num_layers / 3))


def fit_input_rows(student: Any, teacher: Any, batches: Iterator[tuple[list[list[int]], list[list[int]], list[list[Chunk]]]],
                   options: InputFitOptions | None = None, deadline: float | None = None,
                   frozen: torch.Tensor | None = None, max_steps: int | None = None) -> list[dict[str, float]]:
    """Train ``student``'s input rows (in place) to reproduce ``teacher``'s hidden states.

    ``batches`` yields (student rows, teacher rows, chunks per row) of the same texts; ``frozen``
    (V,) bool rows kept as they are. Stops at ``deadline`` (``time.perf_counter()``) or after
    ``max_steps``; returns the loss curve (one entry per step). The student's other parameters
    are left frozen as found, its input matrix trainable only during the call.
    """
    from tokengraft.fit.states import decoder_layers, layer_states

    options = options or InputFitOptions()
    if options.loss not in ("mse", "kl"):
        raise ValueError(f"unknown input-fit loss {options.loss!r}; use mse or kl")
    layer = match_layer(options, len(decoder_layers(student)))
    if options.loss == "kl":
        layer = len(decoder_layers(student))
    emb = student.get_input_embeddings().weight
    device = emb.device
    old_head = teacher.get_output_embeddings().weight.detach().float() if options.loss == "kl" else None
    grads = [p.requires_grad for p in student.parameters()]
    for p in student.parameters():
        p.requires_grad_(False)
    emb.requires_grad_(True)
    keep = None if frozen is None else (~frozen).to(device, emb.dtype)[:, None]
    optimizer = torch.optim.Adam([emb], lr=options.lr)
    curve: list[dict[str, float]] = []
    scale = None
    try:
        for step, (rows_s, rows_t, chunks) in enumerate(batches):
            if (max_steps is not None and step >= max_steps) or (deadline is not None and time.perf_counter() > deadline):
                break
            t0 = time.perf_counter()
            ids_s, mask_s = pad_rows(rows_s)
            ids_t, mask_t = pad_rows(rows_t)
            where_s, where_t = aligned_positions(chunks)
            with torch.no_grad():
                target = pick(layer_states(teacher, ids_t.to(device), layer, mask_t.to(device)), where_t.to(device))
            got = pick(layer_states(student, ids_s.to(device), layer, mask_s.to(device)), where_s.to(device))
            if options.loss == "kl":
                loss = kl_loss(got, target, old_head)
            else:
                scale = rms_scale(target) if scale is None else scale  # fixed after the first batch
                loss = mse_loss(got, target, scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if keep is not None:
                emb.grad.mul_(keep)
            optimizer.step()
            curve.append({"step": step + 1, "loss": float(loss.detach()), "positions": int(where_s.shape[0]),
                          "tokens": int(mask_s.sum()), "seconds": time.perf_counter() - t0})
    finally:
        for p, g in zip(student.parameters(), grads):
            p.requires_grad_(g)
    return curve
