"""Run an input plan's providers once, after the correspondence exists.

:class:`Inputs` is what the caller loaded (a donor's rows, the corpus, the embedder's name)
or computed itself (an auxiliary space); :func:`provide` completes it with what the plan's
providers compute. Nothing here decides what a method needs: :mod:`.plan` did.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch

from tokengraft.transplant.auxiliary import AuxRequest, provide_aux
from tokengraft.transplant.correspondence import Correspondence
from tokengraft.transplant.methods.base import DONOR
from tokengraft.transplant.plan import Given, InputPlan


@dataclasses.dataclass
class Inputs:
    """Donor and auxiliary inputs; tensors given here are used as they are, the rest is computed."""
    donor_input: torch.Tensor | None = None    # (V_new, e) donor's input embedding on the new vocabulary
    donor_output: torch.Tensor | None = None   # (V_new, e) donor's output embedding (= input when tied)
    aux_new: torch.Tensor | None = None        # (V_new, a) auxiliary vectors of new tokens
    aux_old: torch.Tensor | None = None        # (V_old, a) same space, old tokens
    aux_spec: str | None = None                # --aux: the embedder of the strings provider
    corpus_texts: Sequence[str] | None = None  # --corpus: target-language text
    corpus: Any = None                         # the same corpus as a Corpus (ids, language), when loaded from a spec
    target_language: str | None = None         # ISO 639-1 of the corpus (the bilingual dictionary)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    def given(self) -> Given:
        """What these inputs give, for :func:`tokengraft.transplant.plan.plan_inputs`."""
        return Given(donor=self.donor_input is not None, aux=self.aux_spec is not None,
                     corpus=self.corpus_texts is not None, vectors=self.aux_new is not None)


def provide(plan: InputPlan, inputs: Inputs, corr: Correspondence, old_tok: Any, new_tok: Any,
            model: Any) -> Inputs:
    """A copy of ``inputs`` completed by the plan's providers (the caller's object is left as it
    was, so it can be reused for another method); providers whose results are given are skipped."""
    inputs = dataclasses.replace(inputs, extras=dict(inputs.extras))
    if plan.space != DONOR:
        inputs.donor_input = inputs.donor_output = None
    todo = [name for name in plan.providers
            if not (name == plan.space and inputs.aux_new is not None) and name not in inputs.extras]
    if not todo:
        return inputs
    request = AuxRequest(
        old_bytes=corr.old_bytes, new_bytes=corr.new_bytes, old_tokenizer=old_tok, new_tokenizer=new_tok,
        target_texts=inputs.corpus_texts, target_corpus=inputs.corpus, embedder=inputs.aux_spec,
        target_language=inputs.target_language,
        pieces=corr.pieces, copied=corr.copied, model=model,
    )
    for name in todo:
        vectors = provide_aux(name, request, plan.provider_options.get(name))
        if name == plan.space:
            inputs.aux_new, inputs.aux_old = vectors.new, vectors.old
        inputs.extras.update(vectors.extras)
    return inputs
