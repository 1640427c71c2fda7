"""The role of each special token: bos, eos, pad, unk, chat or other.

Order of evidence: a chat marker is recognised by its content first (SmolLM2-Instruct
declares ``<|im_start|>`` as its bos token, yet it is a turn marker); then the roles the
tokenizer declares (``eos_token`` before ``bos_token`` before ``pad_token``, so GPT-2's
shared ``<|endoftext|>`` is an eos); then well-known names (``</s>``, ``<pad>``, ...); then a
declared ``unk_token`` (weakest: SmolLM2-Instruct declares its ``<|endoftext|>`` as unk,
though a byte-level BPE never produces an unknown token); anything else is ``other``.

>>> special_roles({0: "<|endoftext|>", 1: "<|im_start|>", 2: "<mask>"}, {"bos": 1, "eos": 1})
{0: 'eos', 1: 'chat', 2: 'other'}
>>> special_roles({0: "<|endoftext|>"}, {"unk": 0})
{0: 'eos'}
"""
from __future__ import annotations

import re
from typing import Mapping

ROLES = ("bos", "eos", "pad", "unk", "chat", "other")
DECLARED_ORDER = ("eos", "bos", "pad")

CHAT_MARKER = re.compile(
    r"<\|im_(start|end|sep)\|>|<(start|end)_of_turn>|\[/?INST\]|\[/?SYSTEM_PROMPT\]"
    r"|<\|(start_header_id|end_header_id|eot_id|user|assistant|system|end)\|>"
)
KNOWN_NAMES = {
    "bos": {"<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", "[BOS]"},
    "eos": {"</s>", "<eos>", "<|endoftext|>", "<|end_of_text|>", "[EOS]"},
    "pad": {"<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>"},
    "unk": {"<unk>", "[UNK]", "<|unk|>"},
}


def role_of(content: str, declared: set[str]) -> str:
    """Role of one special token given its content and the roles the tokenizer declares for it."""
    if CHAT_MARKER.fullmatch(content):
        return "chat"
    for role in DECLARED_ORDER:
        if role in declared:
            return role
    for role, names in KNOWN_NAMES.items():
        if content in names:
            return role
    return "unk" if "unk" in declared else "other"


def special_roles(specials: Mapping[int, str], declared: Mapping[str, int | None]) -> dict[int, str]:
    """``{id: role}`` for special tokens ``{id: content}``; ``declared`` maps bos/eos/pad/unk to ids."""
    by_id: dict[int, set[str]] = {}
    for role, idx in declared.items():
        if idx is not None:
            by_id.setdefault(idx, set()).add(role)
    return {idx: role_of(content, by_id.get(idx, set())) for idx, content in sorted(specials.items())}
