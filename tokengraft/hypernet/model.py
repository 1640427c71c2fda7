"""The hypernetwork: a small transformer over a token's old pieces that predicts its rows.

ZeTT (Minixhofer et al. 2024, METHODS.md sections 6 and 14), written anew in PyTorch. A new
token ``t`` decomposes into old-tokenizer pieces ``p_1..p_k``. The network reads the base
model's rows of those pieces (input rows, and output rows too when the base is untied),
standardised per dimension, through a few pre-norm transformer layers (bidirectional, a
learned position per piece), takes the output at the first position and predicts two
deltas, one for the input row and one for the output row:

    row_in(t)  = mean_i E_in[p_i]  + std_in  * delta_in(t)
    row_out(t) = mean_i E_out[p_i] + std_out * delta_out(t)

The mean of the pieces is FVT (Gee et al. 2022). The last projection starts at exactly
zero, so an untrained hypernetwork *is* FVT, and training only has to learn the
correction (ZeTT also predicts relative to the base rows). Only the first ``max_pieces``
pieces are read; the FVT mean always uses all of them.

>>> import torch
>>> net = Hypernet(HypernetConfig(d_model=8, hidden=16, layers=1, heads=2))
>>> base = torch.randn(10, 8)
>>> net.set_base_statistics(base, base)
>>> rows_in, rows_out = net.rows(base, base, torch.tensor([[1, 2, 0]]), torch.tensor([[True, True, False]]))
>>> torch.allclose(rows_in, base[[1, 2]].mean(0, keepdim=True))
True
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class HypernetConfig:
    d_model: int                 # width of the base model's embedding rows
    untied: bool = False         # the base has its own output matrix: each piece is read as [E_in; E_out]
    hidden: int = 256            # width of the hypernetwork
    layers: int = 2              # transformer layers
    heads: int = 4               # attention heads
    ffn: int = 1024              # feed-forward width
    max_pieces: int = 16         # pieces read per token (the FVT mean uses all of them)

    def to_json(self) -> dict:
        return asdict(self)


class Hypernet(nn.Module):
    """Predicts (input row, output row) deltas of tokens from their pieces' base rows."""

    def __init__(self, config: HypernetConfig):
        super().__init__()
        self.config = config
        d, width = config.d_model, config.d_model * (2 if config.untied else 1)
        # Standardisation of the base rows (set from the base model before training; saved with the weights).
        self.register_buffer("in_mean", torch.zeros(width))
        self.register_buffer("in_std", torch.ones(width))
        self.register_buffer("out_std", torch.ones(2 * d))
        self.input = nn.Linear(width, config.hidden)
        self.position = nn.Embedding(config.max_pieces, config.hidden)
        layer = nn.TransformerEncoderLayer(config.hidden, config.heads, config.ffn, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.hidden)
        self.head = nn.Linear(config.hidden, 2 * d)
        nn.init.normal_(self.position.weight, std=0.02)
        nn.init.zeros_(self.head.weight)  # untrained = FVT, exactly
        nn.init.zeros_(self.head.bias)

    def set_base_statistics(self, old_in: torch.Tensor, old_out: torch.Tensor) -> None:
        """Per-dimension mean and std of the base rows: the scale of what is read and predicted."""
        with torch.no_grad():
            features = torch.cat([old_in, old_out], dim=1) if self.config.untied else old_in
            self.in_mean.copy_(features.float().mean(0))
            self.in_std.copy_(features.float().std(0).clamp_min(1e-6))
            self.out_std.copy_(torch.cat([old_in.float().std(0), old_out.float().std(0)]).clamp_min(1e-6))

    def deltas(self, old_in: torch.Tensor, old_out: torch.Tensor, pieces: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
        """(N, 2d) standardised deltas for ``pieces`` (N, L) long with ``mask`` (N, L) bool (True = a piece).

        Only the first ``max_pieces`` columns are read; every row needs at least one piece.
        """
        pieces, mask = pieces[:, :self.config.max_pieces], mask[:, :self.config.max_pieces]
        rows = old_in[pieces]
        if self.config.untied:
            rows = torch.cat([rows, old_out[pieces]], dim=-1)
        x = self.input((rows.to(self.in_mean.dtype) - self.in_mean) / self.in_std)
        x = x + self.position.weight[: pieces.shape[1]]
        x = self.encoder(x, src_key_padding_mask=~mask)
        return self.head(self.norm(x[:, 0]))

    def forward(self, old_in: torch.Tensor, old_out: torch.Tensor, pieces: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        return self.deltas(old_in, old_out, pieces, mask)

    def rows(self, old_in: torch.Tensor, old_out: torch.Tensor, pieces: torch.Tensor, mask: torch.Tensor,
             means: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """((N, d), (N, d)) predicted input and output rows: the pieces' mean plus the scaled delta.

        ``means``: the FVT means when the caller computed them over more pieces than ``pieces`` holds.
        """
        if means is None:
            weight = mask.to(old_in.dtype)[..., None]
            count = weight.sum(1).clamp_min(1.0)
            means = ((old_in[pieces] * weight).sum(1) / count, (old_out[pieces] * weight).sum(1) / count)
        delta = self.deltas(old_in, old_out, pieces, mask) * self.out_std
        d = self.config.d_model
        return means[0] + delta[:, :d].to(means[0].dtype), means[1] + delta[:, d:].to(means[1].dtype)


def pad_pieces(pieces: list[list[int]], max_len: int | None = None,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """((N, L) long, (N, L) bool): decompositions padded with 0, and the mask of real pieces.

    ``max_len`` cuts longer decompositions. Every decomposition must have at least one piece.

    >>> ids, mask = pad_pieces([[5], [1, 2, 3]])
    >>> ids.tolist(), mask.sum(1).tolist()
    ([[5, 0, 0], [1, 2, 3]], [1, 3])
    """
    length = max(len(p) for p in pieces)
    if max_len is not None:
        length = min(length, max_len)
    ids = torch.zeros(len(pieces), length, dtype=torch.long)
    mask = torch.zeros(len(pieces), length, dtype=torch.bool)
    for i, p in enumerate(pieces):
        p = p[:length]
        ids[i, :len(p)] = torch.tensor(p, dtype=torch.long)
        mask[i, :len(p)] = True
    return ids.to(device), mask.to(device)
