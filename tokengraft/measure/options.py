"""Options and results of the bits-per-byte meter.

The CLI (`tokengraft eval`) maps its flags one-to-one onto :class:`EvalOptions`, so every
default is written here and nowhere else.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DTYPES = ("float32", "bfloat16")
# Token budgets per batch when EvalOptions.batch_tokens is None. A GPU needs big batches to
# be busy (plain SmolLM2-135M scoring on an H100 gains up to 64k tokens a batch); a CPU is
# fastest with small ones (SmolLM2-135M, 2 cores: 4096 -> 150 tokens/s, 65536 -> 57).
DEFAULT_BATCH_TOKENS = {"cpu": 4096, "cuda": 131072}
# The context used when EvalOptions.context is None: the model's max_position_embeddings,
# capped here because longer windows cost quadratic attention for little change in BPB.
MAX_DEFAULT_CONTEXT = 2048


@dataclass
class EvalOptions:
    max_bytes: int | None = None   # score at most this many UTF-8 bytes per corpus (None: all)
    batch_tokens: int | None = None  # token budget per batch (rows x padded length); None: DEFAULT_BATCH_TOKENS[device]
    context: int | None = None     # window length in tokens; None: the model's max positions, at most MAX_DEFAULT_CONTEXT
    stride: int | None = None      # new tokens scored per window after the first; None: context // 2
    device: str = "cpu"            # "cpu", "cuda", "cuda:1", ...; the model is moved there
    dtype: str = "float32"         # "float32" or "bfloat16" (autocast when the weights are float32)
    start: str = "auto"            # token each document starts with: "auto" | "bos" | "eos" | a literal token

    def validate(self) -> None:
        """Raise a one-line TokengraftError for an option no run could use (before any loading)."""
        from tokengraft.assets.weights import check_device
        from tokengraft.errors import TokengraftError

        positive = {"max_bytes": "bytes, e.g. --max-bytes 200000", "batch_tokens": "tokens, e.g. --batch-tokens 4096",
                    "context": "tokens (leave it out for the model's own, at most 2048)",
                    "stride": "tokens (leave it out for half the context)"}
        for name, unit in positive.items():
            value = getattr(self, name)
            if value is not None and value < 1:
                flag = "--" + name.replace("_", "-")
                raise TokengraftError(f"{flag} must be a positive number of {unit}; got {value}")
        if self.context is not None and self.stride is not None and self.stride > self.context:
            raise TokengraftError(f"--stride {self.stride} is larger than --context {self.context}; "
                                  "a window cannot score more tokens than it holds")
        if self.dtype not in DTYPES:
            raise TokengraftError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}; pass --dtype float32 or bfloat16")
        check_device(self.device)


@dataclass
class EvalResult:
    """Bits per byte of one corpus, or the total over several (then ``parts`` has one per corpus).

    ``tokens`` counts scored tokens: every token of every document once, the start token not
    included; ``tokens_per_second`` is scored tokens over wall time (tokenizing included, and
    ``tokenize_seconds`` of it spent tokenizing). A corpus's result also keeps each scored
    document's id, bytes and bits (in document order; a total over several corpora leaves them
    to its parts), so two models' results on the same text can be compared document by document
    (:mod:`tokengraft.measure.compare`).
    """

    name: str
    bpb: float
    nll_bits: float
    tokens: int
    bytes: int
    tokens_per_byte: float
    seconds: float
    tokens_per_second: float
    documents: int
    start_token: str = ""
    tokenize_seconds: float = 0.0
    parts: list[EvalResult] = field(default_factory=list)
    document_ids: list[str] = field(default_factory=list)
    document_bytes: list[int] = field(default_factory=list)
    document_bits: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_result(name: str, nll_bits: float, tokens: int, num_bytes: int, seconds: float,
                documents: int, start_token: str = "", parts: list[EvalResult] | None = None,
                tokenize_seconds: float = 0.0, document_ids: list[str] | None = None,
                document_bytes: list[int] | None = None, document_bits: list[float] | None = None) -> EvalResult:
    """Fill the derived fields (bpb, tokens per byte, tokens per second) from the sums."""
    return EvalResult(
        name=name,
        bpb=nll_bits / num_bytes if num_bytes else float("nan"),
        nll_bits=nll_bits,
        tokens=tokens,
        bytes=num_bytes,
        tokens_per_byte=tokens / num_bytes if num_bytes else float("nan"),
        seconds=seconds,
        tokens_per_second=tokens / seconds if seconds > 0 else float("nan"),
        documents=documents,
        start_token=start_token,
        tokenize_seconds=tokenize_seconds,
        parts=list(parts or []),
        document_ids=list(document_ids or []),
        document_bytes=list(document_bytes or []),
        document_bits=list(document_bits or []),
    )


def combine(results: list[EvalResult], name: str = "total") -> EvalResult:
    """One result over several corpora: sums of bits, bytes, tokens and time; ``parts`` keeps each.
    Over one corpus it also keeps that corpus's documents (over several, they stay in ``parts``)."""
    starts = {r.start_token for r in results}
    only = results[0] if len(results) == 1 else None
    return make_result(
        name,
        nll_bits=sum(r.nll_bits for r in results),
        tokens=sum(r.tokens for r in results),
        num_bytes=sum(r.bytes for r in results),
        seconds=sum(r.seconds for r in results),
        documents=sum(r.documents for r in results),
        start_token=starts.pop() if len(starts) == 1 else "",
        parts=results,
        tokenize_seconds=sum(r.tokenize_seconds for r in results),
        document_ids=only.document_ids if only else None,
        document_bytes=only.document_bytes if only else None,
        document_bits=only.document_bits if only else None,
    )
