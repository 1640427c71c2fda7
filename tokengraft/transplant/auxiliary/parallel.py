"""The ``parallel`` provider: alignment counts of new tokens with old tokens, for ``transtok``.

Where the parallel text comes from:

- ``--corpus libreoffice:<lang>[:<split>]``: the same help pages in English (the base model's
  language), ``libreoffice:en[:<split>]``, aligned line by line page by page;
- ``--corpus bible:rv1909``: the World English Bible (``bible:web``), verse by verse;
- ``--method-option source_file=en.txt --method-option target_file=de.txt``: any two line-aligned
  files (line i of the target translates line i of the source; different lengths are an error).

The counts (sparse (V_new, V_old)) go to ``problem.extras["parallel"]``; see
:mod:`tokengraft.transplant.auxiliary.alignment` for how they are made.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from tokengraft.errors import TokengraftError
from tokengraft.transplant.auxiliary.alignment import page_line_pairs, read_line_pairs, token_alignment
from tokengraft.transplant.auxiliary.registry import AuxRequest, AuxVectors, need, provider

logger = logging.getLogger(__name__)

ENGLISH_BIBLE = "bible:web"


@dataclass
class ParallelOptions:
    source_file: str = ""   # a line-aligned pair: text in the base model's language ...
    target_file: str = ""   # ... and its translation, line by line, in the new tokenizer's language


def english_counterpart(spec: str) -> str:
    """The built-in English corpus aligned with ``spec``.

    >>> english_counterpart("libreoffice:de:train"), english_counterpart("bible:rv1909")
    ('libreoffice:en:train', 'bible:web')
    """
    parts = spec.split(":")
    if parts[0] == "libreoffice" and len(parts) >= 2:
        return ":".join(["libreoffice", "en", *parts[2:]])
    if parts[0] == "bible" and len(parts) >= 2:
        return ENGLISH_BIBLE
    raise TokengraftError(f"transtok: corpus {spec} has no built-in English translation to align with; use a"
                          " libreoffice:<lang> or bible corpus, or give a line-aligned pair with --method-option"
                          " source_file=EN.txt --method-option target_file=XX.txt")


def line_pairs(request: AuxRequest, options: ParallelOptions) -> list[tuple[str, str]]:
    """(source line, target line) pairs from the options' files or the corpus's English counterpart."""
    if options.source_file or options.target_file:
        if not (options.source_file and options.target_file):
            raise TokengraftError("transtok: give both --method-option source_file=... and target_file=...")
        return read_line_pairs(options.source_file, options.target_file)
    from tokengraft.assets import load_corpus

    corpus = need(request.target_corpus, "parallel", "parallel text: --corpus libreoffice:<lang>:train (aligned"
                  " with the same pages in English) or --method-option source_file=... target_file=...")
    spec = corpus.name
    pairs = page_line_pairs(load_corpus(english_counterpart(spec)).by_id(), corpus.by_id())
    if not pairs:
        raise TokengraftError(f"transtok: no line of {spec} could be paired with {english_counterpart(spec)}")
    return pairs


@provider("parallel", options=ParallelOptions, corpus="optional",
          summary="alignment counts of new with old tokens from word-aligned parallel text (transtok)")
def parallel_aux(request: AuxRequest, options: ParallelOptions) -> AuxVectors:
    """``extras["parallel"]``: sparse (V_new, V_old) alignment counts, plus the alignment's figures."""
    options = options or ParallelOptions()
    pairs = line_pairs(request, options)
    alignment = token_alignment(pairs, need(request.old_tokenizer, "parallel", "the old tokenizer"),
                                need(request.new_tokenizer, "parallel", "the new tokenizer"),
                                len(request.old_bytes), len(request.new_bytes))
    facts = {"line_pairs": alignment.pairs, "word_links": alignment.word_links,
             "aligner_seconds": round(alignment.seconds, 1)}
    return AuxVectors(new=None, old=None, extras={"parallel": alignment.counts, "parallel_facts": facts})
