"""A causal LM and its tokenizer as a model over bytes: :class:`ByteModel`.

>>> bm = ByteModel(model, tokenizer)                                # doctest: +SKIP
>>> p = bm.next_byte(b"The quick bro")                              # doctest: +SKIP
>>> chr(int(p[:256].argmax()))                                      # doctest: +SKIP
'w'
>>> bm.log_prob(b"wn fox", prefix=b"The quick bro")                 # doctest: +SKIP

Every text starts after the start token that plain scoring uses (see
:mod:`tokengraft.measure.start`). A SentencePiece tokenizer that adds a dummy space before
the text spells every text with a leading space: the byte model then works on that space
plus the text and conditions on the space.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tokengraft.bytelevel.lattice import ROWS, Lattice, Limits
from tokengraft.bytelevel.options import ByteOptions
from tokengraft.bytelevel.stream import distribution, extend
from tokengraft.bytelevel.tree import Query, TreeEvaluator
from tokengraft.bytelevel.trie import VocabTrie
from tokengraft.errors import TokengraftError

class ByteModel:
    """Exact (up to pruning) byte-level probabilities of ``model`` with ``tokenizer``.

    Use it inside ``torch.inference_mode()`` (``tokengraft.measure.runtime.scoring`` sets that up).
    """

    def __init__(self, model: Any, tokenizer: Any, options: ByteOptions | None = None, start: str = "auto",
                 device: torch.device | str | None = None, context: int | None = None,
                 stride: int | None = None) -> None:
        from tokengraft.measure.inputs import resolve_context
        from tokengraft.measure.options import EvalOptions
        from tokengraft.lm.start import resolve_start_token
        from tokengraft.vocab import byte_vocab

        self.model, self.tokenizer = model, tokenizer
        self.options = options or ByteOptions()
        if not 0.0 <= self.options.threshold <= 0.5:
            raise TokengraftError(f"byte threshold {self.options.threshold} must be between 0 and 0.5; pass e.g. --byte-threshold 0.001")
        self.vocab = byte_vocab(tokenizer)
        self.trie = VocabTrie.from_tokens(self.vocab.tokens)
        self.lead = b" " if self.vocab.prefix_space else b""
        self.start_token, self.start_id = resolve_start_token(tokenizer, start)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.evaluator = TreeEvaluator(model, self.device)
        self.context, self.stride = resolve_context(model, EvalOptions(context=context, stride=stride))

    def canonical(self, data: bytes) -> list[int]:
        """The tokenizer's own ids for ``data`` (which must spell it exactly)."""
        from tokengraft.vocab import encode_bytes, token_bytes

        ids = encode_bytes(self.tokenizer, data, errors="best")
        if token_bytes(self.vocab, ids) != data:
            raise TokengraftError(f"the tokenizer cannot spell the bytes {data[:40]!r} exactly (a byte outside its "
                                  "vocabulary?); byte-level probabilities need a tokenizer that can")
        return ids

    def run(self, data: bytes, final: bool, before: list[int] | None = None, ids: list[int] | None = None,
            min_first: int = 0, tail: int | None = None) -> Run:
        """The settled lattice of the exact bytes ``data`` after the tokens ``before`` (default: the start token).

        ``ids``: the tokenization run first (default: the canonical one); ``min_first``: the
        first token must cover that many bytes; ``tail``: explore tokenizations of the last
        ``tail`` bytes only, the canonical tokens before them are taken as they are. ``final``
        texts are scored in windows as in plain scoring: each feeds up to ``context`` tokens, and
        the alternatives of the tokens it scores are evaluated in rounds on top of its cache. A
        growing text must fit one window.
        """
        from tokengraft.measure.windows import Window, sliding_windows

        before = list(before or [self.start_id])
        ids = self.canonical(data) if ids is None else ids
        offset = 0
        if tail is not None:
            ends = np.cumsum([len(self.vocab.tokens[i] or b"") for i in ids])
            head = int(np.searchsorted(ends, len(data) - tail, side="right"))  # tokens wholly before the tail
            offset = int(ends[head - 1]) if head else 0
            before, ids = before + ids[:head], ids[head:]
        o = self.options
        limits = Limits(o.threshold, o.max_depth if final else 1 << 30, o.deep_threshold, self.context,
                        merge=o.merge and final, min_first=min_first)
        self.evaluator.reset()
        lattice = Lattice(self.evaluator, self.trie, data[offset:], limits, final, keep_probs=not final)
        chain = lattice.add_canonical(before[-1], ids, self.vocab.tokens)
        seq, root = [*before, *ids], len(before) - 1
        if final:
            windows = sliding_windows(len(seq) - 1, self.context, self.stride)
        elif len(seq) <= self.context:
            windows = [Window(0, len(seq), 0)]
        else:
            raise TokengraftError(f"the prompt is {len(seq)} tokens long, more than the context of {self.context}; "
                                  "shorten it")
        for w in windows:
            self.evaluator.reset()
            hidden = self.evaluator.feed([Query(seq[j], j - w.begin, j - w.begin + 1) for j in range(w.begin, w.end)])
            for j in range(max(w.begin, root), w.end):
                node = lattice.nodes[chain[j - root]]
                node.slot = node.position = j - w.begin
            for lo in range(max(w.score_from, root), w.end, ROWS):
                hi = min(lo + ROWS, w.end)
                lp = self.evaluator.logprobs(hidden[lo - w.begin:hi - w.begin]).cpu()
                for j in range(lo, hi):
                    lattice.absorb(chain[j - root], lp[j - lo])
            lattice.settle()
        return Run(lattice, chain, offset)

    def start(self, prompt: bytes = b"") -> ByteState:
        """A growing text that starts as ``prompt`` (it may end mid-token or mid-character)."""
        return ByteState(self, prompt)

    def next_byte(self, prefix: bytes = b"") -> torch.Tensor:
        """(257,) float64: P(next byte | text starts with ``prefix``); the last entry is "the text ends"."""
        return self.start(prefix).distribution()

    def log_prob(self, data: bytes, prefix: bytes = b"") -> float:
        """log P(the text continues with ``data`` | it starts with ``prefix``), nats."""
        tail = None if self.options.prompt_tail is None else self.options.prompt_tail + len(data)
        run = self.run(self.lead + prefix + data, final=True, tail=tail)
        kept, _ = run.lattice.prefix_logmass()
        return float(kept[-1] - kept[len(self.lead) + len(prefix) - run.offset])


@dataclass
class Run:
    lattice: Lattice
    chain: list[int]    # nodes of the tokenization run first: the root, then one per token
    offset: int         # the lattice's text starts at this byte of the data (see ``tail``)


class ByteState:
    """A text being extended byte by byte, and its next-byte distribution."""

    def __init__(self, byte_model: ByteModel, prompt: bytes) -> None:
        self.byte_model = byte_model
        # the prompt's canonical tokens are always kept; what follows is pruned by share only
        data = byte_model.lead + prompt
        run = byte_model.run(data, final=False, tail=byte_model.options.prompt_tail)
        self.lattice, self.head = run.lattice, data[:run.offset]

    @property
    def text(self) -> bytes:
        """The prompt and every byte appended since."""
        return (self.head + bytes(self.lattice.text))[len(self.byte_model.lead):]

    def distribution(self) -> torch.Tensor:
        """(257,) float64 next-byte probabilities; the last entry is "the text ends"."""
        return distribution(self.lattice)

    def append(self, data: bytes) -> None:
        extend(self.lattice, data)
        self.lattice.settle()
