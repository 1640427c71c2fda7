"""What a new tokenizer copies from its base: special tokens, roles and text conventions.

A transplant must not have to guess. A tokenizer trained with ``--base smollm2-135m``
keeps SmolLM2's special strings (at the lowest ids, in SmolLM2's order), its roles
(bos/eos/pad/unk), chat template, add-BOS behaviour and model_max_length, and its way of
turning text into symbols: byte-level (GPT-2 byte-to-unicode map, the base's regex split)
or SentencePiece-like byte fallback (``▁`` for space, ``<0xNN>`` tokens for unseen bytes).

Pipeline components are kept as ``tokenizers`` JSON dicts so they are copied verbatim.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.vocab.alphabet import (
    bytes_to_unicode,  # the one byte view of every vocabulary
)

BYTE_LEVEL = "byte_level"
BYTE_FALLBACK = "byte_fallback"
ROLES = ("bos", "eos", "pad", "unk", "mask")
SPACE_MARK = "\u2581"  # SentencePiece's visible space
_UNUSED = re.compile(r"^<unused\d+>$|^\[?unused\d+\]?$")
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_DIGIT_PAIR = re.compile(rb"[0-9]{2}")
logger = logging.getLogger(__name__)

GPT2_PRE_TOKENIZER = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
GPT2_DECODER = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
GPT2_POST_PROCESSOR = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}


@dataclass
class Conventions:
    """Everything a trained tokenizer inherits; ``specials`` are in id order (ids 0..k-1)."""

    family: str = BYTE_LEVEL
    specials: list[str] = field(default_factory=lambda: ["<|endoftext|>"])
    roles: dict[str, str] = field(default_factory=lambda: {"bos": "<|endoftext|>", "eos": "<|endoftext|>",
                                                           "unk": "<|endoftext|>"})
    normalizer: dict | None = None
    pre_tokenizer: dict | None = field(default_factory=lambda: dict(GPT2_PRE_TOKENIZER))
    decoder: dict | None = field(default_factory=lambda: dict(GPT2_DECODER))
    post_processor: dict | None = field(default_factory=lambda: dict(GPT2_POST_PROCESSOR))
    model_max_length: int | None = None
    chat_template: str | None = None
    adds_bos: bool = False
    base_name: str | None = None


def token_bytes_fn(family: str):
    """Return ``f(token_string) -> bytes`` for a vocabulary of ``family``."""
    if family == BYTE_LEVEL:
        decode = {c: b for b, c in bytes_to_unicode().items()}

        def byte_level(token: str) -> bytes:
            try:
                return bytes(decode[c] for c in token)
            except KeyError:  # an added token written in plain text
                return token.encode("utf-8")
        return byte_level

    def byte_fallback(token: str) -> bytes:
        match = _BYTE_PIECE.match(token)
        if match:
            return bytes([int(match.group(1), 16)])
        return token.replace(SPACE_MARK, " ").encode("utf-8")
    return byte_fallback


def byte_piece_strings() -> list[str]:
    """The 256 byte-fallback tokens in byte order, spelled as SentencePiece does."""
    return [f"<0x{b:02X}>" for b in range(256)]


def default_conventions() -> Conventions:
    """GPT-2 conventions: byte-level BPE, GPT-2 regex split, one ``<|endoftext|>`` special."""
    return Conventions()


def _family(model: dict, pre_tokenizer: dict | None, decoder: dict | None, name: str) -> str:
    blob = json.dumps([pre_tokenizer, decoder])
    if '"ByteLevel"' in blob:
        return BYTE_LEVEL
    if model.get("byte_fallback"):
        return BYTE_FALLBACK
    raise TokengraftError(
        f"base tokenizer {name} is neither byte-level nor byte-fallback (model {model.get('type')}); "
        "tokengraft can only copy those conventions: pick a BPE/SentencePiece base or drop --base")


def conventions_from_base(tokenizer: Any, name: str = "base", keep_unused_specials: bool = False) -> Conventions:
    """Read the conventions of a ``PreTrainedTokenizerFast`` (any ``TokenizersBackend``)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TokengraftError(f"base tokenizer {name} is not a fast tokenizer; "
                              "load it with tokengraft.assets.load_tokenizer")
    data = json.loads(backend.to_str())
    family = _family(data["model"], data.get("pre_tokenizer"), data.get("decoder"), name)
    roles = {role: str(getattr(tokenizer, f"{role}_token")) for role in ROLES
             if getattr(tokenizer, f"{role}_token", None) is not None}
    specials = [t["content"] for t in sorted(data.get("added_tokens", []), key=lambda t: t["id"])
                if t.get("special") and (keep_unused_specials or not _UNUSED.match(t["content"]))]
    # A role token that the base keeps in its ordinary vocabulary still becomes a special here.
    specials = [r for r in dict.fromkeys(roles.values()) if r not in specials] + specials
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos_id = getattr(tokenizer, "bos_token_id", None)
    max_len = getattr(tokenizer, "model_max_length", None)
    template = getattr(tokenizer, "chat_template", None)
    pre = data.get("pre_tokenizer")
    added = {t["content"] for t in data.get("added_tokens", [])}
    if splits_digits(data["model"], family, added) and '"Digits"' not in json.dumps(pre):
        # The base never joins two digits (SmolLM2, Gemma split numbers digit by digit) but its
        # pipeline does not say so (GGUF conversions drop the Digits step): say it explicitly.
        logger.info("base %s never joins digits; the new tokenizer splits numbers into digits too", name)
        digits = {"type": "Digits", "individual_digits": True}
        pre = digits if pre is None else {"type": "Sequence", "pretokenizers": [digits, pre]}
    return Conventions(
        family=family, specials=specials, roles=roles,
        normalizer=data.get("normalizer"), pre_tokenizer=pre,
        decoder=data.get("decoder"), post_processor=data.get("post_processor"),
        model_max_length=int(max_len) if max_len is not None else None,
        chat_template=template if isinstance(template, str) else None,
        adds_bos=bool(probe) and bos_id is not None and probe[0] == bos_id,
        base_name=name,
    )


def splits_digits(model: dict, family: str, added: set[str] = frozenset()) -> bool:
    """True when a vocabulary of real size holds the ten digits but no token with two adjacent."""
    vocab = model.get("vocab", {})
    pieces = [p for p in ([p for p, _ in vocab] if isinstance(vocab, list) else vocab) if p not in added]
    if len(pieces) < 1000:
        return False
    to_bytes = token_bytes_fn(family)
    have = {d for p in pieces for d in [to_bytes(p)] if len(d) == 1 and d.isdigit()}
    return len(have) == 10 and not any(len(_DIGIT_PAIR.findall(to_bytes(p))) for p in pieces)


def training_pre_tokenizer(conv: Conventions) -> dict | None:
    """Pre-tokenizer for ordinary (word-internal) training: the base's, plus a split before
    each ``▁`` for byte-fallback bases whose own pre-tokenizer leaves whole lines (Gemma)."""
    if conv.family == BYTE_LEVEL:
        return conv.pre_tokenizer
    split = {"type": "Split", "pattern": {"String": SPACE_MARK}, "behavior": "MergedWithNext", "invert": False}
    if conv.pre_tokenizer is None:
        return split
    return {"type": "Sequence", "pretokenizers": [conv.pre_tokenizer, split]}


def remap_post_processor(post: dict | None, vocab: dict[str, int]) -> dict | None:
    """The base's post-processor with every special token's id replaced by its new id."""
    if post is None:
        return None
    post = json.loads(json.dumps(post))

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("tokens"), list) and isinstance(node.get("ids"), list):
                missing = [t for t in node["tokens"] if t not in vocab]
                if missing:
                    raise TokengraftError(f"base post-processor uses {missing[0]!r}, which the new vocabulary lacks; "
                                          "pass --keep-unused-specials or another --base")
                node["ids"] = [vocab[t] for t in node["tokens"]]
            for key in ("sep", "cls"):
                if isinstance(node.get(key), list) and len(node[key]) == 2 and node[key][0] in vocab:
                    node[key] = [node[key][0], vocab[node[key][0]]]
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)
    fix(post)
    return post
