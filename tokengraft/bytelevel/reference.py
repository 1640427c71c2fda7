"""The plain byte-level model that the fast path is tested against: it enumerates tokenizations.

A causal LM over tokens defines a distribution over texts: draw tokens until a token that
spells no bytes (EOS or any other special token), then concatenate their bytes. The
probability that the text starts with bytes ``x`` sums over every token sequence whose
tokens before the last spell a proper prefix of ``x`` exactly and whose last token
*covers* the rest of ``x`` (its bytes start with what is left). Those sequences are
disjoint events, so the sum is exact. Here each of them is scored with the model's own
full forward; only tiny models and strings of a few bytes are feasible, which is the point.
"""
from __future__ import annotations

from typing import Any

import torch

END = 256  # index of the "text ends" outcome in a next-byte distribution of 257 entries


class ReferenceByteModel:
    """Exact byte-level probabilities of ``model`` by brute force (tiny models, short strings).

    ``tokens``: the byte view of the vocabulary (``byte_vocab(tok).tokens``); ``context``:
    token ids fed before the text, normally just the start token.
    """

    def __init__(self, model: Any, tokens: list[bytes | None], context: list[int]) -> None:
        self.model = model
        self.tokens = [t or b"" for t in tokens]
        self.context = list(context)
        self._memo: dict[tuple[int, ...], torch.Tensor] = {}

    def next_token_probs(self, seq: tuple[int, ...]) -> torch.Tensor:
        """(V,) float64 next-token probabilities after ``context + seq``, from a full forward."""
        if seq not in self._memo:
            with torch.no_grad():
                logits = self.model(input_ids=torch.tensor([self.context + list(seq)])).logits[0, -1]
            self._memo[seq] = torch.softmax(logits.double(), dim=-1)
        return self._memo[seq]

    def tokenizations(self, data: bytes) -> list[tuple[int, ...]]:
        """Every token sequence whose bytes are exactly ``data`` (empty data: the empty sequence)."""
        if not data:
            return [()]
        out = []
        for v, spelled in enumerate(self.tokens):
            if spelled and data.startswith(spelled):
                out += [(v, *rest) for rest in self.tokenizations(data[len(spelled):])]
        return out

    def prefix_prob(self, data: bytes) -> float:
        """P(the text starts with ``data``)."""
        if not data:
            return 1.0
        total = 0.0
        for cut in range(len(data)):  # the last token starts at byte ``cut``
            rest = data[cut:]
            covering = [v for v, t in enumerate(self.tokens) if t.startswith(rest)]
            if not covering:
                continue
            for seq in self.tokenizations(data[:cut]):
                total += self.sequence_prob(seq) * self.next_token_probs(seq)[covering].sum().item()
        return total

    def sequence_prob(self, seq: tuple[int, ...]) -> float:
        """P(the model's first tokens are ``seq``)."""
        prob = 1.0
        for i, v in enumerate(seq):
            prob *= self.next_token_probs(seq[:i])[v].item()
        return prob

    def end_prob(self, data: bytes) -> float:
        """P(the text is exactly ``data``): spell it, then emit a token without bytes."""
        ends = [v for v, t in enumerate(self.tokens) if not t]
        return sum(self.sequence_prob(seq) * self.next_token_probs(seq)[ends].sum().item()
                   for seq in self.tokenizations(data))

    def next_byte(self, data: bytes) -> torch.Tensor:
        """(257,) float64: P(next byte = b | text starts with ``data``) for b < 256, and P(text ends) last."""
        out = torch.tensor([self.prefix_prob(data + bytes([b])) for b in range(256)] + [self.end_prob(data)],
                           dtype=torch.float64)
        return out / self.prefix_prob(data)
