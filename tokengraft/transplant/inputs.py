"""What a method needs beyond the base matrices (``Method.needs``), gathered for the orchestrator.

- ``donor``: a second model that already uses the new tokenizer; its vocabulary is checked
  to BE the new tokenizer's (same ids, same bytes), its rows beyond that are ignored.
- ``aux`` / ``corpus``: auxiliary vectors from :mod:`tokengraft.transplant.auxiliary` (FOCUS,
  TokenAdapt, WECHSEL), computed on the final new vocabulary (chat markers included).
- ``model``: the base model's continuation log-probabilities of the new tokens, measured in
  the context of ``corpus_texts`` (``extras["continuation"]``, for ``graft``).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Sequence

import torch

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

# Languages of built-in corpora that are not ``libreoffice:<lang>``.
CORPUS_LANGUAGES = {"bible:web": "en", "bible:rv1909": "es", "python-stdlib": None}


@dataclasses.dataclass
class Inputs:
    """Donor and auxiliary inputs; tensors given here are used as they are, the rest is computed."""
    donor_input: torch.Tensor | None = None    # (V_new, e) donor's input embedding on the new vocabulary
    donor_output: torch.Tensor | None = None   # (V_new, e) donor's output embedding (= input when tied)
    aux_new: torch.Tensor | None = None        # (V_new, a) auxiliary vectors of new tokens
    aux_old: torch.Tensor | None = None        # (V_old, a) same space, old tokens
    aux_spec: str | None = None                # --aux: embedder for the provider (tokenadapt)
    corpus_texts: Sequence[str] | None = None  # --corpus: target-language text (focus, wechsel)
    target_language: str | None = None         # ISO 639-1 of the corpus (wechsel's dictionary)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


def corpus_language(spec: str | None) -> str | None:
    """``libreoffice:fr:train`` -> ``fr``; ``bible:rv1909`` -> ``es``; unknown -> None."""
    if not spec:
        return None
    parts = str(spec).split(":")
    if parts[0] == "libreoffice" and len(parts) > 1:
        return parts[1].split("-")[0].lower()
    return CORPUS_LANGUAGES.get(":".join(parts[:2]))


def donor_matrices(donor: Any, donor_tok: Any, new_tok: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(V_new, e) input and output rows of a donor whose vocabulary must be the new tokenizer's."""
    from tokengraft.transplant.core import embedding_modules
    from tokengraft.transplant.correspondence import vocabulary_difference

    diff = vocabulary_difference(donor_tok, new_tok)
    if diff is not None:
        raise TokengraftError(f"donor {name}'s vocabulary is not the new tokenizer's ({diff});"
                              " pass a donor that uses exactly the new tokenizer")
    emb, head, tied = embedding_modules(donor, kind="encoder")
    n = len(new_tok)
    if emb.weight.shape[0] < n:
        raise TokengraftError(f"donor {name} has {emb.weight.shape[0]} embedding rows for {n} tokens;"
                              " it cannot be a donor")
    rows_in = emb.weight[:n].detach().float().cpu().clone()
    rows_out = rows_in if head is None or tied else head.weight[:n].detach().float().cpu().clone()
    return rows_in, rows_out


def check_needs(method: Any, *, donor: bool, aux: bool, corpus: bool) -> None:
    """A clear error when the method needs a donor or a corpus that was not given.

    ``aux``: auxiliary vectors are given or an embedder is named; a donor-method (OMP) may
    then work in that auxiliary space instead, where a provider for it exists.
    """
    from tokengraft.transplant.auxiliary import PROVIDERS

    if "donor" in method.needs and not donor and not (aux and method.name in PROVIDERS):
        raise TokengraftError(f"method {method.name} needs --donor SPEC (a model that already uses the new tokenizer)")
    if "corpus" in method.needs and not corpus:
        raise TokengraftError(f"method {method.name} needs --corpus CORPUS"
                              " (target-language text, e.g. libreoffice:fr:train)")


def provide(method: Any, inputs: Inputs, corr: Any, old_tok: Any, new_tok: Any, model: Any,
            options: Any = None) -> Inputs:
    """A copy of ``inputs`` completed with what ``method.needs`` (auxiliary vectors; the base
    model's continuations in extras, skipped when ``model`` is None); the caller's object is
    left as it was, so it can be reused for another method."""
    inputs = dataclasses.replace(inputs, extras=dict(inputs.extras))
    check_needs(method, donor=inputs.donor_input is not None,
                aux=inputs.aux_new is not None or inputs.aux_spec is not None,
                corpus=inputs.aux_new is not None or inputs.corpus_texts is not None)
    if "model" in method.needs and "continuation" not in inputs.extras and model is not None:
        from tokengraft.transplant.auxiliary.continuation import ContinuationOptions, continuation

        cont_options = ContinuationOptions(
            prefix_tokens=getattr(options, "prefix_tokens", ContinuationOptions.prefix_tokens),
            limit=getattr(options, "limit", ContinuationOptions.limit),
            max_pieces=getattr(options, "max_pieces", ContinuationOptions.max_pieces))
        inputs.extras["continuation"] = continuation(model, old_tok, corr.pieces, corr.copied,
                                                     inputs.corpus_texts, cont_options)
    wants_aux = "aux" in method.needs or ("donor" in method.needs and inputs.donor_input is None)
    if wants_aux and inputs.aux_new is None:
        from tokengraft.transplant.auxiliary import AuxRequest, provide_aux

        request = AuxRequest(
            old_bytes=corr.old_bytes, new_bytes=corr.new_bytes, old_tokenizer=old_tok, new_tokenizer=new_tok,
            target_texts=inputs.corpus_texts, embedder=inputs.aux_spec, target_language=inputs.target_language,
        )
        vectors = provide_aux(method.name, request)
        inputs.aux_new, inputs.aux_old = vectors.new, vectors.old
        inputs.extras.update(vectors.extras)
    elif inputs.aux_spec is not None and not wants_aux:
        logger.warning("method %s uses no auxiliary embedder; ignoring --aux %s", method.name, inputs.aux_spec)
    return inputs
