"""Does plain ``AutoTokenizer.from_pretrained(folder)`` give back the tokenizer we wrote?

Not always: for some model types (``qwen2``, ``phi3``, ... in transformers' list of hub repos
with a wrong ``tokenizer_class``) transformers 5 builds its own class from the vocabulary and
merges alone, with that family's normalizer and pre-tokenizer, whatever ``tokenizer.json``
says. A transplanted Qwen2 whose new tokenizer splits text differently would then be fed ids
it was never transplanted for. We cannot change how transformers picks the class, so the
writer checks and warns, and says how to load the folder's own tokenizer.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROBES = ("Hello world, 12345 and 3.14!", "  two  spaces\n\nand lines\t\ttabs", "Größe: naïve café — 日本語 🦊",
          "it's don't I'LL", "x" * 40 + " ...", "<|endoftext|> <s> </s>")


def reload_problem(folder: str | Path, tokenizer: Any) -> str | None:
    """A one-line warning when ``AutoTokenizer`` loads ``folder`` as a tokenizer that encodes the
    probe texts differently from ``tokenizer``; None when they agree."""
    from transformers import AutoTokenizer

    try:
        loaded = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # a tokenizer transformers cannot load at all is worth a warning, not a crash
        return f"transformers' AutoTokenizer cannot load the written tokenizer ({type(exc).__name__}: {exc})"
    for text in PROBES:
        if loaded(text)["input_ids"] != tokenizer(text)["input_ids"]:
            return (f"transformers' AutoTokenizer loads this folder's tokenizer as {type(loaded).__name__}, which"
                    f" splits text differently from the tokenizer it was transplanted to (e.g. {text!r}); load it"
                    " with PreTrainedTokenizerFast.from_pretrained(folder) instead")
    return None
