"""Options and results of byte-level scoring and generation; every default is written here once.

Context, stride, device, precision and the start token come from
:class:`tokengraft.measure.options.EvalOptions`, so ``tokengraft eval`` and ``eval --bytes``
read the same flags.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ByteOptions:
    threshold: float = 1e-2    # prune a tokenization whose share of the prefix probability where it ends is below this
    max_depth: int = 4         # scoring: a tokenization more than this many tokens off the canonical one ...
    deep_threshold: float = 0.05  # ... is followed only while its share is at least this
    prompt_tail: int | None = 128  # prompts: tokenizations are explored over their last this many bytes (the ones
                                   # that matter to what follows); before that their own tokens are taken as is
    merge: bool = True         # scoring: a tokenization that reaches a canonical token boundary joins the canonical
                               # one there (assumes the model continues alike after both); False: exact, slower


@dataclass
class GenerateOptions:
    max_bytes: int = 200           # bytes to generate (fewer if the text ends or a stop string appears)
    temperature: float = 0.0       # 0: greedy (the most likely next byte); else sample from p ** (1 / temperature)
    seed: int = 0                  # random seed for sampling
    stop: str | None = None        # stop after generating this string (e.g. "\n")


@dataclass
class ByteScore:
    """Byte-level and canonical token-level scores of one model on one corpus.

    ``byte_logprobs`` holds log P(byte | bytes before it) (nats) for every scored byte of
    every document, in order: what ensembles combine.
    """
    name: str
    bytes: int
    documents: int
    bpb: float                     # byte-level bits per byte
    token_bpb: float               # the canonical tokenization's bits per byte on the same bytes, same windows
    tokens: int                    # canonical tokens
    pruned_bits: float             # sum over pruned tokenizations of -log2(1 - their share where pruned)
    merged_bits: float             # sum over merges into the canonical tokenization of log2(1 + merged / canonical mass)
    evaluated: int                 # tokenizations run through the model, canonical tokens included
    branches: int                  # of those, non-canonical
    seconds: float
    byte_logprobs: Any = field(default=None, repr=False)   # (bytes,) float64 numpy array

    @property
    def bytes_per_second(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "byte_logprobs"}
        out["bytes_per_second"] = self.bytes_per_second
        return out
