"""Read how a tokenizer spells text (spaces, bytes, continuations) from its ``tokenizer.json``.

Not to be confused with :mod:`tokengraft.tokenizer.conventions`, what a newly trained
tokenizer copies from its base.

The decision uses the model type, pre-tokenizer, normalizer and decoder, never the
tokenizer's name: a ByteLevel step means byte-level strings (``Ġ``), a Metaspace step or a
normalizer that replaces ``" "`` by one character means SentencePiece style (``▁``), a
WordPiece model means ``##`` continuations.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from tokengraft.vocab.alphabet import SPM_SPACE

# Steps that never change which bytes a text is made of (they only split or respell it).
_NEUTRAL_PRE = {"ByteLevel", "Split", "Metaspace", "Digits", "Punctuation", "UnicodeScripts", "Sequence"}
_DROPPING_BEHAVIOUR = {"removed", "Removed"}


@dataclass(frozen=True)
class Spelling:
    kind: str                    # "byte_level" | "sentencepiece" | "wordpiece" | "other"
    model: str                   # "BPE" | "Unigram" | "WordPiece" | "WordLevel"
    space: str = SPM_SPACE       # the character SentencePiece-style tokens write for a space
    prefix_space: bool = False   # encode() puts a dummy space before the text
    byte_fallback: bool = False  # unknown characters become <0xNN> byte tokens
    continuation: str = ""       # WordPiece continuation prefix ("##")
    lossy_text: bool = False     # a normalizer or pre-tokenizer changes or drops characters


def component_json(component: Any) -> dict | None:
    """JSON dict of a tokenizers component (normalizer, pre-tokenizer, decoder, model)."""
    if component is None:
        return None
    return json.loads(component.__getstate__())


def walk(node: dict | None) -> Iterator[dict]:
    """Every step of a (possibly nested) Sequence, depth first."""
    if not node:
        return
    children = node.get("pretokenizers") or node.get("normalizers") or node.get("decoders")
    if node.get("type") == "Sequence" and children is not None:
        for child in children:
            yield from walk(child)
    else:
        yield node


def _space_replacement(step: dict) -> str | None:
    """The character a ``Replace(" " -> c)`` step writes for a space, if that is what it does."""
    pattern = step.get("pattern") or {}
    content = step.get("content", "")
    if step.get("type") == "Replace" and pattern.get("String") == " " and len(content) == 1:
        return content
    return None


def _is_neutral_normalizer(step: dict, space: str | None) -> bool:
    if step.get("type") == "ByteLevel":
        return True
    if step.get("type") == "Prepend" and step.get("prepend") == space:
        return True
    return space is not None and _space_replacement(step) == space


def _is_neutral_pre(step: dict) -> bool:
    if step.get("type") not in _NEUTRAL_PRE:
        return False
    return step.get("behavior") not in _DROPPING_BEHAVIOUR


def detect(backend) -> Spelling:
    """Spelling of a ``tokenizers.Tokenizer`` (the ``backend_tokenizer`` of a fast tokenizer)."""
    model = type(backend.model).__name__
    normalizer = list(walk(component_json(backend.normalizer)))
    pre = list(walk(component_json(backend.pre_tokenizer)))
    decoder = list(walk(component_json(backend.decoder)))
    types = {s.get("type") for s in normalizer + pre}

    space = next((s.get("replacement") for s in pre if s.get("type") == "Metaspace"), None)
    space = space or next((c for c in map(_space_replacement, normalizer) if c), None)
    if space is None and model in ("BPE", "Unigram"):
        space = next((s.get("replacement") for s in decoder if s.get("type") == "Metaspace"), None)
    prefix = any(s.get("type") == "Prepend" and s.get("prepend") == space for s in normalizer)
    for step in pre:
        if step.get("type") == "Metaspace":
            scheme = step.get("prepend_scheme", "always" if step.get("add_prefix_space", True) else "never")
            prefix = prefix or scheme in ("first", "always")
        if step.get("type") == "ByteLevel" and step.get("add_prefix_space"):
            prefix = True

    if model == "WordPiece":
        kind = "wordpiece"
    elif "ByteLevel" in types or (not pre and any(s.get("type") == "ByteLevel" for s in decoder)):
        kind = "byte_level"
    elif space is not None and model in ("BPE", "Unigram"):
        kind = "sentencepiece"
    else:
        kind = "other"
    lossy = not all(_is_neutral_normalizer(s, space) for s in normalizer) or not all(map(_is_neutral_pre, pre))
    if model == "BPE":
        byte_fallback = bool(backend.model.byte_fallback)
    elif model == "Unigram":
        byte_fallback = bool(component_json(backend.model).get("byte_fallback", False))
    else:
        byte_fallback = False
    continuation = getattr(backend.model, "continuing_subword_prefix", None) or ""
    return Spelling(kind=kind, model=model, space=space or SPM_SPACE, prefix_space=prefix,
                       byte_fallback=byte_fallback, continuation=continuation,
                       lossy_text=lossy or kind in ("wordpiece", "other"))
