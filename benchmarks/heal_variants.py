"""Heal variants measured on dev text and not adopted (sessions 22 and 24): `tokengraft heal` with
one change patched in, so that each negative result can be re-run.

    python3 benchmarks/heal_variants.py emb-lr=6e-3 --model out/de-graft --corpus libreoffice:de:fit --steps 173
    python3 benchmarks/heal_variants.py tied=both ...     # or tied=input
    python3 benchmarks/heal_variants.py spell=2500 ...
    python3 benchmarks/heal_variants.py dropout=0.1 ...   # or split-first=0.1, split-input=0.1

- ``emb-lr=X``: the embedding matrices step at X, the LoRA adapters at ``--lr``.
- ``tied=both``: an untied transplant's input and output rows step with the mean of their two
  gradients, over the union of the rows the batch reads and predicts (plus the hard negatives):
  one change for both, as a tied model's rows move (SmolLM2 is tied; its transplant is not).
  ``tied=input``: only the input rows take the mean; the output rows step as before.
- ``spell=N``: the heal text also holds lists of the base tokenizer's first N words (" " + at
  least three letters, in id order) that the new tokenizer spells in two or more tokens, 50 to a
  document: the body reads " L" "ic" "en" "se" for " License".
- ``dropout=P``: BPE-dropout on the training stream (each merge skipped with probability P, the
  tokenizers library's own): the body reads and predicts words in more pieces than the canonical
  encoding gives; the saved tokenizer and the evaluation stay canonical.
- ``split-first=P`` / ``split-input=P``: StochasTok-style splits (Sims et al. 2025): each token
  of the training stream becomes, with probability P, two tokens that spell its bytes (uniform
  over the vocabulary's such pairs), each half again with probability P; seeded by the document's
  bytes. No loss at the targets a split puts where the canonical encoding has another token: the
  first piece of each split token (``split-first``: the pieces that continue it are still
  predicted), or every piece (``split-input``: the body reads pieces, predicts canonical tokens).

Session 22's ``cont-weight=W`` (the loss counts W times at targets that continue a word) became
``tokengraft heal --continuation-weight W`` in session 23.
"""
from __future__ import annotations

import random
import sys
import zlib
from types import SimpleNamespace

import numpy as np


def fail(message: str) -> None:
    """One line on stderr and exit status 2, as tokengraft's bad-input errors."""
    print(f"heal_variants: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse(spec: str) -> tuple[str, str]:
    """``name=value`` of a known variant.

    >>> parse("tied=input")
    ('tied', 'input')
    """
    name, _, value = spec.partition("=")
    ok = {"emb-lr": lambda v: float(v) > 0, "tied": lambda v: v in ("both", "input"), "spell": lambda v: int(v) > 0,
          "dropout": lambda v: 0 < float(v) < 1, "split-first": lambda v: 0 < float(v) < 1,
          "split-input": lambda v: 0 < float(v) < 1}
    try:
        if name in ok and ok[name](value):
            return name, value
    except ValueError:
        pass
    fail(f"unknown variant {spec!r}: use emb-lr=X, tied=both|input, spell=N, dropout=P, split-first=P or split-input=P")


def spelled_words(old, new, n: int) -> list[str]:
    """The first ``n`` tokens of ``old`` that are " " + 3 or more letters and that ``new`` spells in 2+ tokens."""
    words = []
    for i in range(len(old)):
        s = old.decode([i])
        if s.startswith(" ") and len(s) >= 4 and s[1:].isalpha() and len(new.encode(s, add_special_tokens=False)) >= 2:
            words.append(s)
            if len(words) == n:
                break
    return words


def patch_emb_lr(lr: float) -> None:
    from tokengraft.heal import modes

    orig = modes.param_groups

    def param_groups(model, weight_decay):
        groups = orig(model, weight_decay)
        emb = {id(p) for p in modes.embedding_params(modes.unwrap(model))}
        rest = [p for p in groups[1]["params"] if id(p) not in emb]
        embs = [p for p in groups[1]["params"] if id(p) in emb]
        return [groups[0], {"params": rest, "weight_decay": 0.0}, {"params": embs, "weight_decay": 0.0, "lr": lr}]

    modes.param_groups = param_groups


def patch_tied(which: str) -> None:
    from tokengraft.heal import sparse_rows as sr

    orig = sr.SparseRows.plan

    def plan(self, rows):
        a, b = self.read_param, self.predict_param
        if a is b or a.grad is None or b.grad is None:
            return orig(self, rows)
        reads, predicts = sr.batch_ids(rows)
        read, predict = sr.used_rows(reads, a.shape[0]), sr.used_rows(predicts, b.shape[0])
        if self.negatives:
            predict |= sr.hard_negatives(b.grad, predict, self.negatives)
        mean = 0.5 * (a.grad + b.grad)
        a.grad.copy_(mean)
        if which == "both":
            b.grad.copy_(mean)
            return [(a, read | predict), (b, read | predict)]
        return [(a, read | predict), (b, predict)]

    sr.SparseRows.plan = plan


def patch_spell(n: int, model: str) -> None:
    from tokengraft.assets import load_tokenizer
    from tokengraft.heal import setup

    orig = setup._texts

    def _texts(specs, what):
        corpora = orig(specs, what)
        if what != "training":
            return corpora
        words = spelled_words(load_tokenizer("smollm2-135m"), load_tokenizer(model), n)
        random.Random(0).shuffle(words)
        docs = [SimpleNamespace(text="".join(words[k:k + 50])) for k in range(0, len(words), 50)]
        print(f"spelling lists: {len(words)} words in {len(docs)} documents", flush=True)
        return [*corpora, SimpleNamespace(documents=docs, name="spelling", num_bytes=1)]

    setup._texts = _texts


def _keeping_tokenizer(plain_encoder):
    """``plain_encoder`` whose encoders remember their tokenizer (the patched streams re-encode with it)."""

    def encoder(tokenizer):
        encode = plain_encoder(tokenizer)
        encode.tokenizer = tokenizer
        return encode

    return encoder


def patch_dropout(p: float) -> None:
    import copy

    from tokengraft.heal import setup

    orig_stream, orig_encoder = setup.PackedStream, setup.plain_encoder

    def stream(texts, encode, *args, **kwargs):  # encode: from setup.plain_encoder, patched below
        tokenizer = copy.deepcopy(encode.tokenizer)
        tokenizer.backend_tokenizer.model.dropout = p
        print(f"BPE-dropout {p} on the training stream", flush=True)
        return orig_stream(texts, orig_encoder(tokenizer), *args, **kwargs)

    setup.PackedStream, setup.plain_encoder = stream, _keeping_tokenizer(orig_encoder)


class Splits:
    """Every way to spell a token as two tokens: ``left[k], right[k]`` for ``k`` in ``start[t]:start[t + 1]``.

    >>> s = Splits.of([b"a", b"b", b"ab", b"abb", None])
    >>> [(int(a), int(b)) for a, b in zip(s.left, s.right)], s.start.tolist()
    ([(0, 1), (2, 1)], [0, 0, 0, 1, 2, 2])
    """

    def __init__(self, start, left, right):
        self.start, self.left, self.right = start, left, right
        self.count = np.diff(start)

    @classmethod
    def of(cls, table):
        """From a byte view (None: a special or unused id, never split nor a piece)."""
        ids = {}
        for i, data in enumerate(table):
            if data:
                ids.setdefault(data, i)
        start, left, right = [0], [], []
        for data in table:
            for k in range(1, len(data) if data else 0):
                a, b = ids.get(data[:k]), ids.get(data[k:])
                if a is not None and b is not None:
                    left.append(a)
                    right.append(b)
            start.append(len(left))
        return cls(np.asarray(start, np.int64), np.asarray(left, np.int64), np.asarray(right, np.int64))

    def split(self, ids, p, rng, depth=8):
        """``ids`` with each splittable token split with probability ``p``, then its halves, ``depth`` times at most.

        >>> Splits.of([b"a", b"b", b"ab"]).split(np.array([2, 0, 2]), 1.0, np.random.default_rng(0)).tolist()
        [0, 1, 0, 0, 1]
        """
        ids = np.asarray(ids, np.int64)
        fresh = np.ones(len(ids), bool)  # tokens not yet given their chance: all, then the new halves
        for _ in range(depth):
            n = self.count[ids]
            hit = fresh & (n > 0) & (rng.random(len(ids)) < p)
            if not hit.any():
                break
            k = self.start[ids[hit]] + (rng.random(int(hit.sum())) * n[hit]).astype(np.int64)
            ids = np.repeat(ids, 1 + hit)
            at = np.flatnonzero(hit) + np.cumsum(hit)[hit] - 1  # where each split token's left half lands
            ids[at], ids[at + 1] = self.left[k], self.right[k]
            fresh = np.zeros(len(ids), bool)
            fresh[at] = fresh[at + 1] = True
        return ids


def hidden_pieces(canonical, split, size, which):
    """True at the tokens of ``split`` whose loss is dropped: the first piece of each split
    token (``which="first"``) or every piece (``"input"``); ``size``: bytes of each id."""
    bounds = np.cumsum(size[canonical])
    ends = np.cumsum(size[split])
    at_start = np.isin(ends - size[split], np.concatenate([[0], bounds[:-1]]))
    whole = at_start & np.isin(ends, bounds)
    return (at_start & ~whole) if which == "first" else ~whole


def patch_split(p: float, which: str) -> None:
    import torch

    from tokengraft.heal import setup, trainer
    from tokengraft.vocab import byte_vocab

    orig_stream, orig_encoder, orig_micro = setup.PackedStream, setup.plain_encoder, trainer.lm_micro
    state = {}

    def stream(texts, encode, start_id, seq_len, seed, *args):
        table = byte_vocab(encode.tokenizer).tokens
        splits, size = Splits.of(table), np.asarray([len(t) if t else 0 for t in table], np.int64)

        def split_encode(ts):
            out = []
            for text, ids in zip(ts, encode(ts)):
                ids = np.asarray(ids, np.int64)
                new = splits.split(ids, p, np.random.default_rng([seed, zlib.crc32(text.encode("utf-8"))]))
                out.append(np.where(hidden_pieces(ids, new, size, which), -1 - new, new).tolist())  # hidden: -1 - id
            return out

        s = orig_stream(texts, split_encode, start_id, seq_len, seed, *args)
        plain_batch = s.next_batch

        def next_batch(n):
            rows = plain_batch(n)
            state["shown"] = rows >= 0
            return torch.where(rows < 0, -1 - rows, rows)

        s.next_batch = next_batch
        print(f"split tokens {p}, no loss at {which} pieces", flush=True)
        return s

    def micro(model, ids, counts, weights=None):  # one micro-step a step (heal's default batch)
        shown = state["shown"][:, 1:].float()
        return orig_micro(model, ids, counts, shown if weights is None else weights * shown)

    setup.PackedStream, setup.plain_encoder, trainer.lm_micro = stream, _keeping_tokenizer(orig_encoder), micro


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        fail("give a variant, then tokengraft heal's options")
    name, value = parse(sys.argv[1])
    heal_args = sys.argv[2:]
    if name == "emb-lr":
        patch_emb_lr(float(value))
    elif name == "tied":
        patch_tied(value)
    elif name == "dropout":
        patch_dropout(float(value))
    elif name.startswith("split-"):
        patch_split(float(value), name[len("split-"):])
    elif "--model" not in heal_args:
        fail(f"{name}= needs --model (the transplant whose tokenizer it reads)")
    else:
        patch_spell(int(value), heal_args[heal_args.index("--model") + 1])
    from tokengraft.cli.main import main as cli

    return cli(["heal", *heal_args])


if __name__ == "__main__":
    sys.exit(main())
