"""Options of ``tokengraft tokenizer train``; the CLI maps its flags one-to-one onto these."""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("bpe", "unigram", "superbpe")

# SuperBPE (Liu et al. 2025) switches from ordinary to superword merges at a transition
# vocabulary size; at 200k the paper's best transitions sat at 0.8-0.9 of the final size.
# 0.8 leaves a smaller vocabulary (32k) enough room for a few thousand superwords.
DEFAULT_TRANSITION_SHARE = 0.8


@dataclass
class TrainOptions:
    """How to train a target tokenizer.

    ``vocab_size`` counts everything: special tokens, the 256 byte symbols and merges.
    ``base`` (a tokenizer spec: built-in name, local folder) lends its special tokens and
    conventions; without it the result is a GPT-2 style byte-level BPE with
    ``<|endoftext|>``. ``transition`` (superbpe only) is the stage-1 vocabulary size;
    ``None`` means ``DEFAULT_TRANSITION_SHARE * vocab_size``. ``max_words`` caps the words a
    superword token may span. Pairs seen fewer than ``min_frequency`` times are never merged:
    1 fills the requested size even on a few MB of repetitive text (at 2, 4.8 MB of French
    LibreOffice help saturates at 24.3k BPE tokens); raise it to keep one-off merges out.
    ``max_bytes`` trains on a seeded random sample of documents
    of about that many bytes (``seed`` picks the sample; training itself is deterministic).
    """

    vocab_size: int = 32000             # every token counted: specials, the 256 bytes, merges
    kind: str = "bpe"                   # bpe | unigram | superbpe
    base: str | None = None             # tokenizer whose specials and conventions to copy; None: GPT-2 style byte-level
    transition: int | None = None       # superbpe: stage-1 vocabulary size; None: DEFAULT_TRANSITION_SHARE x vocab size
    max_words: int = 4                  # superbpe: most words one token may span
    min_frequency: int = 1              # pairs seen fewer times are never merged
    max_bytes: int | None = None        # train on a seeded random sample of about this many bytes of documents
    seed: int = 0                       # picks the sample (training itself is deterministic)
    keep_unused_specials: bool = False  # also copy the base's <unusedN> placeholders
    show_progress: bool = True          # progress bars

    def validate(self) -> None:
        """One-line errors for options no training could use (the corpus is checked after loading)."""
        from tokengraft.errors import TokengraftError

        if self.kind not in KINDS:
            raise TokengraftError(f"unknown tokenizer kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise TokengraftError(f"--max-bytes must be a positive number of bytes, got {self.max_bytes}; "
                                  "leave it out to train on the whole corpus")
        if self.min_frequency < 1:
            raise TokengraftError(f"--min-frequency must be at least 1, got {self.min_frequency}")

    def transition_size(self) -> int:
        if self.transition is not None:
            return self.transition
        return int(round(DEFAULT_TRANSITION_SHARE * self.vocab_size))
