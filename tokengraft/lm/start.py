"""Which token every document starts with, so that its first real token is scored too.

Policy ``auto`` (the default), in this order:

1. the special token the tokenizer itself puts first when asked for special tokens:
   ``<s>`` (Llama 2, Mistral), ``<bos>`` (Gemma, Gemma-3), ``<|begin_of_text|>`` (Llama 3).
   Such a model always saw it at the start of a document.
2. ``<|endoftext|>`` when the vocabulary has it: GPT-2's document separator, which models
   that add no BOS of their own (GPT-2, SmolLM2, Qwen2.5, StarCoder, Pythia) saw between
   packed pretraining documents. SmolLM2-Instruct's configured ``bos_token`` is the chat
   marker ``<|im_start|>``, which never started a pretraining document, so rule 2 comes
   before the configured roles.
3. the configured ``bos_token``, then 4. the ``eos_token`` (GPT-2 convention).

``bos`` or ``eos`` force that role; any other value is a literal token of the vocabulary.
"""
from __future__ import annotations

from typing import Any

from tokengraft.errors import TokengraftError

DOCUMENT_SEPARATOR = "<|endoftext|>"


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` as one vocabulary entry, or None when it is not one."""
    idx = tokenizer.convert_tokens_to_ids(token)
    if idx is None or (isinstance(idx, int) and idx < 0):
        return None
    if tokenizer.convert_ids_to_tokens(idx) != token:
        return None  # an unknown token mapped to <unk>
    return int(idx)


def leading_special(tokenizer: Any) -> int | None:
    """The id the tokenizer prepends by itself (its template's BOS), or None."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    if len(full) > len(plain) and full[0] in set(tokenizer.all_special_ids) and full[1:1 + len(plain)] == plain:
        return int(full[0])
    return None


def resolve_start_token(tokenizer: Any, policy: str = "auto") -> tuple[str, int]:
    """Return ``(token, id)`` of the start token chosen by ``policy`` (see module docstring).

    >>> resolve_start_token(smollm2_tokenizer)  # doctest: +SKIP
    ('<|endoftext|>', 0)
    """
    if policy == "auto":
        lead = leading_special(tokenizer)
        if lead is not None:
            return tokenizer.convert_ids_to_tokens(lead), lead
        candidates = [DOCUMENT_SEPARATOR, tokenizer.bos_token, tokenizer.eos_token]
        for token in candidates:
            if token and token_id(tokenizer, token) is not None:
                return token, token_id(tokenizer, token)  # type: ignore[return-value]
        raise TokengraftError(
            "the tokenizer has no BOS, EOS or <|endoftext|> token to start documents with; "
            "pass a start token that is in its vocabulary (--start TOKEN)"
        )
    if policy in ("bos", "eos"):
        token = tokenizer.bos_token if policy == "bos" else tokenizer.eos_token
        if not token or token_id(tokenizer, token) is None:
            raise TokengraftError(f"the tokenizer has no {policy} token; use --start auto or name a token (--start TOKEN)")
        return token, token_id(tokenizer, token)  # type: ignore[return-value]
    idx = token_id(tokenizer, policy)
    if idx is None:
        raise TokengraftError(f"start token {policy!r} is not in the tokenizer's vocabulary; use --start auto, bos, eos or a token it has")
    return policy, idx
