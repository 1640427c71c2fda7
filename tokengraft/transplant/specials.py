"""Special tokens across a tokenizer swap: roles, chat markers, and the ids in the config.

Special tokens have no bytes to compare, so they are matched by role (bos, eos, pad,
unk) and, for chat markers, by exact content. A chat marker is an added token of the
base tokenizer whose content appears in its chat template (``<|im_start|>``,
``<start_of_turn>``): without it the template renders text the new tokenizer would split
into ordinary pieces, so a missing one is added to the new tokenizer.
"""
from __future__ import annotations

import logging
from typing import Any

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

ROLES = ("bos", "eos", "pad", "unk")
CONFIG_ID_ATTRS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


def role_ids(tok: Any) -> dict[str, int]:
    """``{"bos": 1, "eos": 2, ...}`` for the roles the tokenizer defines (ids only, no strings)."""
    out: dict[str, int] = {}
    for role in ROLES:
        value = getattr(tok, f"{role}_token_id", None)
        if isinstance(value, int) and value >= 0:
            out[role] = value
    return out


def added_tokens(tok: Any) -> dict[str, int]:
    """Content -> id of every added token (special or not), as the backend tokenizer holds them."""
    decoder = tok.added_tokens_decoder  # {id: AddedToken}
    return {str(token.content): int(i) for i, token in decoder.items()}


def chat_template_text(tok: Any) -> str:
    template = getattr(tok, "chat_template", None)
    if template is None:
        return ""
    if isinstance(template, dict):  # named templates ({"default": ..., "tool_use": ...})
        return "\n".join(str(v) for v in template.values())
    return str(template)


def chat_markers(tok: Any) -> list[str]:
    """Special tokens of ``tok`` that its chat template writes literally, or that the byte view
    recognises as turn markers, in id order.

    >>> # SmolLM2-Instruct: ['<|im_start|>', '<|im_end|>']
    """
    from tokengraft.vocab import byte_vocab

    view = byte_vocab(tok)
    template = chat_template_text(tok)
    found = [(i, c) for i, c in view.specials.items()
             if c and (view.roles.get(i) == "chat" or (template and c in template))]
    return [content for _, content in sorted(found)]


def add_chat_markers(new_tok: Any, markers: list[str]) -> list[str]:
    """Add each marker the new tokenizer lacks as a special token; return the ones added.

    A marker whose content is already an added token of ``new_tok`` is kept as it is.
    New ids are appended after the existing vocabulary.
    """
    from tokenizers import AddedToken

    present = added_tokens(new_tok)
    missing = [m for m in markers if m not in present]
    if missing:
        new_tok.add_tokens([AddedToken(m, special=True, normalized=False) for m in missing], special_tokens=True)
        logger.info("added %d chat marker(s) to the new tokenizer: %s", len(missing), ", ".join(missing))
        _check_marker_ids(new_tok, missing)
    return missing


def _check_marker_ids(new_tok: Any, markers: list[str]) -> None:
    # tokenizers gives an added token the id after the vocabulary's *count*; when the ids have
    # gaps (--allow-id-gaps), that id can belong to a vocabulary token already
    model = new_tok.backend_tokenizer.model
    for marker in markers:
        idx = new_tok.convert_tokens_to_ids(marker)
        taken = model.id_to_token(idx)
        if taken is not None and taken != marker:
            raise TokengraftError(
                f"the base model's chat marker {marker} would get id {idx}, which the new tokenizer's token {taken!r} "
                "already has (its ids have gaps); renumber the new tokenizer's ids without gaps, or add the chat "
                "markers to it yourself")


def _map_id(value: Any, new_role_id: int | None, old_to_new: dict[int, int], keep_all: bool) -> Any:
    """New value of one config id. ``keep_all`` (eos): the new role id plus every old id that maps,
    so an instruct model still stops at its end-of-turn marker."""
    olds = list(value) if isinstance(value, (list, tuple)) else ([] if value is None else [value])
    mapped = [old_to_new[v] for v in olds if v in old_to_new]
    if not keep_all:
        return new_role_id if new_role_id is not None else (mapped[0] if mapped else None)
    ids = list(dict.fromkeys(([new_role_id] if new_role_id is not None else []) + mapped))
    if not ids:
        return None
    return ids if len(ids) > 1 or isinstance(value, (list, tuple)) else ids[0]


def update_special_ids(model: Any, new_tok: Any, old_to_new: dict[int, int]) -> dict[str, Any]:
    """Rewrite bos/eos/pad (and decoder start) ids in the config and generation config.

    The new tokenizer's role ids win. Eos keeps, next to the new eos, every old eos id that
    maps to a new special token through ``old_to_new`` (SmolLM2-Instruct stops at
    ``<|im_end|>``, Gemma at ``[1, 106]``), as a list when there are several. Returns the
    values written, for the manifest.
    """
    roles = role_ids(new_tok)
    configs = [model.config.get_text_config(), model.config, getattr(model, "generation_config", None)]
    configs = list({id(c): c for c in configs if c is not None}.values())  # text config is often the config
    written: dict[str, Any] = {}
    for attr in CONFIG_ID_ATTRS:
        role = attr.split("_")[0]
        new_role_id = roles.get(role) if role in ROLES else None
        for config in configs:
            if not hasattr(config, attr):
                continue
            old_value = getattr(config, attr)
            if old_value is None and new_role_id is None:
                continue
            value = _map_id(old_value, new_role_id, old_to_new, keep_all=role == "eos")
            setattr(config, attr, value)
            written[attr] = value
    return written
