"""``vocab-strings``: token strings through a sentence embedder, the old side cut to what the new vocabulary uses.

``graft``'s semantic estimate (TokenAdapt) reads embedder vectors of the new tokens, of their
old pieces and of the old tokens nearest to them. Embedding every old string costs most on
the largest vocabularies, where most old tokens belong to other languages and scripts:
Gemma-3's 262k strings take ~10 minutes of 2 CPU cores. This provider embeds only the old
tokens the new vocabulary is made of:

* the pieces of every new token that is not copied (the local estimate reads them),
* the copied tokens (old tokens the new vocabulary shares: target-language tokens),
* old tokens whose string equals a new token's string (" Datei" for "Datei": case and
  word-boundary variants, whose vector the new token reuses);

the other old tokens get no vector, so they are never a global neighbour. SmolLM2 -> a 32k
French BPE: 15k of 49k old strings; Gemma-3 -> a 32k German BPE: 20k of 262k.
``old_strings="all"`` embeds every old string (the ``strings`` provider's space).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.registry import AuxRequest, AuxVectors, need, provider
from tokengraft.transplant.auxiliary.strings import token_strings, vocabulary_vectors

DEFAULT_EMBEDDER = "minilm-l6"
OLD_STRINGS = ("vocab", "all")


@dataclass
class VocabStringsOptions:
    old_strings: str = "vocab"      # old tokens embedded: "vocab" (pieces, copied tokens, equal strings) | "all"
    embed_precision: str = "auto"   # the embedder's compute dtype: "auto" (bfloat16 where the hardware has it) |
                                    # "bfloat16" | "float32"


def vocab_pool(request: AuxRequest, old_strings: list[str], new_strings: list[str]) -> list[int]:
    """Old ids the new vocabulary is made of (see the module docstring), ascending.

    >>> r = AuxRequest(old_bytes=[b"a", b"b", b"B", b"z"], new_bytes=[b"a", b"ab", b"b"],
    ...                pieces=[[0], [0, 1], [1]], copied=torch.tensor([0, -1, 1]))
    >>> vocab_pool(r, ["a", "b", "B", "z"], ["a", "ab", "b"])
    [0, 1]
    """
    pieces = need(request.pieces, "vocab-strings", "the correspondence")
    copied = need(request.copied, "vocab-strings", "the correspondence").tolist()
    pool = {o for t, p in enumerate(pieces) if copied[t] < 0 for o in p}
    pool |= {c for c in copied if c >= 0}
    wanted = {s for s in new_strings if s}
    pool |= {i for i, s in enumerate(old_strings) if s in wanted}
    return sorted(i for i in pool if 0 <= i < len(old_strings))


@provider("vocab-strings", options=VocabStringsOptions, embedder=True,
          summary="new token strings and the old ones the new vocabulary uses, through a sentence embedder (--aux)")
def vocab_strings_aux(request: AuxRequest, options: VocabStringsOptions) -> AuxVectors:
    """aux_new/aux_old in the embedder's space; old tokens outside the pool get zero rows ("no vector")."""
    if options.old_strings not in OLD_STRINGS:
        raise TokengraftError(f"old_strings must be one of {', '.join(OLD_STRINGS)}, got {options.old_strings!r}")
    spec = request.embedder or DEFAULT_EMBEDDER
    settings = replace(request.strings, dtype=options.embed_precision)
    if request.cache is not None:
        settings = replace(settings, cache=request.cache)
    old_strings, new_strings = token_strings(request.old_bytes), token_strings(request.new_bytes)
    pool = None if options.old_strings == "all" else vocab_pool(request, old_strings, new_strings)
    new, old = vocabulary_vectors(spec, old_strings, new_strings, settings, pool)
    return AuxVectors(new=new, old=old, extras={"embedder": spec, "old_strings": len(old_strings if pool is None else pool)})
