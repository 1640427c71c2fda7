"""The token a document starts with, kept across a tokenizer swap.

A base model learned one start-of-document token: Gemma's ``<bos>``, which its tokenizer
prepends and without which Gemma degrades badly; SmolLM2's and Qwen's ``<|endoftext|>``, the
separator between packed pretraining documents. Two rules keep that convention:

1. :func:`adopt_bos`: when the base tokenizer prepends a BOS by itself and the new one does
   not, the new tokenizer adopts it: the token is added if missing, becomes ``bos_token`` and is
   prepended, so ``tokenizer(text)``, a chat template's ``{{ bos_token }}`` and the meter all
   start documents the way the model was trained;
2. :func:`link_start`: the new tokenizer's start token gets the base's start token's row when
   no special of the same content gave it one; matching by role alone gets this wrong (tokenkit,
   Gemma-3 -> Qwen-3: ``<pad>``'s row ended up where ``<bos>``'s belonged).
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def adopt_bos(old_tok: Any, new_tok: Any) -> str | None:
    """Make ``new_tok`` (changed in place) prepend the base's BOS; return its content, or None when
    the base adds none or the new tokenizer already adds its own."""
    from tokenizers import AddedToken

    from tokengraft.lm.start import leading_special
    from tokengraft.transplant.specials import added_tokens

    lead = leading_special(old_tok)
    if lead is None or leading_special(new_tok) is not None:
        return None
    content = old_tok.convert_ids_to_tokens(lead)
    if content not in added_tokens(new_tok):
        new_tok.add_tokens([AddedToken(content, special=True, normalized=False)], special_tokens=True)
    new_tok.bos_token = content
    new_tok.add_bos_token = True  # transformers 5 rebuilds the post-processor: content + $A
    bos_id = new_tok.convert_tokens_to_ids(content)
    if leading_special(new_tok) != bos_id:  # older transformers: set the backend's template ourselves
        from tokenizers import processors

        template = processors.TemplateProcessing(single=f"{content} $A", pair=f"{content} $A {content} $B:1",
                                                 special_tokens=[(content, bos_id)])
        backend = new_tok.backend_tokenizer
        backend.post_processor = template if backend.post_processor is None else processors.Sequence(
            [backend.post_processor, template])
    if leading_special(new_tok) != bos_id:
        raise RuntimeError(f"could not make the new tokenizer prepend {content}")  # a library change, not user input
    logger.info("the base tokenizer starts every text with %s; the new tokenizer now does too", content)
    return content


def link_start(corr: Any, old_tok: Any, new_tok: Any) -> tuple[int, int] | None:
    """Give the new start token the base start token's row (in ``corr``, changed in place);
    return ``(new id, old id)`` when a link was made."""
    from tokengraft.errors import TokengraftError
    from tokengraft.lm.start import resolve_start_token

    try:
        new_start, old_start = resolve_start_token(new_tok)[1], resolve_start_token(old_tok)[1]
    except TokengraftError:  # a tokenizer with no start token at all: nothing to keep
        return None
    if (new_start >= len(corr.how) or old_start >= len(corr.old_bytes) or corr.new_bytes[new_start] is not None
            or corr.how[new_start] == "special:content"):
        return None
    if int(corr.copied[new_start]) != old_start:
        logger.info("new start token %s takes the row of the base's start token %s",
                    new_tok.convert_ids_to_tokens(new_start), old_tok.convert_ids_to_tokens(old_start))
    corr.copied[new_start] = old_start
    corr.how[new_start] = "special:start"
    return new_start, old_start
