"""``transplant(options)``: load, transplant, write. The CLI and the quickstart call this.

Loading and saving happen here and nowhere else in the transplant stage; the work in
memory is :func:`tokengraft.transplant.core.transplant_model`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokengraft.transplant.core import get_method, transplant_model
from tokengraft.transplant.diagnostics import Diagnostics, format_table
from tokengraft.transplant.inputs import Inputs, check_needs, corpus_language, donor_matrices
from tokengraft.transplant.methods.base import Method
from tokengraft.transplant.options import TransplantOptions
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


def gather_inputs(method: Method, options: TransplantOptions, new_tok: Any) -> Inputs:
    """Load the donor's matrices and the corpus text that ``method.needs``."""
    from tokengraft.assets import load_corpus, load_model, load_tokenizer

    inputs = Inputs(aux_spec=options.aux, target_language=corpus_language(options.corpus))
    if options.donor is not None:
        if "donor" not in method.needs:
            logger.warning("method %s does not use a donor; ignoring --donor %s", method.name, options.donor)
        else:
            donor = load_model(options.donor, device="cpu")
            inputs.donor_input, inputs.donor_output = donor_matrices(donor, load_tokenizer(options.donor), new_tok,
                                                                     options.donor)
            del donor
    corpus = options.corpus
    if corpus is None and "model" in method.needs:
        corpus = training_corpus(options.tokenizer)
        if corpus is not None:
            logger.info("method %s reads target-language text from the tokenizer's training corpus %s",
                        method.name, corpus)
            inputs.target_language = corpus_language(corpus)
    if corpus is not None:
        aux_space = "aux" in method.needs or ("donor" in method.needs and options.donor is None)
        if "corpus" in method.needs or "model" in method.needs or aux_space:
            inputs.corpus_texts = load_corpus(corpus).texts()
        else:
            logger.warning("method %s uses no corpus; ignoring --corpus %s", method.name, corpus)
    return inputs


def training_corpus(tokenizer_spec: str) -> str | None:
    """The first corpus a tokengraft-trained tokenizer folder was trained on (``tokengraft_train.json``)."""
    import json

    record = Path(str(tokenizer_spec)) / "tokengraft_train.json"
    try:
        corpora = json.loads(record.read_text(encoding="utf-8")).get("corpora") or []
    except (OSError, ValueError, AttributeError):
        return None
    return str(corpora[0]) if corpora else None


def transplant(options: TransplantOptions) -> TransplantResult:
    """Load the base model and both tokenizers, transplant, and write ``options.out`` if set.

    >>> # transplant(TransplantOptions("smollm2-135m", "out/tok-fr-bpe32k", out="out/smollm2-fr"))
    """
    from tokengraft.assets import load_model, load_tokenizer
    from tokengraft.assets.weights import check_not_causal
    from tokengraft.transplant.writer import manifest, parse_dtype, write_transplant

    method = get_method(options.method)  # fail fast: before minutes of loading
    check_needs(method, donor=options.donor is not None, aux=options.aux is not None, corpus=options.corpus is not None)
    parse_dtype(options.dtype)
    options.validate()
    new_tok = load_tokenizer(options.tokenizer)  # cheaper than the model, and checked before it loads
    check_id_space(new_tok, options.tokenizer, allow_gaps=options.allow_id_gaps)
    if options.kind == "encoder":
        check_not_causal(options.model)
    model = load_model(options.model, device=options.device, kind=options.kind)
    old_tok = load_tokenizer(options.model)
    inputs = gather_inputs(method, options, new_tok)
    start = time.perf_counter()
    model, new_tok, diagnostics = transplant_model(
        model, old_tok, new_tok, options.method, method_options=options.method_options, inputs=inputs,
        seed=options.seed, pad_to_multiple_of=options.pad_to_multiple_of, kind=options.kind,
        copy_tokenizer=False,  # loaded here, owned here
    )
    seconds = time.perf_counter() - start
    logger.debug("%s", format_table(diagnostics.summary))
    out = None
    if options.out is not None:
        dtype = options.dtype or str(model.get_input_embeddings().weight.dtype).removeprefix("torch.")
        record = manifest(options, diagnostics, seconds=seconds, weights_dtype=dtype)
        out = write_transplant(options.out, model, new_tok, record, diagnostics,
                               overwrite=options.overwrite, dtype=options.dtype)
    return TransplantResult(model, new_tok, diagnostics, out, seconds)
