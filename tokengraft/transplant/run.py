"""``transplant(options)``: run -> plan -> load -> core -> method. The CLI and the quickstart call this.

Loading and saving happen here and nowhere else in the transplant stage: the plan
(:mod:`.plan`) says what to load, this module loads it (model, tokenizers, donor, corpus),
and the work in memory is :func:`tokengraft.transplant.core.transplant_model`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokengraft.transplant.core import transplant_model
from tokengraft.transplant.diagnostics import Diagnostics, format_table
from tokengraft.transplant.embedding import donor_matrices
from tokengraft.transplant.methods.base import DONOR
from tokengraft.transplant.options import TransplantOptions
from tokengraft.transplant.plan import InputPlan, get_method, plan_transplant
from tokengraft.transplant.provide import Inputs
from tokengraft.vocab.ids import check_id_space

logger = logging.getLogger(__name__)


@dataclass
class TransplantResult:
    model: Any                  # the transplanted model (in memory, on options.device)
    tokenizer: Any              # the new tokenizer, with added chat markers and the base's chat template
    diagnostics: Diagnostics
    out: Path | None            # the written folder, if options.out was given
    seconds: float              # transplant time after loading (method + install), excluding the write

    def table(self) -> str:
        return format_table(self.diagnostics.summary)


def load_inputs(plan: InputPlan, options: TransplantOptions, new_tok: Any) -> Inputs:
    """Load what ``plan`` reads: the donor's rows on the new vocabulary, the corpus (as much as is read)."""
    from tokengraft.assets import load_corpus, load_model, load_tokenizer

    inputs = Inputs(aux_spec=options.aux)
    if plan.space == DONOR:
        donor = load_model(options.donor, device="cpu")
        inputs.donor_input, inputs.donor_output = donor_matrices(donor, load_tokenizer(options.donor), new_tok,
                                                                 options.donor)
        del donor
    if plan.corpus_spec is not None:
        corpus = load_corpus(plan.corpus_spec).truncate(plan.corpus_bytes)
        inputs.corpus, inputs.corpus_texts, inputs.target_language = corpus, corpus.texts(), corpus.language
    return inputs


def transplant(options: TransplantOptions) -> TransplantResult:
    """Load the base model and both tokenizers, transplant, and write ``options.out`` if set.

    >>> # transplant(TransplantOptions("smollm2-135m", "out/tok-fr-bpe32k", out="out/smollm2-fr"))
    """
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.assets.models import check_not_causal
    from tokengraft.publish.evaluate import eval_entries, load_eval_corpora, score
    from tokengraft.publish.hub import push_folder
    from tokengraft.transplant.writer import manifest, parse_dtype, write_transplant

    plan = plan_transplant(options, get_method(options.method))  # fail fast: before minutes of loading
    parse_dtype(options.dtype)
    options.validate()
    held = load_eval_corpora(options.eval, options.eval_max_bytes) if options.eval else []  # cheap: before loading
    new_tok = load_tokenizer(options.tokenizer)  # cheaper than the model, and checked before it loads
    check_id_space(new_tok, options.tokenizer, allow_gaps=options.allow_id_gaps)
    if options.kind == "encoder":
        check_not_causal(options.model)
    model = load_model(options.model, device=options.device, kind=options.kind)
    old_tok = load_tokenizer(options.model)
    before = score(model, old_tok, held) if held else {}  # the base, before it is changed in place
    inputs = load_inputs(plan, options, new_tok)
    start = time.perf_counter()
    model, new_tok, diagnostics = transplant_model(
        model, old_tok, new_tok, plan=plan, inputs=inputs, seed=options.seed,
        pad_to_multiple_of=options.pad_to_multiple_of, kind=options.kind,
        copy_tokenizer=False,  # loaded here, owned here
    )
    seconds = time.perf_counter() - start
    logger.debug("%s", format_table(diagnostics.summary))
    out = None
    if options.out is not None:
        dtype = options.dtype or str(model.get_input_embeddings().weight.dtype).removeprefix("torch.")
        record = manifest(options, diagnostics, seconds=seconds, weights_dtype=dtype)
        if held:
            record["eval"] = eval_entries(before, score(model, new_tok, held))
        out = write_transplant(options.out, model, new_tok, record, diagnostics,
                               overwrite=options.overwrite, dtype=options.dtype)
        if options.push_to_hub:
            push_folder(out, options.push_to_hub, public=options.public)
    return TransplantResult(model, new_tok, diagnostics, out, seconds)
