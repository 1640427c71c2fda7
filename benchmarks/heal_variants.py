"""Heal variants measured on dev text and not adopted (session 22): `tokengraft heal` with one
change patched in, so that each negative result can be re-run.

    python3 benchmarks/heal_variants.py emb-lr=6e-3 --model out/de-graft --corpus libreoffice:de:fit --steps 173
    python3 benchmarks/heal_variants.py tied=both ...     # or tied=input
    python3 benchmarks/heal_variants.py spell=2500 ...

- ``emb-lr=X``: the embedding matrices step at X, the LoRA adapters at ``--lr``.
- ``tied=both``: an untied transplant's input and output rows step with the mean of their two
  gradients, over the union of the rows the batch reads and predicts (plus the hard negatives):
  one change for both, as a tied model's rows move (SmolLM2 is tied; its transplant is not).
  ``tied=input``: only the input rows take the mean; the output rows step as before.
- ``spell=N``: the heal text also holds lists of the base tokenizer's first N words (" " + at
  least three letters, in id order) that the new tokenizer spells in two or more tokens, 50 to a
  document: the body reads " L" "ic" "en" "se" for " License".

Session 22's ``cont-weight=W`` (the loss counts W times at targets that continue a word) became
``tokengraft heal --continuation-weight W`` in session 23.
"""
from __future__ import annotations

import random
import sys
from types import SimpleNamespace


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
    ok = {"emb-lr": lambda v: float(v) > 0, "tied": lambda v: v in ("both", "input"), "spell": lambda v: int(v) > 0}
    try:
        if name in ok and ok[name](value):
            return name, value
    except ValueError:
        pass
    fail(f"unknown variant {spec!r}: use emb-lr=X, tied=both|input or spell=N")


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

    orig = sr.SparseRows.mask

    def mask(self, rows):
        a, b = self.read_param, self.predict_param
        if a is b or a.grad is None or b.grad is None:
            return orig(self, rows)
        reads, predicts = sr.batch_ids(rows)
        read, predict = sr.used_rows(reads, a.shape[0]), sr.used_rows(predicts, b.shape[0])
        if self.negatives:
            predict |= sr.hard_negatives(b.grad, predict, self.negatives)
        mean = 0.5 * (a.grad + b.grad)
        a.grad.copy_(mean)
        plan = [(a, read | predict), (b, predict)]
        if which == "both":
            b.grad.copy_(mean)
            plan[1] = (b, read | predict)
        self._kept = []
        for param, used in plan:
            unused = ~used.to(param.device)
            param.grad[unused] = 0
            self._kept.append((param, unused, param.detach()[unused].clone()))

    sr.SparseRows.mask = mask


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
    elif "--model" not in heal_args:
        fail(f"{name}= needs --model (the transplant whose tokenizer it reads)")
    else:
        patch_spell(int(value), heal_args[heal_args.index("--model") + 1])
    from tokengraft.cli.main import main as cli

    return cli(["heal", *heal_args])


if __name__ == "__main__":
    sys.exit(main())
